"""``avdd`` command line: generate the synthetic benchmark, extract features, fit probes.

    avdd synth --out DIR [--seed 0] [--scale 1]
    avdd extract --backbone logmel --dataset av1m --split train [--limit N] [--strict]
    torchrun --nproc_per_node=8 -m avdd extract --device cuda ...   (then: avdd merge ...)
    avdd table2 [--backbone logmel --backbone mouth-pixels]
    avdd backbones
    avdd check-data ROOT --dataset av1m [--sample 20]
    avdd check-store STORE [STORE ...]
    avdd import-probe model-epoch=48.ckpt w2v2.safetensors --backbone wav2vec2
    avdd score VIDEO [VIDEO ...] --probe PROBE [--json OUT | --csv OUT] [--plot OUT.png]
    avdd check-data --csv data.csv [--root DIR]        (a path,label[,split,fake_segments] CSV)
    avdd extract --csv data.csv --backbone logmel      (every split of the CSV)
    avdd fit --train data.csv:train --val data.csv:val --backbone logmel --out p.safetensors
    avdd evaluate --probe p.safetensors --test data.csv:test [--json OUT]

Without ``--data-root``/``--cache-dir`` the demo profile is used (synthetic data under
``$AVDD_HOME`` or ``./.avdd``, generated on first use).

Why one module: the parser is the tool's table of contents (every command, flag and argument
type in one place, as ``avdd --help`` shows them); each command's body only calls the package.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path

from avdd.config import (
    DATASETS,
    DEMO_BACKBONES,
    DEMO_SCALE,
    EXTRA_DATASETS,
    REAL_ONLY_SPLITS,
    SPLITS,
)
from avdd.features.distributed import current_shard

# Argument types: a value a command cannot use is a one-line usage error at parse time,
# never a silent clamp (``--workers 0``) or a traceback later (``--device tpu9``).

def _at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} is below {low}: give a number >= {low}")
        return value
    parse.__name__ = f"integer >= {low}"
    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a finite number > 0")
    return value


def _data_root(text: str) -> tuple[str, str]:
    name, sep, folder = text.partition("=")
    if not sep or not name or not folder:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected DATASET=DIR, e.g. av1m=/data/AV1M (datasets: "
            f"{', '.join((*DATASETS, *EXTRA_DATASETS))})")
    if name not in (*DATASETS, *EXTRA_DATASETS):
        raise argparse.ArgumentTypeError(
            f"{name!r} is not a dataset; choose from {', '.join((*DATASETS, *EXTRA_DATASETS))}")
    return name, folder


def _device(text: str) -> str:
    """``cpu``, ``cuda`` or ``cuda:N`` (checked against this machine's torch build)."""
    import re

    if text != "cpu" and not re.fullmatch(r"cuda(:\d+)?", text):
        raise argparse.ArgumentTypeError(f"{text!r}: choose cpu, cuda or cuda:N")
    if text.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError(
                f"{text}: this torch build sees no CUDA GPU (torch {torch.__version__}); "
                "run without --device (CPU worker processes) or with --device cpu")
        n = torch.cuda.device_count()
        if ":" in text and int(text.split(":")[1]) >= n:
            raise argparse.ArgumentTypeError(f"{text}: this machine has {n} CUDA device(s)")
    return text


def _profile_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--home", type=Path, default=None,
                   help="demo: folder for generated data and caches (default $AVDD_HOME or ./.avdd)")
    p.add_argument("--synth-seed", type=int, default=0, help="demo: synthetic benchmark seed")
    p.add_argument("--synth-scale", type=_positive_float, default=DEMO_SCALE,
                   help=f"demo: synthetic size factor (default {DEMO_SCALE})")
    p.add_argument("--data-root", action="append", default=[], metavar="DATASET=DIR",
                   type=_data_root,
                   help="paper profile: a dataset root in its official layout (repeatable)")
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="paper profile and --csv/CSV sources: where features and results go "
                        "(CSV default: $AVDD_HOME/cache or ./.avdd/cache)")
    p.add_argument("--workers", type=_at_least(1), default=2, help="decode/feature processes")


CSV_HELP = ("a dataset given as a CSV: path,label[,split,fake_segments] (label 0 real, 1 "
            "fake; fake_segments a JSON list of [start, end] seconds)")


def _root_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", dest="csv_root", type=Path, default=None, metavar="DIR",
                   help="folder a CSV's paths are relative to (default: the CSV's folder)")


def _csv_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--csv", type=Path, default=None, metavar="FILE", help=CSV_HELP)
    _root_arg(p)


def _dataset_args(p: argparse.ArgumentParser) -> None:
    """``--dataset NAME`` (with the profile flags) or ``--csv FILE [--root DIR]``."""
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--dataset", choices=(*DATASETS, *EXTRA_DATASETS))
    g.add_argument("--csv", type=Path, default=None, metavar="FILE", help=CSV_HELP)
    _root_arg(p)


def _profile(args: argparse.Namespace):
    from avdd.config import make_profile

    if args.data_root:
        roots = dict(args.data_root)
        return make_profile("paper", data_roots=roots, cache_dir=args.cache_dir)
    return make_profile("demo", home=args.home, synth_seed=args.synth_seed,
                        synth_scale=args.synth_scale)


def cmd_synth(args: argparse.Namespace) -> int:
    from avdd.synth import SynthConfig, generate

    out = generate(args.out, SynthConfig(seed=args.seed, scale=args.scale), workers=args.workers,
                   overwrite=args.overwrite)
    print(f"synthetic benchmark in {out}")
    return 0


def _dataset(args: argparse.Namespace):
    """``(profile, dataset, splits)`` of ``--dataset`` (with the profile flags) or ``--csv``."""
    if args.csv is None:
        known = (*SPLITS[args.dataset], *REAL_ONLY_SPLITS.get(args.dataset, ()))
        if args.split and args.split not in known:
            raise ValueError(f"--split {args.split}: {args.dataset} has splits {list(known)}")
        return _profile(args), args.dataset, [args.split] if args.split else list(
            SPLITS[args.dataset])
    from avdd.datasets.csv import csv_profile, read_csv_dataset

    if args.data_root:
        raise ValueError("--csv names its own data: drop --data-root (use --root DIR for the "
                         "folder the CSV's paths are relative to)")
    data = read_csv_dataset(args.csv, args.csv_root,
                            skip_bad_rows=getattr(args, "skip_bad_rows", False))
    if data.problems:
        print(f"{args.csv}: leaving out {len(data.problems)} bad row(s) (--skip-bad-rows)",
              file=sys.stderr)
    if args.split and args.split not in data.splits:
        raise ValueError(f"--split {args.split}: {args.csv} has splits {list(data.splits)}")
    return (csv_profile(data, args.cache_dir), data.key,
            [args.split] if args.split else list(data.splits))


def cmd_extract(args: argparse.Namespace) -> int:
    from avdd.features.extract import extract
    from avdd.features.prepare import ensure_data

    prof, dataset, splits = _dataset(args)
    ensure_data(prof, workers=args.workers)
    shard = current_shard()
    device = args.device
    if device == "cuda" and shard.world_size > 1:
        device = f"cuda:{shard.local_rank}"  # one GPU per process on each machine
    failed = 0
    for split in splits:
        for r in extract(prof, args.backbone or list(DEMO_BACKBONES), dataset, split,
                         limit=args.limit, workers=args.workers, shard=shard, device=device,
                         precision=args.precision, batch_size=args.batch_size):
            print(r.summary())
            failed += r.failed
    if failed:
        print(f"{failed} video(s) failed; see the failures logs named above", file=sys.stderr)
    if shard.world_size > 1 and shard.rank == 0:
        print(f"rank 0 of {shard.world_size} done; when every rank has finished, run "
              "`avdd merge` with the same --dataset (or --csv)/--split/--backbone to make one "
              "store")
    return 1 if failed and args.strict else 0


def cmd_merge(args: argparse.Namespace) -> int:
    from avdd.backbones import describe
    from avdd.datasets import load_items
    from avdd.features.distributed import merge_store
    from avdd.features.extract import store_dir

    prof, dataset, splits = _dataset(args)
    for name in args.backbone or list(DEMO_BACKBONES):
        bb = describe(name)
        for split in splits:
            root = store_dir(prof, bb, dataset, split, args.precision)
            if not (root / "store.json").exists():
                print(f"{name} {dataset}/{split}: no store at {root}", file=sys.stderr)
                continue
            order = [i.video_id for i in load_items(prof, dataset, split)]
            merge_store(root, order)
            print(f"{name} {dataset}/{split}: merged → {root}")
    return 0


def cmd_table2(args: argparse.Namespace) -> int:
    from avdd.analysis.linear_probing import linear_probe_grid, table2_matrix
    from avdd.features.prepare import prepare

    prof = _profile(args)
    backbones = args.backbone or list(DEMO_BACKBONES)
    prepare(prof, backbones, workers=args.workers)
    grid = linear_probe_grid(prof, backbones, seed=args.seed, force=args.force)
    print(("SYNTHETIC DATA, handcrafted/random backbones — not the paper's numbers\n"
           if prof.synthetic else "") + table2_matrix(grid).round(1).to_string())
    return 0


def cmd_backbones(args: argparse.Namespace) -> int:
    from avdd.backbones import available, describe, plugin_origin
    from avdd.backbones.hub import WeightsNotFound

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # listing must not wait on the network

    for name in available():
        origin = plugin_origin(name)  # a backbone of another distribution says which
        suffix = f"  [plugin {origin}]" if origin else ""
        try:
            b = describe(name)  # configs only: nothing is built (XLS-R 2B = 8.6 GB of weights)
        except WeightsNotFound:
            # A pretrained hub checkpoint that is not cached here; say so instead of failing.
            print(f"{name:24s} (weights/config not found here: pass a local directory){suffix}")
            continue
        except TypeError as e:
            # "f() missing 1 required ... argument: 'checkpoint'": the part after the name.
            print(f"{name:24s} (needs arguments: {str(e).partition('() ')[2] or e}){suffix}")
            continue
        except Exception as e:  # noqa: BLE001 - a listing must not stop at one backbone
            print(f"{name:24s} (cannot be described here: {type(e).__name__}: {e})"[:160]
                  + suffix)
            continue
        print(f"{name:24s} {b.modality:13s} {b.weights:12s} D={b.dim:<5d} {b.fps:g} Hz{suffix}")
    return 0


def cmd_book(args: argparse.Namespace) -> int:
    import json
    import subprocess

    book = Path(args.book)
    if not (book / "_config.yml").is_file():
        raise FileNotFoundError(f"{book / '_config.yml'} not found: pass --book PATH/TO/book "
                                "(the book/ folder of an avdd checkout)")
    params: dict = {}
    if args.params:
        text = Path(args.params).read_text()
        if Path(args.params).suffix in (".yaml", ".yml"):
            import yaml  # comes with jupyter-book

            params = yaml.safe_load(text) or {}
        else:
            params = json.loads(text)
        if not isinstance(params, dict):
            raise ValueError(f"{args.params}: expected a mapping of notebook parameters")
    env = {**os.environ, "AVDD_BOOK_PARAMETERS": json.dumps(params)}
    exe = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(exe) if exe.exists() else "jupyter-book", "build", str(book), "-W", "-n",
           "--keep-going"]
    print(("profile: " + str(params.get("profile", "demo"))) + "; " + " ".join(cmd))
    return subprocess.run(cmd, env=env).returncode


def cmd_check_store(args: argparse.Namespace) -> int:
    from avdd.features.layout import verify_store

    bad = 0
    for root in args.stores:
        check = verify_store(root)
        for problem in check.problems:
            print(problem)
        extra = (f"; {check.unchecked} without checksums (written before avdd had them)"
                 if check.unchecked else "")
        print(f"{root}: {check.videos} videos verified, {len(check.problems)} problems{extra}")
        bad += not check.ok
    return 1 if bad else 0


def cmd_convert_checkpoint(args: argparse.Namespace) -> int:
    from avdd.backbones.avhubert import convert_checkpoint

    out = convert_checkpoint(args.src, args.dst, trust=args.trust_checkpoint, heads=args.heads)
    print(f"wrote {out}: load it with avhubert-{{a,v,av}}:checkpoint={out} (no unpickling)")
    return 0


def cmd_check_data(args: argparse.Namespace) -> int:
    from avdd.datasets.check import check_csv_dataset, check_dataset

    if args.csv is not None:
        if args.dataset or args.root is not None:
            raise ValueError("check-data: give either --csv FILE [--root DIR] or ROOT --dataset "
                             "NAME, not both")
        report = check_csv_dataset(args.csv, args.csv_root, sample=args.sample, seed=args.seed)
    elif args.dataset is None or args.root is None:
        raise ValueError("check-data: give ROOT --dataset NAME (a dataset in its official "
                         "layout) or --csv FILE [--root DIR] (a path,label CSV)")
    else:
        report = check_dataset(args.root, args.dataset, splits_dir=args.splits_dir,
                               sample=args.sample, seed=args.seed)
    print(report.summary(max_problems=args.show))
    return 0 if report.ok else 1


def cmd_import_probe(args: argparse.Namespace) -> int:
    from avdd.heads.probe_io import import_official_probe, load_probe

    out = import_official_probe(args.ckpt, args.out, args.backbone)
    probe, _ = load_probe(out)
    print(f"wrote {out}: D={probe.n_features_in_}, bias {probe.intercept_:+.4f}, backbone "
          f"{args.backbone}; use it with `avdd score VIDEO --probe {out}`")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from avdd.backbones.hub import WeightsNotFound
    from avdd.score import load_scorer, plot_result, score_videos, write_csv, write_json

    if not 0.0 < args.threshold < 1.0:
        raise ValueError(f"--threshold {args.threshold} must be a probability in (0, 1)")
    try:
        scorer = load_scorer(args.probe)
    except WeightsNotFound as e:
        print(f"avdd: error: the probe's backbone needs pretrained weights that are not here: "
              f"{e}", file=sys.stderr)
        return 2
    n = len(args.videos)
    op = scorer.operating_point
    print(f"{args.probe}: FAKE where score >= {op.threshold:+.4f} (threshold chosen on its "
          f"validation set, {op.rule} point)" if op else
          f"{args.probe}: no stored threshold; FAKE where P(fake) > 0.5 (score > 0)")

    def report(i: int, r, clip) -> None:
        if r.error:
            print(f"[{i + 1}/{n}] {r.path}: FAILED: {r.error}", file=sys.stderr)
            return
        spans = ", ".join(f"{a:.2f}-{b:.2f} s" for a, b in r.ranges) or "none"
        cal = ("" if math.isnan(r.calibrated_probability)
               else f" (calibrated {r.calibrated_probability:.3f})")
        print(f"[{i + 1}/{n}] {r.path}: score {r.score:+.3f}  P(fake) {r.probability:.3f}{cal}"
              f"  {'FAKE' if r.fake else 'real'}  frames above {args.threshold:g}: {spans}")
        if args.plot:
            out = args.plot if n == 1 else args.plot.with_name(
                f"{args.plot.stem}-{i:04d}-{Path(r.path).stem}{args.plot.suffix}")
            try:
                out.parent.mkdir(parents=True, exist_ok=True)
                plot_result(r, clip, scorer).savefig(out, dpi=100)
            except (OSError, ValueError) as e:  # a plot must not end a long scoring run
                print(f"[{i + 1}/{n}] {r.path}: plot {out} not written: {e}", file=sys.stderr)

    results = score_videos(args.videos, scorer, threshold=args.threshold, on_result=report)
    if args.json:
        write_json(args.json, results, scorer)
    if args.csv:
        write_csv(args.csv, results)
    failed = sum(r.error is not None for r in results)
    if failed:
        print(f"{failed} of {len(results)} video(s) could not be scored", file=sys.stderr)
    return 1 if failed else 0


def _sources(args: argparse.Namespace, *names: str) -> list:
    from avdd.analysis.fit_evaluate import parse_source

    prof = _profile(args) if args.data_root or any(
        not str(getattr(args, n)).lower().endswith(".csv") for n in names) else None
    return [parse_source(getattr(args, n), dataset_profile=prof, root=args.csv_root,
                         cache_dir=args.cache_dir, skip_bad_rows=args.skip_bad_rows)
            for n in names]


def cmd_fit(args: argparse.Namespace) -> int:
    from avdd.analysis.fit_evaluate import PAPER_LR, SWEEP_LRS, fit_and_save, metrics_lines

    train, val = _sources(args, "train", "val")
    lrs = tuple(args.lr) if args.lr else SWEEP_LRS if args.sweep else (PAPER_LR,)
    result, out = fit_and_save(train, val, args.backbone, args.out, workers=args.workers,
                               precision=args.precision, lrs=lrs, random_state=args.seed,
                               max_epochs=args.max_epochs, patience=args.patience,
                               calibrate=args.calibrate, n_bootstrap=args.bootstrap)
    if len(lrs) > 1:
        print(result.sweep.to_string(index=False))
    op = result.operating_point
    cal = (f"temperature {op.temperature:.3g} (calibrated on validation)" if op.calibrated
           else "probabilities uncalibrated (the paper's sigmoid(2s))")
    print(f"wrote {out}: {args.backbone} probe, lr {result.probe.lr:g}, best epoch "
          f"{result.probe.best_epoch_}; threshold s >= {op.threshold:+.4f} (EER point on "
          f"validation); {cal}")
    print("validation: " + "\n            ".join(metrics_lines(result.val_metrics)))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import json

    from avdd.analysis.fit_evaluate import evaluate_saved, metrics_lines

    (test,) = _sources(args, "test")
    res = evaluate_saved(args.probe, test, workers=args.workers, n_bootstrap=args.bootstrap,
                         random_state=args.seed)
    print(f"{args.probe} on {args.test}:")
    print("\n".join("  " + line for line in metrics_lines(res["metrics"])))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=1, default=str))
        print(f"wrote {args.json}")
    return 0


def _source_args(p: argparse.ArgumentParser) -> None:
    _profile_args(p)
    _root_arg(p)
    p.add_argument("--skip-bad-rows", action="store_true",
                   help="use the good rows of a CSV with bad ones (see check-data)")
    p.add_argument("--bootstrap", type=_at_least(0), default=1000,
                   help="bootstrap resamples of the AUC/AP intervals (0: none)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="avdd", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("synth", help="write the synthetic audio-visual deepfake benchmark")
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--scale", type=_positive_float, default=1.0,
                   help="multiply the default clip counts")
    s.add_argument("--workers", type=_at_least(1), default=2)
    s.add_argument("--overwrite", action="store_true",
                   help="replace a benchmark of another configuration in --out")
    s.set_defaults(func=cmd_synth)

    e = sub.add_parser("extract", help="extract features of a dataset split into the store")
    _profile_args(e)
    e.add_argument("--backbone", action="append", help="registry name (repeatable)")
    _dataset_args(e)
    e.add_argument("--skip-bad-rows", action="store_true",
                   help="--csv: extract the good rows of a CSV with bad ones (see check-data)")
    e.add_argument("--split", default=None,
                   help="train, val, test, ... (default: every split of the dataset or CSV; "
                        "AV1M's real_train/real_val, which train Table 4's anomaly detectors, "
                        "only when named)")
    e.add_argument("--limit", type=_at_least(1), default=None, help="only the first N videos")
    e.add_argument("--strict", action="store_true", help="exit non-zero if any video failed")
    e.add_argument("--device", type=_device, default=None,
                   help="run the models here (cuda, cuda:1, cpu) with decoding in --workers "
                        "DataLoader processes; default: CPU worker processes run everything. "
                        "Under torchrun, cuda means cuda:LOCAL_RANK")
    e.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="bf16 = torch autocast (stored separately from fp32 features)")
    e.add_argument("--batch-size", type=_at_least(1), default=1,
                   help="videos per model step with --device (equal-length inputs batched)")
    e.set_defaults(func=cmd_extract)

    m = sub.add_parser("merge", help="merge the ranks of torchrun/SLURM extraction stores")
    _profile_args(m)
    m.add_argument("--backbone", action="append", help="registry name (repeatable)")
    _dataset_args(m)
    m.add_argument("--split", default=None, help="default: every split")
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

    k = sub.add_parser("book", help="execute stale notebooks and build the book "
                                    "(demo profile, or the parameters of --params)")
    k.add_argument("--book", default="book", help="the book/ folder (default ./book)")
    k.add_argument("--params", type=Path, default=None,
                   help="YAML/JSON notebook parameters, e.g. profiles/paper.example.yaml")
    k.set_defaults(func=cmd_book)

    cs = sub.add_parser("check-store", help="verify feature stores: store.json, every index "
                        "line and every record's frames against their checksums")
    cs.add_argument("stores", nargs="+", type=Path, help="store folders (holding store.json)")
    cs.set_defaults(func=cmd_check_store)

    b = sub.add_parser("backbones", help="list registered backbones")
    b.set_defaults(func=cmd_backbones)

    k = sub.add_parser("check-data", help="validate a dataset root (or a dataset CSV) before "
                                          "extracting features")
    k.add_argument("root", type=Path, nargs="?", default=None,
                   help="the dataset folder in its official layout (with --dataset)")
    k.add_argument("--dataset", choices=sorted(set(DATASETS) | {"exddv"}), default=None)
    _csv_args(k)
    k.add_argument("--splits-dir", type=Path, default=None,
                   help="folder of {train,val,test}_labels.csv (default: ROOT/splits if "
                        "present, else the paper's split lists shipped with avdd)")
    k.add_argument("--sample", type=int, default=20,
                   help="decode this many randomly chosen listed videos (0: none)")
    k.add_argument("--seed", type=int, default=0, help="seed of the decode sample")
    k.add_argument("--show", type=int, default=10, help="problems printed in full")
    k.set_defaults(func=cmd_check_data)

    ip = sub.add_parser("import-probe",
                        help="official ssr-dfd Lightning .ckpt probe -> avdd .safetensors probe")
    ip.add_argument("ckpt", type=Path)
    ip.add_argument("out", type=Path)
    ip.add_argument("--backbone", required=True,
                    help="spec of the backbone the probe was trained on (e.g. wav2vec2)")
    ip.set_defaults(func=cmd_import_probe)

    SOURCE = ("FILE.csv, FILE.csv:SPLIT (a CSV with a split column) or DATASET:SPLIT (e.g. "
              "av1m:train)")
    f = sub.add_parser("fit", help="train the paper's probe on a CSV or dataset split; save "
                                   "it with its threshold, metrics and provenance")
    f.add_argument("--train", required=True, help=SOURCE)
    f.add_argument("--val", required=True, help=SOURCE + "; early stopping, the threshold "
                                                        "(EER point) and any sweep use it")
    f.add_argument("--backbone", required=True, help="backbone spec (see `avdd backbones`)")
    f.add_argument("--out", type=Path, required=True, help="probe .safetensors file to write")
    sweep = f.add_mutually_exclusive_group()
    sweep.add_argument("--lr", type=_positive_float, action="append", default=None,
                       help="Adam learning rate (paper: 1e-3); repeat to sweep several")
    sweep.add_argument("--sweep", action="store_true",
                       help="sweep lr 1e-4, 3e-4, 1e-3, 3e-3, 1e-2; keep the best on --val")
    f.add_argument("--seed", type=int, default=43, help="probe seed (paper: 43)")
    f.add_argument("--max-epochs", type=_at_least(1), default=100, help="paper: 100")
    f.add_argument("--patience", type=_at_least(1), default=10, help="paper: 10")
    f.add_argument("--calibrate", action="store_true",
                   help="temperature scaling on --val: calibrated P(fake) = sigmoid(2s/T) "
                        "(default: the paper's sigmoid(2s))")
    f.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="which stored features (bf16: extracted with --precision bf16)")
    _source_args(f)
    f.set_defaults(func=cmd_fit)

    ev = sub.add_parser("evaluate", help="AUC/AP with intervals, EER and the rates at a "
                                         "probe's stored threshold on a CSV or dataset split")
    ev.add_argument("--probe", type=Path, required=True, help="probe .safetensors file")
    ev.add_argument("--test", required=True, help=SOURCE)
    ev.add_argument("--json", type=Path, default=None, help="write the metrics as JSON")
    ev.add_argument("--seed", type=int, default=0, help="seed of the bootstrap resamples")
    _source_args(ev)
    ev.set_defaults(func=cmd_evaluate)

    sc = sub.add_parser("score", help="score videos with a saved probe (video + frame level)")
    sc.add_argument("videos", nargs="+", type=Path)
    sc.add_argument("--probe", type=Path, required=True, help="probe .safetensors file")
    out = sc.add_mutually_exclusive_group()
    out.add_argument("--json", type=Path, default=None, help="write results as JSON")
    out.add_argument("--csv", type=Path, default=None, help="write results as CSV")
    sc.add_argument("--plot", type=Path, default=None,
                    help="PNG of score/probability over time (several videos: one per video, "
                         "named OUT-NNNN-<video>.png)")
    sc.add_argument("--threshold", type=float, default=0.5,
                    help="frame probability above which time ranges are reported")
    sc.set_defaults(func=cmd_score)
    return p


def main(argv: list[str] | None = None) -> int:
    from avdd.features.store import DiskFull

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, FileExistsError, ValueError, KeyError, DiskFull) as e:
        # Bad input gets one clear line, not a traceback; AVDD_DEBUG=1 shows the traceback.
        if os.environ.get("AVDD_DEBUG"):
            raise
        print(f"avdd: error: {e}", file=sys.stderr)
        return 2
    except MemoryError as e:
        # A memory limit is not bad input either: one line saying so (media.OutOfMemory
        # names the file and the size it needed), never a traceback blaming the file.
        if os.environ.get("AVDD_DEBUG"):
            raise
        text = str(e) if "out of memory" in str(e) else f"out of memory ({type(e).__name__}: {e})"
        print(f"avdd: error: {text}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
