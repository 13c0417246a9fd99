"""The study's first step: the data (the synthetic benchmark, generated on first use) and the
feature stores every later step reads.

Compute only, cached on disk: :func:`prepare` extracts what is missing and nothing else, so a
notebook may call it every time it runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from avdd.backbones import describe
from avdd.config import DATASETS, SPLITS, Profile
from avdd.features.extract import extract_many, features_ready, store_dir
from avdd.features.store import FeatureSet


def ensure_data(profile: Profile, *, workers: int = 2) -> None:
    """Generate the synthetic benchmark if this is the demo profile and it is missing."""
    if not profile.synthetic:
        return
    import fcntl

    from avdd.synth import SynthConfig, generate

    root = Path(profile.data_roots["av1m"]).parent
    root.parent.mkdir(parents=True, exist_ok=True)
    # Several processes (torchrun ranks, parallel notebooks) may ask at once: the first
    # generates under the lock, the others then find the benchmark complete.
    with open(root.parent / f".{root.name}.lock", "w") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        generate(root, SynthConfig(seed=profile.synth_seed, scale=profile.synth_scale),
                 workers=workers)

def prepare(profile: Profile, backbones: Sequence[str], datasets: Sequence[str] = DATASETS, *,
            splits: Sequence[str] | None = None, workers: int = 2, progress: bool = True) -> None:
    """Make sure data and features of ``datasets`` exist (cached): every split of
    ``config.SPLITS``, or only ``splits`` (e.g. AV1M's real-only ``real_train`` and
    ``real_val``, :data:`avdd.config.REAL_ONLY_SPLITS`, which only the anomaly page needs)."""
    ensure_data(profile, workers=workers)
    jobs = [(ds, split) for ds in datasets for split in (SPLITS[ds] if splits is None else splits)
            if not all(features_ready(profile, b, ds, split) for b in backbones)]
    if not jobs:
        return
    # Backbones whose features are complete are skipped per video by the runner.
    for r in extract_many(profile, backbones, jobs, workers=workers, progress=progress):
        if r.failed:
            print(r.summary())

def feature_set(profile: Profile, backbone: str, dataset: str, split: str) -> FeatureSet:
    return FeatureSet.open(store_dir(profile, describe(backbone), dataset, split))
