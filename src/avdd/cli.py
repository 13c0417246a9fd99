"""``avdd`` command line: generate the synthetic benchmark, extract features, fit probes.

    avdd synth --out DIR [--seed 0] [--scale 1]
    avdd extract --backbone logmel --dataset av1m --split train [--limit N] [--strict]
    torchrun --nproc_per_node=8 -m avdd extract --device cuda ...   (then: avdd merge ...)
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
from .distributed import current_shard


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
    shard = current_shard()
    device = args.device
    if device == "cuda" and shard.world_size > 1:
        device = f"cuda:{shard.local_rank}"  # one GPU per process on each machine
    failed = 0
    for split in splits:
        for r in extract(prof, args.backbone or list(DEMO_BACKBONES), args.dataset, split,
                         limit=args.limit, workers=args.workers, shard=shard, device=device,
                         precision=args.precision, batch_size=args.batch_size):
            print(r.summary())
            failed += r.failed
    if failed:
        print(f"{failed} video(s) failed; see the failures logs named above", file=sys.stderr)
    if shard.world_size > 1 and shard.rank == 0:
        print(f"rank 0 of {shard.world_size} done; when every rank has finished, run "
              "`avdd merge` with the same --dataset/--split/--backbone to make one store")
    return 1 if failed and args.strict else 0


def cmd_merge(args: argparse.Namespace) -> int:
    from .backbones import get_backbone
    from .datasets import load_items
    from .distributed import merge_store
    from .extract import store_dir

    prof = _profile(args)
    splits = [args.split] if args.split else list(SPLITS[args.dataset])
    for name in args.backbone or list(DEMO_BACKBONES):
        bb = get_backbone(name)
        for split in splits:
            root = store_dir(prof, bb, args.dataset, split, args.precision)
            if not (root / "store.json").exists():
                print(f"{name} {args.dataset}/{split}: no store at {root}", file=sys.stderr)
                continue
            order = [i.video_id for i in load_items(prof, args.dataset, split)]
            merge_store(root, order)
            print(f"{name} {args.dataset}/{split}: merged → {root}")
    return 0


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

    import torch

    for name in available():
        try:
            with torch.device("meta"):  # shapes only: no weights allocated (XLS-R 2B = 8.6 GB)
                b = get_backbone(name)
        except WeightsNotFound:
            # Pretrained backbones need their weights to be built; say so instead of failing.
            print(f"{name:24s} (weights/config not found here: pass a local directory)")
            continue
        except TypeError as e:
            print(f"{name:24s} (needs arguments: {e})")
            continue
        print(f"{name:24s} {b.modality:13s} {b.weights:12s} D={b.dim:<5d} {b.fps:g} Hz")
    return 0


def cmd_convert_checkpoint(args: argparse.Namespace) -> int:
    from .backbones.avhubert import convert_checkpoint

    out = convert_checkpoint(args.src, args.dst, trust=args.trust_checkpoint, heads=args.heads)
    print(f"wrote {out}: load it with avhubert-{{a,v,av}}:checkpoint={out} (no unpickling)")
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
    e.add_argument("--device", default=None,
                   help="run the models here (cuda, cuda:1, cpu) with decoding in --workers "
                        "DataLoader processes; default: CPU worker processes run everything. "
                        "Under torchrun, cuda means cuda:LOCAL_RANK")
    e.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="bf16 = torch autocast (stored separately from fp32 features)")
    e.add_argument("--batch-size", type=int, default=1,
                   help="videos per model step with --device (equal-length inputs batched)")
    e.set_defaults(func=cmd_extract)

    m = sub.add_parser("merge", help="merge the ranks of torchrun/SLURM extraction stores")
    _profile_args(m)
    m.add_argument("--backbone", action="append", help="registry name (repeatable)")
    m.add_argument("--dataset", choices=DATASETS, required=True)
    m.add_argument("--split", choices=("train", "val", "test"), default=None)
    m.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    m.set_defaults(func=cmd_merge)

    t = sub.add_parser("table2", help="fit the Table 2 probes and print the AUC matrix")
    _profile_args(t)
    t.add_argument("--backbone", action="append", help="registry name (repeatable)")
    t.add_argument("--seed", type=int, default=43)
    t.add_argument("--force", action="store_true", help="ignore cached results")
    t.set_defaults(func=cmd_table2)

    c = sub.add_parser("convert-checkpoint",
                       help="AV-HuBERT fairseq .pt → .safetensors (safe to load from then on)")
    c.add_argument("src", type=Path)
    c.add_argument("dst", type=Path)
    c.add_argument("--trust-checkpoint", action="store_true",
                   help="unpickle the fairseq file with the restricted unpickler (fairseq/"
                        "omegaconf objects become inert stubs; any other code is refused)")
    c.add_argument("--heads", type=int, default=None,
                   help="attention heads (not stored in the weights; default hidden/64)")
    c.set_defaults(func=cmd_convert_checkpoint)

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
