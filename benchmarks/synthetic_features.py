"""Synthetic feature stores for the probe benchmarks (written through avdd.features.store itself).

Two kinds of videos, lengths uniform in [100, 350] frames (AV1M-like), labels alternating:

* ``noise="pool"``: frames are windows of one shared block of Gaussian noise -- no signal,
  but written at disk speed, for timing epochs on tens of GB;
* ``noise="iid"``: fresh Gaussian frames; fakes get one planted segment (10-40 frames) shifted
  by ``shift`` along a fixed unit direction, for training to convergence.

Generation is deterministic per video (seeded by its index) and resumable: an interrupted
run continues from ``done_ids()``; ``store.json``'s config keys the parameters.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from avdd.features.store import FeatureSet, FeatureStore

FPS = 25.0
POOL_FRAMES = 32768  # shared noise block for "pool" stores (64 MB at D = 1024)


@dataclass(frozen=True)
class SynthConfig:
    n: int  # videos
    dim: int  # feature size D
    noise: str = "pool"  # "pool" (timing) or "iid" (planted signal)
    shift: float = 0.0  # planted shift along the signal direction, in noise std units
    min_len: int = 100
    max_len: int = 350
    seed: int = 0


def _to_fp16(x: np.ndarray) -> np.ndarray:
    return torch.from_numpy(x).half().numpy()  # torch converts ~10x faster than NumPy here


def build_store(root: Path, cfg: SynthConfig, *, log_every: int = 5000) -> FeatureSet:
    """Write (or finish writing) the store at ``root`` and open it."""
    root = Path(root)
    if (root / "store.json").exists():
        try:
            FeatureStore(root, config=asdict(cfg))
        except ValueError:  # same directory, other parameters: start again
            shutil.rmtree(root)
    store = FeatureStore(root, dim=cfg.dim, fps=FPS, backbone="synthetic", config=asdict(cfg),
                         provenance={"generator": "benchmarks/synthetic_features.py"}, durable=False)
    done = store.done_ids()
    if len(done) < cfg.n:
        rng = np.random.default_rng([cfg.seed, 1 << 30])
        direction = rng.standard_normal(cfg.dim)
        direction /= np.linalg.norm(direction)
        pool = _to_fp16(rng.standard_normal((POOL_FRAMES, cfg.dim), np.float32)) if cfg.noise == "pool" else None
        for i in range(cfg.n):
            vid = f"v{i:06d}"
            if vid in done:
                continue
            r = np.random.default_rng([cfg.seed, i])
            t = int(r.integers(cfg.min_len, cfg.max_len + 1))
            label, meta = i % 2, {}
            if pool is not None:
                start = int(r.integers(POOL_FRAMES - t))
                x = pool[start:start + t]
            else:
                x = r.standard_normal((t, cfg.dim), np.float32)
                if label:
                    k = int(r.integers(10, 41))
                    a = int(r.integers(0, t - k + 1))
                    x[a:a + k] += np.float32(cfg.shift) * direction.astype(np.float32)
                    meta["fake_segments"] = [[a / FPS, (a + k) / FPS]]
                    meta["fake_frames"] = [a, a + k]
                x = _to_fp16(x)
            store.append(vid, x, label=label, **meta)
            if log_every and (i + 1) % log_every == 0:
                print(f"  {root.name}: {i + 1}/{cfg.n} videos", flush=True)
    store.close()
    return FeatureSet.open(root)


def export_npy(fs: FeatureSet, idx, out_dir: Path) -> list[Path]:
    """One ``<id>.npy`` (T, D) fp16 file per video, as the official release stores features."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in idx:
        path = out_dir / f"{fs.ids[i]}.npy"
        if not path.exists():
            tmp = path.with_suffix(".tmp.npy")
            np.save(tmp, np.asarray(fs[i]))
            tmp.rename(path)
        paths.append(path)
    return paths
