"""``avdd`` command line: generate the synthetic benchmark, extract features, fit probes.

    avdd synth --out DIR [--seed 0] [--scale 1]
    avdd extract --backbone logmel --dataset av1m --split train [--limit N] [--strict]
    avdd table2 [--backbone logmel --backbone mouth-pixels]
    avdd backbones

Without ``--data-root``/``--cache-dir`` the demo profile is used (synthetic data under
``$AVDD_HOME`` or ``./.avdd``, generated on first use).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .config import DATASETS, DEMO_BACKBONES, SPLITS


def _profile_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--home", type=Path, default=None,
                   help="demo: folder for generated data and caches (default $AVDD_HOME or ./.avdd)")
    p.add_argument("--synth-seed", type=int, default=0, help="demo: synthetic benchmark seed")
    p.add_argument("--synth-scale", type=float, default=1.0, help="demo: synthetic size factor")
    p.add_argument("--data-root", action="append", default=[], metavar="DATASET=DIR",
                   help="paper profile: a dataset root in its official layout (repeatable)")
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="paper profile: where features and results go")
    p.add_argument("--workers", type=int, default=2, help="decode/feature processes")


def _profile(args: argparse.Namespace):
    from .study import make_profile

    if args.data_root:
        roots = dict(item.split("=", 1) for item in args.data_root)
        return make_profile("paper", data_roots=roots, cache_dir=args.cache_dir)
    return make_profile("demo", home=args.home, synth_seed=args.synth_seed,
                        synth_scale=args.synth_scale)


def cmd_synth(args: argparse.Namespace) -> int:
    from .synth import SynthConfig, generate

    out = generate(args.out, SynthConfig(seed=args.seed, scale=args.scale), workers=args.workers)
    print(f"synthetic benchmark in {out}")
    return 0


def cmd_extract(args: argparse.Namespace) -> int:
    from .extract import extract
    from .study import ensure_data

    prof = _profile(args)
    ensure_data(prof, workers=args.workers)
    splits = [args.split] if args.split else list(SPLITS[args.dataset])
    failed = 0
    for split in splits:
        for r in extract(prof, args.backbone or list(DEMO_BACKBONES), args.dataset, split,
                         limit=args.limit, workers=args.workers):
            print(r.summary())
            failed += r.failed
    if failed:
        print(f"{failed} video(s) failed; see the failures.jsonl files named above",
              file=sys.stderr)
    return 1 if failed and args.strict else 0


def cmd_table2(args: argparse.Namespace) -> int:
    from . import study

    prof = _profile(args)
    backbones = args.backbone or list(DEMO_BACKBONES)
    study.prepare(prof, backbones, workers=args.workers)
    grid = study.linear_probe_grid(prof, backbones, seed=args.seed, force=args.force)
    print(("SYNTHETIC DATA, handcrafted/random backbones — not the paper's numbers\n"
           if prof.synthetic else "") + study.table2_matrix(grid).round(1).to_string())
    return 0


def cmd_backbones(args: argparse.Namespace) -> int:
    from .backbones import available, get_backbone

    from .backbones.hub import WeightsNotFound

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # listing must not wait on the network

    for name in available():
        try:
            b = get_backbone(name)
        except WeightsNotFound:
            # Pretrained backbones need their weights to be built; say so instead of failing.
            print(f"{name:22s} (weights/config not found here: pass a local directory)")
            continue
        except TypeError as e:
            print(f"{name:22s} (needs arguments: {e})")
            continue
        print(f"{name:22s} {b.modality:13s} {b.weights:12s} D={b.dim:<5d} {b.fps:g} Hz")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="avdd", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("synth", help="write the synthetic audio-visual deepfake benchmark")
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--scale", type=float, default=1.0, help="multiply the default clip counts")
    s.add_argument("--workers", type=int, default=2)
    s.set_defaults(func=cmd_synth)

    e = sub.add_parser("extract", help="extract features of a dataset split into the store")
    _profile_args(e)
    e.add_argument("--backbone", action="append", help="registry name (repeatable)")
    e.add_argument("--dataset", choices=DATASETS, required=True)
    e.add_argument("--split", choices=("train", "val", "test"), default=None,
                   help="default: every split of the dataset")
    e.add_argument("--limit", type=int, default=None, help="only the first N videos")
    e.add_argument("--strict", action="store_true", help="exit non-zero if any video failed")
    e.set_defaults(func=cmd_extract)

    t = sub.add_parser("table2", help="fit the Table 2 probes and print the AUC matrix")
    _profile_args(t)
    t.add_argument("--backbone", action="append", help="registry name (repeatable)")
    t.add_argument("--seed", type=int, default=43)
    t.add_argument("--force", action="store_true", help="ignore cached results")
    t.set_defaults(func=cmd_table2)

    b = sub.add_parser("backbones", help="list registered backbones")
    b.set_defaults(func=cmd_backbones)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError, KeyError) as e:
        # Bad input gets one clear line, not a traceback; AVDD_DEBUG=1 shows the traceback.
        if os.environ.get("AVDD_DEBUG"):
            raise
        print(f"avdd: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
