"""How fast is avdd's LinearProbe next to the official training recipe? Prints figures.

    python benchmarks/probe_speed.py                 # (a) + (b) at full size (~16 GB in --workdir)
    python benchmarks/probe_speed.py --scale 0.05    # everything shrunk, a quick run
    python benchmarks/probe_speed.py --parts large --large-gb 45   # one epoch, store > RAM
    python benchmarks/probe_speed.py --parts b --engines numba,numpy  # (b) with both probe paths
    python benchmarks/probe_speed.py --parts a,large --shuffles uniform,blocked  # both planners

(a) Seconds per epoch (train + validation pass) on a synthetic store of the paper's AV1M size
    (22,972 train / 2,527 val videos, 100-350 frames, D = 1024, fp16), beside the time to
    read the store's bytes once (the page-cache floor). The official recipe is timed over
    ``--baseline-steps`` per-video steps (and 1,000 validation videos) and extrapolated.
(b) Wall time to early stopping and test AUC, both recipes, on 2,000 videos with planted fake
    segments (train/val/test 1,400/300/300).
(large) Epochs on a D = 3840 store larger than RAM (``--large-epochs``; the last is the steady
    state, whatever the page cache held before); reports RSS. ``--cold`` first evicts the
    store's own pages from the page cache (``posix_fadvise(DONTNEED)`` on its shard files), so
    the first epoch reads every byte from disk: the larger-than-RAM case without the disk
    space for a store several times the RAM.

``--shuffles`` times each of LinearProbe's epoch planners in (a) and (large): ``uniform`` (the
default and the official recipe: a fresh permutation of all videos each epoch) and ``blocked``
(storage chunks shuffled in pools, class-balanced), each in its own process.

Each measurement runs in a fresh process so its peak RSS is its own. Generated stores are
cached under --workdir and reused by later runs.
"""

from __future__ import annotations

import argparse
import json
import mmap
import multiprocessing as mp
import os
import resource
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import official_baseline as official  # noqa: E402
from synthetic_features import SynthConfig, build_store, export_npy  # noqa: E402

from avdd.analysis.metrics import evaluate  # noqa: E402
from avdd.features.store import FeatureSet  # noqa: E402
from avdd.heads.probe import LinearProbe  # noqa: E402

AV1M = {"train": 22972, "val": 2527}  # the paper's AV1M probe split (SPEC.md)
B_SPLIT = {"train": 0.70, "val": 0.15}  # (b): the rest is test
OFFICIAL_THREADS = 1  # torch threads for the official recipe in (b): its fastest setting here
B_SHIFT = 1.5  # planted shift (noise std units): test AUC ~0.86, far from 1.0


# -- running in a fresh process ---------------------------------------------------------------
def _vm_hwm() -> int:
    """Peak resident set of this process in bytes (VmHWM; unlike ru_maxrss it is not
    inherited from the parent across fork + exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _call(fn, args):
    out = fn(*args)
    out["peak_rss_gb"] = _vm_hwm() / 1e9  # includes resident file-backed (mapped) pages
    out["loadavg"] = os.getloadavg()  # other work on the machine skews timings
    return out


def isolated(fn, *args) -> dict:
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(_call, (fn, args))


# -- measurements (each runs in its own process) ------------------------------------------------
def read_floor(roots: list[str]) -> dict:
    """Seconds to bring every byte of the shards into this process: (1) readinto a reused
    16 MB buffer, (2) through a memory map, OR-reducing each 32 MB chunk; best of 2 passes."""
    files = [p for r in roots for p in sorted(Path(r).glob("shard-*.bin"))]
    nbytes = sum(p.stat().st_size for p in files)
    buf = bytearray(16 << 20)
    t_read, t_map = [], []
    for _ in range(2):
        t0 = time.perf_counter()
        for p in files:
            with open(p, "rb", buffering=0) as f:
                while f.readinto(buf):
                    pass
        t_read.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for p in files:
            with open(p, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                step = 32 << 20
                for lo in range(0, len(mm) - len(mm) % 8, step):
                    n = min(step, (len(mm) - lo) // 8 * 8)
                    np.bitwise_or.reduce(np.frombuffer(mm, np.uint64, n // 8, lo))
                    mm.madvise(mmap.MADV_DONTNEED, lo, n)
        t_map.append(time.perf_counter() - t0)
    return {"gb": nbytes / 1e9, "readinto_s": min(t_read), "mmap_s": min(t_map)}


def _set_engine(engine: str) -> None:
    """Select LinearProbe's path in this (fresh) process: "numba", "numpy" or "auto"."""
    if engine == "numpy":
        os.environ["AVDD_NO_NUMBA"] = "1"
    elif engine == "numba":
        os.environ.pop("AVDD_NO_NUMBA", None)


def evict(root: str) -> None:
    """Drop a store's shard pages from the OS page cache (its own files only)."""
    for path in Path(root).glob("shard-*.bin"):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def ours_epochs(train_root: str, val_root: str | None, epochs: int, batch_size: int,
                engine: str = "auto", shuffle: str = "uniform", cold: bool = False) -> dict:
    _set_engine(engine)
    if cold:
        evict(train_root)
    train = FeatureSet.open(train_root)
    val = FeatureSet.open(val_root) if val_root else None
    probe = LinearProbe(max_epochs=epochs, patience=epochs + 1, batch_size=batch_size, shuffle=shuffle)
    t0 = time.perf_counter()
    probe.fit(train, val)
    return {"wall_s": time.perf_counter() - t0, "epoch_s": [h["seconds"] for h in probe.history_],
            "gb": train.nbytes / 1e9 + (val.nbytes / 1e9 if val else 0.0), "engine": probe.engine_,
            "shuffle": shuffle, "cold": cold}


def official_steps(paths, labels, val_paths, val_labels, steps: int, dim: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    official.set_seed(43)
    model = official.LinearModel(dim)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = official.DataLoader(official.NpyFeatures(paths, labels), batch_size=1, shuffle=True)
    official.train_steps(model, opt, loader, max_steps=50)  # warm-up
    _, step_s = official.train_steps(model, opt, loader, max_steps=steps)
    _, _, val_s = official.evaluate(model, val_paths, val_labels)
    return {"step_s": step_s, "val_s": val_s, "threads": threads}


def ours_fit_b(root: str, split: dict, batch_size: int, engine: str = "auto") -> dict:
    _set_engine(engine)
    fs = FeatureSet.open(root)
    t0 = time.perf_counter()
    probe = LinearProbe(batch_size=batch_size).fit(fs.subset(split["train"]), fs.subset(split["val"]))
    wall = time.perf_counter() - t0
    test = fs.subset(split["test"])
    return {"wall_s": wall, "epochs": len(probe.history_), "best_epoch": probe.best_epoch_,
            "first_epoch_s": probe.history_[0]["seconds"], "engine": probe.engine_,
            **evaluate(test.labels, probe.decision_function(test))}


def official_fit_b(files: dict, labels: dict, dim: int) -> dict:
    torch.set_num_threads(OFFICIAL_THREADS)
    t0 = time.perf_counter()
    model, history = official.fit(files["train"], labels["train"], files["val"], labels["val"], dim=dim)
    wall = time.perf_counter() - t0
    _, scores, _ = official.evaluate(model, files["test"], labels["test"])
    best = int(np.argmin([h["val_loss"] for h in history]))
    return {"wall_s": wall, "epochs": len(history), "best_epoch": best, **evaluate(labels["test"], scores)}


def warm_kernels() -> dict:
    """Fit and score a tiny set, so that LinearProbe's numba kernels are compiled and cached on
    disk (numba's cache=True) before anything is timed: the compile is paid once per machine
    (and again whenever heads/probe_kernels.py changes), not per fit. Returns its seconds."""
    rng = np.random.default_rng(0)
    fs = FeatureSet.from_arrays([rng.standard_normal((5, 16)) for _ in range(4)], [0, 1, 0, 1])
    t0 = time.perf_counter()
    probe = LinearProbe(max_epochs=1).fit(fs, fs)
    probe.decision_function(fs)
    return {"seconds": time.perf_counter() - t0, "engine": probe.engine_}


# -- parts --------------------------------------------------------------------------------------
def part_a(work: Path, scale: float, steps: int, batch_size: int, engine: str,
           shuffles: list[str]) -> dict:
    n = {k: max(20, round(v * scale)) for k, v in AV1M.items()}
    roots = {k: work / f"a-av1m-D1024-{n[k]}-{k}" for k in n}
    for k in n:
        print(f"(a) store {roots[k]} ({n[k]} videos)", flush=True)
        build_store(roots[k], SynthConfig(n=n[k], dim=1024, noise="pool", seed=1 + (k == "val")))
    train, val = FeatureSet.open(roots["train"]), FeatureSet.open(roots["val"])
    steps = min(steps, len(train))
    npy = {"train": export_npy(train, range(steps), work / "a-npy" / "train"),
           "val": export_npy(val, range(min(1000, len(val))), work / "a-npy" / "val")}
    res = {"n_train": len(train), "n_val": len(val)}
    res["floor"] = isolated(read_floor, [str(roots["train"]), str(roots["val"])])
    for shuffle in shuffles:
        res[_ours_key(shuffle, shuffles)] = isolated(ours_epochs, str(roots["train"]), str(roots["val"]), 2,
                                                     batch_size, engine, shuffle)
    for threads in (1, torch.get_num_threads()):  # 1 is faster here; the default is what runs
        off = isolated(official_steps, npy["train"], train.labels[:steps], npy["val"],
                       val.labels[:len(npy["val"])], steps, 1024, threads)
        off["epoch_s"] = off["step_s"] * len(train) + off["val_s"] * len(val)
        res[f"official_{threads}thread"] = off
    return res


def part_b(work: Path, scale: float, batch_sizes: list[int], engines: list[str]) -> dict:
    n = max(200, round(2000 * scale))
    root = work / f"b-planted-D1024-{n}"
    print(f"(b) store {root} ({n} videos)", flush=True)
    fs = build_store(root, SynthConfig(n=n, dim=1024, noise="iid", shift=B_SHIFT, seed=3))
    cut = np.cumsum([round(n * B_SPLIT["train"]), round(n * B_SPLIT["val"])])
    split = dict(zip(["train", "val", "test"], np.split(np.arange(n), cut)))
    files = {k: export_npy(fs, v, work / f"b-npy-{n}") for k, v in split.items()}
    labels = {k: fs.labels[v] for k, v in split.items()}
    res = {"n": {k: len(v) for k, v in split.items()}, "shift": B_SHIFT}
    res["official"] = isolated(official_fit_b, files, labels, 1024)
    for engine in engines:
        for bs in batch_sizes:
            key = f"ours_bs{bs}" + ("" if engine == "auto" else f"_{engine}")
            res[key] = isolated(ours_fit_b, str(root), split, bs, engine)
    return res


def _ours_key(shuffle: str, shuffles: list[str]) -> str:
    return "ours" if shuffle == shuffles[0] else f"ours_{shuffle}"


def part_large(work: Path, gb: float, batch_size: int, engine: str, shuffles: list[str],
               epochs: int, cold: bool) -> dict:
    dim, mean_len = 3840, 225
    n = max(20, int(gb * 1e9 / (mean_len * dim * 2)))
    root = work / f"large-D{dim}-{n}"
    have = sum(p.stat().st_size for p in root.glob("shard-*.bin")) if root.exists() else 0
    need, free = n * mean_len * dim * 2 * 1.01 - have, shutil.disk_usage(work).free
    if need + 5e9 > free:
        raise SystemExit(f"--large needs {need / 1e9:.1f} GB more in {work} (+5 GB spare) but "
                         f"{free / 1e9:.1f} GB are free: lower --large-gb or use another --workdir")
    print(f"(large) store {root} ({n} videos, ~{gb:.0f} GB)", flush=True)
    build_store(root, SynthConfig(n=n, dim=dim, noise="pool", seed=4), log_every=2000)
    res = {"ram_gb": psutil.virtual_memory().total / 1e9}
    for shuffle in shuffles:
        res[_ours_key(shuffle, shuffles)] = isolated(ours_epochs, str(root), None, epochs, batch_size, engine,
                                                     shuffle, cold)
    return res


def report(res: dict) -> None:
    if "a" in res:
        a = res["a"]
        ours, floor = a["ours"], a["floor"]
        steady = min(ours["epoch_s"][1:] or ours["epoch_s"])
        print(f"\n(a) one epoch, {a['n_train']} train + {a['n_val']} val videos, {floor['gb']:.1f} GB fp16")
        print(f"  floor: readinto {floor['readinto_s']:.2f} s ({floor['gb'] / floor['readinto_s']:.1f} GB/s), "
              f"mmap {floor['mmap_s']:.2f} s ({floor['gb'] / floor['mmap_s']:.1f} GB/s)")
        for key in sorted(k for k in a if k.startswith("ours")):
            r = a[key]
            st = min(r["epoch_s"][1:] or r["epoch_s"])
            print(f"  {key} ({r['engine']}, shuffle {r.get('shuffle', 'chunked')}): epochs "
                  f"{', '.join(f'{s:.2f}' for s in r['epoch_s'])} s (the first maps the store, and "
                  f"computes frame norms or loads compiled kernels); peak RSS {r['peak_rss_gb']:.2f} GB; "
                  f"load avg {r['loadavg'][0]:.1f}; epoch / floor = {st / floor['readinto_s']:.2f} "
                  f"(readinto), {st / floor['mmap_s']:.2f} (mmap)")
        for key in sorted(k for k in a if k.startswith("official")):
            off = a[key]
            print(f"  {key}: {off['step_s'] * 1e3:.2f} ms/step, {off['val_s'] * 1e3:.2f} ms/val video -> "
                  f"{off['epoch_s']:.1f} s/epoch (extrapolated); peak RSS {off['peak_rss_gb']:.2f} GB; "
                  f"load avg {off['loadavg'][0]:.1f}; speed-up {off['epoch_s'] / steady:.1f}x "
                  f"(first epoch {off['epoch_s'] / ours['epoch_s'][0]:.1f}x)")
    if "b" in res:
        b = res["b"]
        print(f"\n(b) early stopping on {b['n']} videos (planted shift {b['shift']})")
        off = b["official"]
        for key, r in b.items():
            if key == "official" or key.startswith("ours"):
                ratio = "" if key == "official" else f"  speed-up {off['wall_s'] / r['wall_s']:.1f}x, " \
                    f"AUC diff {100 * (r['auc'] - off['auc']):+.2f} pts; {r['engine']}, first epoch " \
                    f"{r['first_epoch_s']:.2f} s"
                print(f"  {key:16s} {r['wall_s']:7.1f} s, {r['epochs']:3d} epochs (best {r['best_epoch']}), "
                      f"test AUC {r['auc']:.4f} [{r['auc_ci_low']:.3f}, {r['auc_ci_high']:.3f}], "
                      f"AP {r['ap']:.4f}, peak RSS {r['peak_rss_gb']:.2f} GB, load avg "
                      f"{r['loadavg'][0]:.1f}{ratio}")
    if "large" in res:
        big = res["large"]
        for key in sorted(k for k in big if k.startswith("ours")):
            r = big[key]
            print(f"\n(large, {key}: {r['engine']}, shuffle {r['shuffle']}{', cold' if r['cold'] else ''}) "
                  f"epochs over {r['gb']:.1f} GB "
                  f"(RAM {big['ram_gb']:.1f} GB): {', '.join(f'{s:.1f}' for s in r['epoch_s'])} s "
                  f"(last: {r['gb'] / r['epoch_s'][-1]:.2f} GB/s), peak RSS {r['peak_rss_gb']:.2f} GB, "
                  f"load avg {r['loadavg'][0]:.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/avdd-bench"))
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every size by this")
    ap.add_argument("--parts", default="a,b", help="comma-separated: a, b, large")
    ap.add_argument("--large", action="store_true", help="also run the larger-than-RAM epoch")
    ap.add_argument("--large-gb", type=float, default=45.0, help="size of the D=3840 store (x scale)")
    ap.add_argument("--large-epochs", type=int, default=2, help="epochs timed in (large)")
    ap.add_argument("--cold", action="store_true",
                    help="(large): evict the store from the page cache before each fit")
    ap.add_argument("--shuffles", default="uniform",
                    help="LinearProbe epoch planners timed in (a) and large, comma-separated: "
                         "uniform (default), blocked")
    ap.add_argument("--baseline-steps", type=int, default=3000, help="official steps timed in (a)")
    ap.add_argument("--batch-size", type=int, default=LinearProbe().batch_size)
    ap.add_argument("--b-batch-sizes", default="", help="extra batch sizes tried in (b), e.g. 16,32")
    ap.add_argument("--engines", default="auto",
                    help="LinearProbe paths, comma-separated: auto (numba if installed, unless "
                         "AVDD_NO_NUMBA=1), numba, numpy; (b) runs each, (a) and large the first")
    args = ap.parse_args()
    parts = set(args.parts.split(",")) | ({"large"} if args.large else set())
    engines = args.engines.split(",")
    shuffles = args.shuffles.split(",")
    if not set(shuffles) <= {"uniform", "blocked"}:
        ap.error(f"--shuffles: unknown {sorted(set(shuffles) - {'uniform', 'blocked'})}")
    if not set(engines) <= {"auto", "numba", "numpy"}:
        ap.error(f"--engines: unknown {sorted(set(engines) - {'auto', 'numba', 'numpy'})}")
    args.workdir.mkdir(parents=True, exist_ok=True)
    res = {}
    if engines != ["numpy"]:
        res["warm"] = isolated(warm_kernels)
        print(f"probe kernels ({res['warm']['engine']}) compiled or loaded from the cache in "
              f"{res['warm']['seconds']:.2f} s", flush=True)
    if "a" in parts:
        res["a"] = part_a(args.workdir, args.scale, args.baseline_steps, args.batch_size, engines[0], shuffles)
    if "b" in parts:
        extra = [int(x) for x in args.b_batch_sizes.split(",") if x]
        res["b"] = part_b(args.workdir, args.scale, [args.batch_size] + extra, engines)
    if "large" in parts:
        res["large"] = part_large(args.workdir, args.large_gb * args.scale, args.batch_size, engines[0],
                                  shuffles, args.large_epochs, args.cold)
    report(res)
    out = args.workdir / f"results-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(res, indent=2, default=float))
    print(f"\nresults: {out}")


if __name__ == "__main__":
    main()
