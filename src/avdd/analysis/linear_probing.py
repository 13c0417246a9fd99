"""The study's steps as functions the notebooks call: prepare data and features, fit probes.

Compute lives here, presentation in the notebooks. Each result table is cached under the
profile's cache folder with its provenance, keyed by its configuration, so re-running a
notebook after a plotting change recomputes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from avdd.analysis.cache import result_path
from avdd.analysis.metrics import evaluate
from avdd.backbones import describe
from avdd.config import Profile
from avdd.features.prepare import feature_set
from avdd.heads.probe import LinearProbe
from avdd.provenance import load_table, provenance, save_table

#: Table 2 columns: (code, train set, test set), as in the paper.
TABLE2_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("A", "favc", "favc"), ("B", "av1m", "favc"), ("C", "av1m", "av1m"),
    ("D", "favc", "av1m"), ("E", "favc", "avlips"), ("F", "av1m", "avlips"),
    ("G", "dfe", "dfe"), ("H", "favc", "dfe"), ("I", "av1m", "dfe"),
)

#: The out-of-domain columns averaged into J.
OOD_COLUMNS: tuple[str, ...] = ("B", "D", "E", "F", "H", "I")



def probe_path(profile: Profile, backbone: str, train: str, seed: int = 43) -> Path:
    """Where the probe of ``backbone`` trained on ``train`` (train split, val for early
    stopping) is cached: ``cache/probes/<store key>/<train>-seed<seed>.safetensors``."""
    from avdd.features.extract import backbone_key

    key = backbone_key(describe(backbone))
    return profile.cache_dir / "probes" / key / f"{train}-seed{seed}.safetensors"


def trained_probe(profile: Profile, backbone: str, train: str, *, seed: int = 43,
                  force: bool = False) -> LinearProbe:
    """The linear probe of ``backbone`` trained on dataset ``train`` (cached; training is
    deterministic given the seed, so a cached probe equals a retrained one)."""
    from avdd.heads.probe_io import load_probe, save_probe

    path = probe_path(profile, backbone, train, seed)
    if path.is_file() and not force:
        probe, meta = load_probe(path)
        if meta.get("probe_params") == LinearProbe(random_state=seed).get_params():
            return probe
    probe = LinearProbe(random_state=seed).fit(feature_set(profile, backbone, train, "train"),
                                               feature_set(profile, backbone, train, "val"))
    bb = describe(backbone)
    save_probe(probe, path, backbone=backbone, backbone_config=bb.config, train=train,
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
              "backbones": {b: describe(b).config for b in backbones}, "seed": seed,
              "columns": [list(c) for c in columns], "n_bootstrap": n_bootstrap,
              "probe": LinearProbe(random_state=seed).get_params()}
    path = result_path(profile, "linear_probe_grid", config)
    if path.is_file() and not force:
        return load_table(path)[0]
    rows = []
    for b in backbones:
        bb = describe(b)
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


