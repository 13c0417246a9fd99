"""The study's steps as functions the notebooks call: prepare data and features, fit probes.

Compute lives here, presentation in the notebooks. Each result table is cached under the
profile's cache folder with its provenance, keyed by its configuration, so re-running a
notebook after a plotting change recomputes nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .backbones import get_backbone
from .config import DATASETS, SPLITS, Profile, demo_profile, paper_profile
from .extract import extract_many, features_ready, store_dir
from .metrics import evaluate
from .probe import LinearProbe
from .results import OOD_COLUMNS, TABLE2_COLUMNS, load_table, provenance, save_table
from .store import FeatureSet


def make_profile(profile: str = "demo", *, home: str | Path | None = None, synth_seed: int = 0,
                 synth_scale: float = 1.0, data_roots: dict[str, str] | None = None,
                 cache_dir: str | Path | None = None) -> Profile:
    """Build a profile from notebook parameters (all plain values, as papermill passes them)."""
    if profile == "demo":
        return demo_profile(home, seed=synth_seed, scale=synth_scale)
    if profile == "paper":
        if not data_roots or not cache_dir:
            raise ValueError("the paper profile needs data_roots={dataset: folder} and cache_dir")
        return paper_profile(data_roots, cache_dir)
    raise ValueError(f"unknown profile {profile!r}; expected 'demo' or 'paper'")


def ensure_data(profile: Profile, *, workers: int = 2) -> None:
    """Generate the synthetic benchmark if this is the demo profile and it is missing."""
    if not profile.synthetic:
        return
    from .synth import SynthConfig, generate

    import fcntl

    root = Path(profile.data_roots["av1m"]).parent
    root.parent.mkdir(parents=True, exist_ok=True)
    # Several processes (torchrun ranks, parallel notebooks) may ask at once: the first
    # generates under the lock, the others then find the benchmark complete.
    with open(root.parent / f".{root.name}.lock", "w") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        generate(root, SynthConfig(seed=profile.synth_seed, scale=profile.synth_scale),
                 workers=workers)


def prepare(profile: Profile, backbones: Sequence[str], datasets: Sequence[str] = DATASETS, *,
            workers: int = 2, progress: bool = True) -> None:
    """Make sure data and features of every split of ``datasets`` exist (cached)."""
    ensure_data(profile, workers=workers)
    jobs = [(ds, split) for ds in datasets for split in SPLITS[ds]
            if not all(features_ready(profile, b, ds, split) for b in backbones)]
    if not jobs:
        return
    # Backbones whose features are complete are skipped per video by the runner.
    for r in extract_many(profile, backbones, jobs, workers=workers, progress=progress):
        if r.failed:
            print(r.summary())


def feature_set(profile: Profile, backbone: str, dataset: str, split: str) -> FeatureSet:
    return FeatureSet.open(store_dir(profile, get_backbone(backbone), dataset, split))


def _cache_path(profile: Profile, name: str, config: dict[str, Any]) -> Path:
    key = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()
    return profile.cache_dir / "results" / f"{name}-{key[:12]}.csv"


def linear_probe_grid(profile: Profile, backbones: Sequence[str], *, seed: int = 43,
                      columns: Sequence[tuple[str, str, str]] = TABLE2_COLUMNS,
                      n_bootstrap: int = 1000, force: bool = False) -> pd.DataFrame:
    """Train one probe per (backbone, training set) and test it on every column's test set.

    Returns a long table: one row per (backbone, column) with ``auc``, ``ap``, the bootstrap
    95 % interval on AUC (``auc_ci_low``, ``auc_ci_high``), test-set sizes, the best epoch,
    and the backbone's modality and weights. AUC and AP are in percent, as in the paper.
    Cached by configuration; ``force`` recomputes.
    """
    config = {"table": "linear_probe_grid", "profile": profile.name,
              "synthetic": profile.synthetic, "data": {k: str(v) for k, v in
                                                        profile.data_roots.items()},
              "backbones": {b: get_backbone(b).config() for b in backbones}, "seed": seed,
              "columns": [list(c) for c in columns], "n_bootstrap": n_bootstrap,
              "probe": LinearProbe(random_state=seed).get_params()}
    path = _cache_path(profile, "linear_probe_grid", config)
    if path.is_file() and not force:
        return load_table(path)[0]
    rows = []
    for b in backbones:
        bb = get_backbone(b)
        probes: dict[str, LinearProbe] = {}
        for code, train, test in columns:
            if train not in probes:
                probes[train] = LinearProbe(random_state=seed).fit(
                    feature_set(profile, b, train, "train"), feature_set(profile, b, train, "val"))
            probe = probes[train]
            xt = feature_set(profile, b, test, "test")
            scores = probe.decision_function(xt)
            if len(set(xt.labels.tolist())) < 2:
                # AUC is undefined on a one-class test set: keep the row, say why.
                m = dict.fromkeys(("auc", "ap", "auc_ci_low", "auc_ci_high"), float("nan"))
            else:
                m = evaluate(xt.labels, scores, n_bootstrap=n_bootstrap, random_state=seed)
            rows.append({"backbone": b, "modality": bb.modality, "weights": bb.weights,
                         "column": code, "train": train, "test": test,
                         **{k: 100 * m[k] for k in ("auc", "ap", "auc_ci_low", "auc_ci_high")},
                         "n_real": int((xt.labels == 0).sum()),
                         "n_fake": int((xt.labels == 1).sum()),
                         "best_epoch": probe.best_epoch_})
    df = pd.DataFrame(rows)
    save_table(df, path, provenance(**config))
    return df


def table2_matrix(grid: pd.DataFrame, value: str = "auc") -> pd.DataFrame:
    """Pivot the long grid into the paper's layout: rows = backbones, columns A–I plus
    J = mean of the six out-of-domain columns."""
    wide = grid.pivot(index="backbone", columns="column", values=value)
    wide = wide[[c for c, _, _ in TABLE2_COLUMNS if c in wide.columns]]
    ood = [c for c in OOD_COLUMNS if c in wide.columns]
    if len(ood) == len(OOD_COLUMNS):
        wide["J"] = wide[ood].mean(axis=1)
    order = list(dict.fromkeys(grid["backbone"]))
    return wide.loc[order]
