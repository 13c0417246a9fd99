"""Extraction throughput: videos/s and frames/s per backbone, decode vs model time. Prints figures.

    python benchmarks/extract_speed.py                         # demo backbones, CPU, 40 videos
    python benchmarks/extract_speed.py --videos 200 --backbone logmel --backbone clip-tiny-random
    python benchmarks/extract_speed.py --device cuda --real    # real architectures, random init

Part 1 (per backbone, one process, one thread per op as in a pool worker): for the first
``--videos`` clips of the synthetic AV1M-like test split, time the decode (PyAV, only the
streams the backbone needs) and the model call separately.

Part 2 (runner): the whole split through :func:`avdd.features.extract.extract` on the two execution
paths, in fresh cache folders — CPU worker pool (``device=None``) and models-in-process with
DataLoader decode workers (``device=...``) — videos/s end to end.

Part 3 (``--real``, meant for a GPU machine): the real architectures (Wav2Vec2 XLS-R 2B,
CLIP ViT-L/14, VideoMAE-large, FSFM ViT-B/16) at random init from their shipped configs, on
7.5 s inputs: forward time fp32 vs bf16 autocast, batch 1 vs ``--batch``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np


def _bench_backbone(name: str, items, device: str | None) -> dict:
    from avdd.backbones import get_backbone
    from avdd.media import read_clip
    from avdd.roi.mouth import compute_rois
    from avdd.roi.regions import Roi

    bb = get_backbone(name)
    if device:
        bb.to(device)
    video, audio = bb.decodes  # the streams the runner decodes for it

    def inputs(item):
        clip = read_clip(item.path, video=video, audio=audio)
        t = time.perf_counter()
        roi = Roi.from_annotation(item.annotation)
        if bb.uses_mouth_roi and bb.needs_video:  # the runner makes it once per video and recipe
            roi = dataclasses.replace(roi or Roi(), mouth=compute_rois(clip, roi, bb.landmarks,
                                                                       bb.roi_recipe))
        return clip, roi, time.perf_counter() - t

    clip, roi, _ = inputs(items[0])
    bb(clip, roi)  # warm-up (lazy inits, allocator)
    t_dec = t_roi = t_model = 0.0
    frames = 0
    for item in items:
        t0 = time.perf_counter()
        clip, roi, dt_roi = inputs(item)
        t1 = time.perf_counter()
        f = bb(clip, roi)
        _sync(device)
        t2 = time.perf_counter()
        t_dec, t_roi, t_model = t_dec + t1 - t0 - dt_roi, t_roi + dt_roi, t_model + t2 - t1
        frames += len(f)
    n = len(items)
    total = t_dec + t_roi + t_model
    return {"backbone": name, "videos": n, "decode ms/video": 1e3 * t_dec / n,
            "mouth ROI ms/video": 1e3 * t_roi / n, "model ms/video": 1e3 * t_model / n,
            "videos/s": n / total, "frames/s": frames / total, "model frames/s": frames / t_model}


def _sync(device: str | None) -> None:
    if device and device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def part_runner(profile, names, workers: int, device: str, batch: int) -> list[dict]:
    from avdd.features.extract import extract

    rows = []
    for label, kw in (("CPU pool", {"workers": workers}),
                      (f"device={device} + {workers} decode workers, batch {batch}",
                       {"workers": workers, "device": device, "batch_size": batch})):
        with tempfile.TemporaryDirectory() as tmp:
            prof = replace(profile, cache_dir=Path(tmp))
            t0 = time.perf_counter()
            reports = extract(prof, names, "av1m", "test", progress=False, **kw)
            dt = time.perf_counter() - t0
        n = reports[0].total
        rows.append({"path": label, "videos": n, "seconds": dt, "videos/s": n / dt,
                     "failed": sum(r.failed for r in reports)})
    return rows


def part_real(device: str, batch: int, seconds: float = 7.5) -> list[dict]:
    """Forward time of the real architectures at random init (no weights needed)."""
    import torch

    from avdd.backbones import get_backbone
    from avdd.media import Clip

    rng = np.random.default_rng(0)
    t = int(25 * seconds)
    video = rng.integers(0, 255, (t, 224, 224, 3), dtype=np.uint8)
    audio = (0.1 * rng.standard_normal(int(16000 * seconds))).astype(np.float32)
    clip = Clip(video=video, audio=audio)
    rows = []
    for name in ("wav2vec2-random", "clip-random", "videomae-random", "fsfm-random"):
        bb = get_backbone(name).to(device)
        for precision in ("fp32", "bf16"):
            for b in (1, batch):
                clips = [clip] * b
                ctx = (torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
                       if precision == "bf16" else torch.autocast("cpu", enabled=False))
                with ctx:
                    def run(bb=bb, clips=clips, b=b):  # bound now: `bb` is deleted below
                        return bb.batch(clips, [None] * b) if bb.batch_key(clip) is not None \
                            else [bb(c) for c in clips]
                    run()
                    _sync(device)
                    t0 = time.perf_counter()
                    run()
                    _sync(device)
                    dt = time.perf_counter() - t0
                rows.append({"backbone": name, "precision": precision, "batch": b,
                             "videos/s": b / dt, "frames/s": b * t / dt})
        del bb
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--videos", type=int, default=40, help="clips timed per backbone (part 1)")
    ap.add_argument("--backbone", action="append", help="default: the demo backbones")
    ap.add_argument("--home", type=Path, default=Path(os.environ.get("AVDD_HOME", ".avdd")))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--device", default=None, help="cuda, cuda:0, cpu (part 1 model device)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--skip-runner", action="store_true")
    ap.add_argument("--real", action="store_true", help="part 3: real architectures")
    args = ap.parse_args()

    import pandas as pd
    import torch
    from threadpoolctl import threadpool_limits

    from avdd.config import DEMO_BACKBONES, make_profile
    from avdd.datasets import load_items
    from avdd.features.prepare import ensure_data

    pd.set_option("display.width", 160)
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
          f"device {args.device or 'cpu'}"
          + (f" ({torch.cuda.get_device_name()})" if torch.cuda.is_available() else ""))
    names = args.backbone or list(DEMO_BACKBONES)
    if not args.real or args.backbone:
        profile = make_profile("demo", home=args.home)
        ensure_data(profile, workers=args.workers)
        items = load_items(profile, "av1m", "test")[:args.videos]
        print(f"\n(1) per backbone, {len(items)} synthetic AV1M-like clips "
              f"(mean {np.mean([len(i.annotation['mouth_centre']) for i in items]):.0f} frames)"
              ", decode + model in one process"
              + ("" if args.device else ", 1 thread as in a pool worker"))
        with threadpool_limits(1 if not args.device else None):
            if not args.device:
                torch.set_num_threads(1)
            rows = [_bench_backbone(n, items, args.device) for n in names]
        print(pd.DataFrame(rows).round(1).to_string(index=False))
        if not args.skip_runner:
            torch.set_num_threads(os.cpu_count() or 1)
            print(f"\n(2) the runner end to end on av1m/test, all {len(names)} backbones")
            rows = part_runner(profile, names, args.workers, args.device or "cpu", args.batch)
            print(pd.DataFrame(rows).round(2).to_string(index=False))
    if args.real:
        device = args.device or "cpu"
        print(f"\n(3) real architectures at random init on {device}, 7.5 s inputs")
        print(pd.DataFrame(part_real(device, args.batch)).round(1).to_string(index=False))


if __name__ == "__main__":
    sys.exit(main())
