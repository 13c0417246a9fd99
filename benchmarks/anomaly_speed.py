"""How long do the anomaly detectors take to train at the paper's scale? Prints figures.

    python benchmarks/anomaly_speed.py             # 45,000 real videos (~18 GB in --workdir)
    python benchmarks/anomaly_speed.py --quick     # 2,000 videos, fewer batches: ~2 min
    python benchmarks/anomaly_speed.py --videos 10000 --threads 2   # an idle machine: 2 threads

Synthetic stores (written through avdd.features.store, all videos real, lengths uniform in
[--min-len, --max-len] frames, ~100 by default; frames are windows of one block of Gaussian
noise, so they are written at disk speed and carry no signal):

* V: D = 1024 (the NTP input, and the sync detector's visual stream),
* A: D = 1024 (the sync detector's audio stream), same ids and lengths as V.

Measurements, each in a fresh process so that its peak RSS is its own:

(a) NTP (paper architecture, batch 32): one training epoch over a random subset of
    ``--ntp-batches`` batches drawn from the whole store, then a scoring pass over it (the
    same computation as NTP's validation pass).
(b) Sync (AVH-Align, batches of 1,024 frames): likewise with ``--sync-batches`` batches; its
    validation pass is timed as ``predicted_offsets`` (the same windowed forward as the
    validation loss), its scoring pass as ``decision_function`` (aligned pairs only).
    Both are **extrapolated** to a full epoch by frame count: seconds per epoch = frames in
    the store / measured frames per second (+ a validation pass over a set 1/9 the size, the
    paper's 5k/45k). Subsets are streamed with ``max_resident_mb=0`` (every batch unmapped
    after use), as the full store is (it exceeds the 2 GB default), so the RSS is the one a
    full epoch would have.
(c) A demo-sized fit: ``--demo-videos`` in-memory videos (80 % train, 20 % validation),
    paper architecture, up to ``--demo-epochs`` epochs (early stopping as in the paper). With
    the default cap this is *not* a fit to convergence: the per-epoch time is printed so the
    full fit (at least patience + 1 = 11 epochs, at most 100 for NTP / 500 for sync) can be read
    off.

Note: the real AV1M training videos are longer (228 frames on average in AVH-Align's
``train_metadata.csv``); times scale about linearly with frames (NTP slightly more, attention).
Other work on the machine skews timings: the load average is printed with each figure. On
the shared 2-vCPU machine this was written on (load average ~6), one torch thread trained
2.5-4x faster than two, hence ``--threads 1`` by default; on an idle machine try 2.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from avdd.features.store import FeatureSet, FeatureStore
from avdd.heads.ntp import NextTokenPredictor
from avdd.heads.sync import SyncDetector

FPS = 25.0
POOL_FRAMES = 32768  # shared noise block (64 MB at D = 1024)
PAPER_VAL_RATIO = 5000 / 45000  # AV1M real videos: 45k train, 5k val (SPEC.md)


# -- data ---------------------------------------------------------------------------------------
def _pool(dim: int, seed: int) -> np.ndarray:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(POOL_FRAMES, dim, generator=gen).half().numpy()


def _length(i: int, lo: int, hi: int) -> int:
    return int(np.random.default_rng([7, i]).integers(lo, hi + 1))  # same for V and A


def build_store(root: Path, *, n: int, dim: int, lo: int, hi: int, seed: int) -> FeatureSet:
    """Write (or finish, or reuse) a store of ``n`` real videos; resumable via done_ids()."""
    config = {"kind": "anomaly-pool", "n": n, "dim": dim, "min_len": lo, "max_len": hi, "seed": seed}
    if (root / "store.json").exists():
        try:
            FeatureStore(root, config=config).close()
        except ValueError:  # same directory, other parameters: start again
            shutil.rmtree(root)
    store = FeatureStore(root, dim=dim, fps=FPS, backbone="synthetic", config=config,
                         provenance={"generator": "benchmarks/anomaly_speed.py"}, durable=False)
    done = store.done_ids()
    if len(done) < n:
        pool, rng = _pool(dim, seed), np.random.default_rng(seed)
        starts = rng.integers(0, POOL_FRAMES - hi, n)
        for i in range(n):
            vid = f"v{i:06d}"
            if vid not in done:
                t = _length(i, lo, hi)
                store.append(vid, pool[starts[i]:starts[i] + t], label=0)
    store.close()
    return FeatureSet.open(root)


def demo_sets(n: int, dim: int, lo: int, hi: int, seed: int) -> tuple[FeatureSet, FeatureSet]:
    """(V, A) in memory, all real."""
    rng = np.random.default_rng(seed)
    pools = _pool(dim, seed), _pool(dim, seed + 1)
    lengths = rng.integers(lo, hi + 1, n)
    starts = rng.integers(0, POOL_FRAMES - hi, (2, n))
    ids = [f"d{i:04d}" for i in range(n)]
    return tuple(FeatureSet.from_arrays([p[s:s + t] for s, t in zip(starts[k], lengths)], [0] * n, ids=ids)
                 for k, p in enumerate(pools))


# -- measurements (each in a fresh process) -------------------------------------------------------
def _vm_hwm() -> int:
    """Peak resident set of this process in bytes (VmHWM: not inherited across fork + exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _call(fn, threads, args):
    if threads:
        torch.set_num_threads(threads)
    out = fn(*args)
    out.update(peak_rss_gb=_vm_hwm() / 1e9, loadavg=os.getloadavg(), torch_threads=torch.get_num_threads())
    return out


def isolated(fn, threads, *args) -> dict:
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(_call, (fn, threads, args))


def _subset(fs: FeatureSet, frames: int, seed: int) -> np.ndarray:
    """Random videos spread over the whole store, about ``frames`` frames in all."""
    k = max(1, min(len(fs), round(frames / fs.lengths.mean())))
    return np.sort(np.random.default_rng(seed).choice(len(fs), k, replace=False))


def ntp_partial(v_root: str, n_batches: int, seed: int) -> dict:
    fs = FeatureSet.open(v_root)
    sub = fs.subset(_subset(fs, n_batches * 32 * fs.lengths.mean(), seed))
    model = NextTokenPredictor(max_epochs=1, max_resident_mb=0, random_state=seed)
    model.fit(sub)
    t0 = time.perf_counter()
    model.decision_function(sub)
    score_s = time.perf_counter() - t0
    return {"videos": len(sub), "frames": int(sub.lengths.sum()), "train_s": model.history_[0]["seconds"],
            "score_s": score_s, "val_s": score_s}


def sync_partial(v_root: str, a_root: str, n_batches: int, seed: int) -> dict:
    v, a = FeatureSet.open(v_root), FeatureSet.open(a_root)
    idx = _subset(v, n_batches * 1024, seed)
    v, a = v.subset(idx), a.subset(idx)
    model = SyncDetector(max_epochs=1, max_resident_mb=0, random_state=seed)
    model.fit(v, a)
    t0 = time.perf_counter()
    model.decision_function(v, a)
    t1 = time.perf_counter()
    model.predicted_offsets(v, a)  # windowed forward: what the validation loss costs
    return {"videos": len(v), "frames": int(v.lengths.sum()), "train_s": model.history_[0]["seconds"],
            "score_s": t1 - t0, "val_s": time.perf_counter() - t1}


def demo_fit(kind: str, n: int, dim: int, lo: int, hi: int, epochs: int, seed: int) -> dict:
    v, a = demo_sets(n, dim, lo, hi, seed)
    cut = int(0.8 * n)
    tr, va = np.arange(cut), np.arange(cut, n)
    t0 = time.perf_counter()
    if kind == "ntp":
        model = NextTokenPredictor(max_epochs=epochs, random_state=seed).fit(v.subset(tr), v.subset(va))
    else:
        model = SyncDetector(max_epochs=epochs, random_state=seed).fit(
            v.subset(tr), a.subset(tr), (v.subset(va), a.subset(va)))
    return {"wall_s": time.perf_counter() - t0, "epochs": len(model.history_), "best_epoch": model.best_epoch_,
            "epoch_s": [h["seconds"] for h in model.history_], "train_videos": len(tr),
            "train_frames": int(v.lengths[tr].sum())}


# -- report ---------------------------------------------------------------------------------------
def extrapolate(part: dict, store_frames: int) -> dict:
    train_fps, score_fps, val_fps = (part["frames"] / part[k] for k in ("train_s", "score_s", "val_s"))
    return {"train_frames_per_s": train_fps, "score_frames_per_s": score_fps, "val_frames_per_s": val_fps,
            "epoch_train_s": store_frames / train_fps,
            "epoch_val_s": store_frames * PAPER_VAL_RATIO / val_fps}


def show(name: str, part: dict, ext: dict, n_videos: int, store_frames: int) -> None:
    print(f"\n{name}: timed one epoch over {part['videos']} videos ({part['frames']:,} frames) drawn from "
          f"the {n_videos:,}-video store; full epoch EXTRAPOLATED by frame count ({store_frames:,} frames)")
    print(f"  train   {ext['train_frames_per_s']:10,.0f} frames/s  -> {ext['epoch_train_s'] / 60:8.1f} min per "
          f"training epoch")
    print(f"  val     {ext['val_frames_per_s']:10,.0f} frames/s  -> {ext['epoch_val_s'] / 60:8.1f} min per "
          f"validation pass ({PAPER_VAL_RATIO:.3f} x the train frames)")
    print(f"  score   {ext['score_frames_per_s']:10,.0f} frames/s  (decision_function)")
    print(f"  peak RSS {part['peak_rss_gb']:.2f} GB   torch threads {part['torch_threads']}   "
          f"load average {part['loadavg'][0]:.1f}")


def show_demo(name: str, d: dict, patience: int = 10) -> None:
    per_epoch = float(np.mean(d["epoch_s"]))
    print(f"\n{name} demo-sized fit: {d['train_videos']} train videos ({d['train_frames']:,} frames) + val, "
          f"{d['epochs']} epochs in {d['wall_s']:.1f} s ({per_epoch:.1f} s/epoch incl. validation; best epoch "
          f"{d['best_epoch']}); peak RSS {d['peak_rss_gb']:.2f} GB, load average {d['loadavg'][0]:.1f}")
    if d["epochs"] < patience + 1:
        print(f"  capped at {d['epochs']} epochs (--demo-epochs): a fit to early stopping needs at least "
              f"{patience + 1} epochs, i.e. >= {(patience + 1) * per_epoch / 60:.1f} min at this rate")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--videos", type=int, default=45000, help="real training videos in the store (paper: 45,000)")
    p.add_argument("--quick", action="store_true", help="2,000 videos, 2 NTP / 4 sync batches, 100 demo videos")
    p.add_argument("--dim", type=int, default=1024, help="D of each stream (paper: 1024 for AV-HuBERT)")
    p.add_argument("--min-len", type=int, default=80)
    p.add_argument("--max-len", type=int, default=120)
    p.add_argument("--ntp-batches", type=int, default=3, help="NTP batches of 32 videos to time")
    p.add_argument("--sync-batches", type=int, default=6, help="sync batches of 1,024 frames to time")
    p.add_argument("--demo-videos", type=int, default=300)
    p.add_argument("--demo-epochs", type=int, default=2, help="epoch cap of the demo-sized fits")
    p.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    p.add_argument("--workdir", type=Path, default=Path("build/anomaly-bench"))
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.quick:
        args.videos = min(args.videos, 2000)
        args.ntp_batches, args.sync_batches, args.demo_videos = 2, 4, 100
    args.workdir.mkdir(parents=True, exist_ok=True)

    tag = f"{args.videos}-D{args.dim}-{args.min_len}-{args.max_len}"
    roots = {s: args.workdir / f"{s}-{tag}" for s in ("V", "A")}
    t0 = time.perf_counter()
    for k, (s, root) in enumerate(roots.items()):
        fs = build_store(root, n=args.videos, dim=args.dim, lo=args.min_len, hi=args.max_len, seed=args.seed + k)
    frames = int(fs.lengths.sum())
    print(f"stores {', '.join(map(str, roots.values()))}: {args.videos:,} videos, {frames:,} frames, "
          f"{2 * fs.nbytes / 1e9:.1f} GB ({time.perf_counter() - t0:.0f} s to write or reuse)", flush=True)

    results = {"args": {k: str(v) for k, v in vars(args).items()}, "store_frames": frames}
    part = isolated(ntp_partial, args.threads, str(roots["V"]), args.ntp_batches, args.seed)
    results["ntp"] = {**part, **extrapolate(part, frames)}
    show(f"(a) NTP, D = {args.dim}", part, results["ntp"], args.videos, frames)
    part = isolated(sync_partial, args.threads, str(roots["V"]), str(roots["A"]), args.sync_batches, args.seed)
    results["sync"] = {**part, **extrapolate(part, frames)}
    show(f"(b) Sync, D = {args.dim} + {args.dim}", part, results["sync"], args.videos, frames)
    for kind in ("ntp", "sync"):
        d = isolated(demo_fit, args.threads, kind, args.demo_videos, args.dim, args.min_len, args.max_len,
                     args.demo_epochs, args.seed)
        results[f"demo_{kind}"] = d
        show_demo(f"(c) {kind.upper()}", d)
    out = args.workdir / f"results-{tag}.json"
    out.write_text(json.dumps(results, indent=1, default=float))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
