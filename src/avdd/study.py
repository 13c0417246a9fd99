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
from .config import DATASETS, DEMO_SCALE, SPLITS, Profile, demo_profile, paper_profile
from .extract import extract_many, features_ready, store_dir
from .metrics import evaluate
from .probe import LinearProbe
from .results import OOD_COLUMNS, TABLE2_COLUMNS, load_table, provenance, save_table
from .store import FeatureSet


def make_profile(profile: str = "demo", *, home: str | Path | None = None, synth_seed: int = 0,
                 synth_scale: float = DEMO_SCALE, data_roots: dict[str, str] | None = None,
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


def probe_path(profile: Profile, backbone: str, train: str, seed: int = 43) -> Path:
    """Where the probe of ``backbone`` trained on ``train`` (train split, val for early
    stopping) is cached: ``cache/probes/<store key>/<train>-seed<seed>.safetensors``."""
    from .extract import backbone_key

    key = backbone_key(get_backbone(backbone))
    return profile.cache_dir / "probes" / key / f"{train}-seed{seed}.safetensors"


def trained_probe(profile: Profile, backbone: str, train: str, *, seed: int = 43,
                  force: bool = False) -> LinearProbe:
    """The linear probe of ``backbone`` trained on dataset ``train`` (cached; training is
    deterministic given the seed, so a cached probe equals a retrained one)."""
    from .probe_io import load_probe, save_probe

    path = probe_path(profile, backbone, train, seed)
    if path.is_file() and not force:
        probe, meta = load_probe(path)
        if meta.get("probe_params") == LinearProbe(random_state=seed).get_params():
            return probe
    probe = LinearProbe(random_state=seed).fit(feature_set(profile, backbone, train, "train"),
                                               feature_set(profile, backbone, train, "val"))
    bb = get_backbone(backbone)
    save_probe(probe, path, backbone=backbone, backbone_config=bb.config(), train=train,
               probe_params=probe.get_params(),
               provenance=provenance(profile=profile.name, synthetic=profile.synthetic,
                                     weights=bb.weights, train=train))
    return probe


def probe_scores(profile: Profile, backbone: str, train: str, test: str, *, seed: int = 43,
                 split: str = "test") -> pd.DataFrame:
    """Video scores of the ``train``-trained probe on ``test``/``split``: a table indexed by
    video id with ``label`` and ``score``."""
    probe = trained_probe(profile, backbone, train, seed=seed)
    fs = feature_set(profile, backbone, test, split)
    return pd.DataFrame({"label": fs.labels, "score": probe.decision_function(fs)},
                        index=pd.Index(fs.ids, name="video_id"))


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
        for code, train, test in columns:
            probe = trained_probe(profile, b, train, seed=seed, force=force)
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


def complementarity(profile: Profile, backbones: dict[str, str], *, train: str = "av1m",
                    test: str = "favc", seed: int = 43, n_bootstrap: int = 1000,
                    force: bool = False) -> dict[str, pd.DataFrame]:
    """Fig. 5: how the ``train``-trained probes of several representations agree on ``test``.

    Args:
        backbones: display label → backbone spec, e.g. ``{"W2V2": "wav2vec2", ...}``.
    Returns:
        ``scores`` (video × label), ``pearson`` and ``spearman`` (label × label, percent) and
        ``fusion`` (long table of :func:`avdd.fusion.fusion_table`: single and pairwise
        late-fusion AUCs, relative improvements, bootstrap intervals). Cached by
        configuration.
    """
    from .fusion import align_scores, correlation_matrix, fusion_table

    config = {"table": "complementarity", "profile": profile.name,
              "synthetic": profile.synthetic, "train": train, "test": test, "seed": seed,
              "n_bootstrap": n_bootstrap,
              "backbones": {k: [b, get_backbone(b).config()] for k, b in backbones.items()},
              "probe": LinearProbe(random_state=seed).get_params()}
    path = _cache_path(profile, "complementarity", config)
    if path.is_file() and not force:
        long = load_table(path)[0]
    else:
        per = {label: probe_scores(profile, b, train, test, seed=seed)
               for label, b in backbones.items()}
        table = align_scores({label: d["score"] for label, d in per.items()})
        labels = next(iter(per.values()))["label"].loc[table.index].to_numpy()
        long = fusion_table(table, labels, n_bootstrap=n_bootstrap, random_state=seed)
        scores = table.assign(label=labels).reset_index()
        save_table(scores, path.with_name(path.stem + "-scores.csv"), provenance(**config))
        long = long.assign(n_videos=len(table), n_fake=int(labels.sum()))
        save_table(long, path, provenance(**config))
    scores = load_table(path.with_name(path.stem + "-scores.csv"))[0].set_index("video_id")
    table = scores.drop(columns="label")
    return {"scores": scores, "pearson": correlation_matrix(table, "pearson"),
            "spearman": correlation_matrix(table, "spearman"), "fusion": long}
