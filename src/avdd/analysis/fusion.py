"""Complementarity of representations: score correlation and pairwise late fusion (Fig. 5).

Inputs are the test-set scores of several detectors on the *same* videos (e.g. the
AV1M-trained probes of five backbones scored on FAVC test). Late fusion is the mean of two
raw scores (SPEC.md, "Complementarity"); its gain is reported relative to the row's own AUC,
``100 (AUC_fused - AUC_i) / AUC_i``. Bootstrap intervals resample videos (stratified by label,
paired across detectors) so that every number of one replicate comes from the same videos.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy.stats import pearsonr, spearmanr

from avdd.analysis.cache import cached
from avdd.analysis.metrics import auc, percentile_interval, stratified_indices
from avdd.analysis.probes import probe_scores, study_probe
from avdd.backbones import describe
from avdd.config import Profile

__all__ = ["align_scores", "correlation_matrix", "late_fusion", "fusion_table"]


def align_scores(scores: Mapping[str, pd.Series]) -> pd.DataFrame:
    """Scores of several detectors as one table over the videos they all scored.

    Args:
        scores: name → Series of scores indexed by video id (videos missing from one
            detector, e.g. failed extractions, are dropped from all).
    Returns:
        (N, K) table indexed by video id; columns keep the mapping's order.
    """
    table = pd.concat(dict(scores), axis=1, join="inner")
    if table.empty:
        raise ValueError("the detectors share no scored video")
    return table


def correlation_matrix(table: pd.DataFrame, method: str = "pearson") -> pd.DataFrame:
    """(K, K) correlation of the detectors' scores in percent (``pearson`` or ``spearman``)."""
    fn = {"pearson": pearsonr, "spearman": spearmanr}[method]
    names = list(table.columns)
    out = pd.DataFrame(100.0, index=names, columns=names)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            r = 100 * float(fn(table[a], table[b])[0])
            out.loc[a, b] = out.loc[b, a] = r
    return out


def late_fusion(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean of two raw scores (no calibration, as in the paper)."""
    return (np.asarray(a, np.float64) + np.asarray(b, np.float64)) / 2


def fusion_table(table: pd.DataFrame, labels: np.ndarray, *, n_bootstrap: int = 1000,
                 random_state: int = 0) -> pd.DataFrame:
    """AUC of every detector and of every pairwise late fusion, with bootstrap intervals.

    Args:
        table: (N, K) scores (:func:`align_scores`).
        labels: (N,) 0 real / 1 fake.
    Returns:
        Long table, one row per ordered pair (row, col) incl. row == col: ``auc_row``,
        ``auc_fused`` (percent), ``rel_improvement`` = 100 (fused − row) / row, and the 2.5 /
        97.5 % bootstrap percentiles of ``auc_fused`` and ``rel_improvement``.
    """
    y = np.asarray(labels)
    if set(np.unique(y).tolist()) != {0, 1}:
        raise ValueError("fusion needs real (0) and fake (1) test videos")
    names = list(table.columns)
    x = table.to_numpy(np.float64)
    k = len(names)

    def aucs(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        single = np.array([auc(y[idx], x[idx, i]) for i in range(k)])
        fused = np.array([[single[i] if i == j else
                           auc(y[idx], late_fusion(x[idx, i], x[idx, j]))
                           for j in range(k)] for i in range(k)])
        return single, fused

    single, fused = aucs(np.arange(len(y)))
    rng = np.random.default_rng(random_state)
    boot_f = np.empty((n_bootstrap, k, k))
    boot_r = np.empty((n_bootstrap, k, k))
    for r in range(n_bootstrap):
        s, f = aucs(stratified_indices(y, rng))
        with np.errstate(divide="ignore", invalid="ignore"):
            boot_f[r], boot_r[r] = f, 100 * (f - s[:, None]) / s[:, None]
    (f_lo, f_hi), (r_lo, r_hi) = percentile_interval(boot_f), percentile_interval(boot_r)
    rows = []
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            rows.append({
                "row": a, "col": b, "auc_row": 100 * single[i], "auc_fused": 100 * fused[i, j],
                "rel_improvement": 100 * (fused[i, j] - single[i]) / single[i],
                # nan-aware: a replicate whose row AUC is 0 has no relative improvement
                "auc_fused_low": 100 * f_lo[i, j], "auc_fused_high": 100 * f_hi[i, j],
                "rel_low": r_lo[i, j], "rel_high": r_hi[i, j],
            })
    return pd.DataFrame(rows)


def complementarity(profile: Profile, backbones: dict[str, str], *, train: str = "av1m",
                    test: str = "favc", seed: int = 43, n_bootstrap: int = 1000,
                    force: bool = False) -> dict[str, pd.DataFrame]:
    """Fig. 5: how the ``train``-trained probes of several representations agree on ``test``.

    Args:
        backbones: display label → backbone spec, e.g. ``{"W2V2": "wav2vec2", ...}``.
    Returns:
        ``scores`` (video × label), ``pearson`` and ``spearman`` (label × label, percent) and
        ``fusion`` (long table of :func:`avdd.analysis.fusion.fusion_table`: single and pairwise
        late-fusion AUCs, relative improvements, bootstrap intervals). Cached
        (:func:`avdd.analysis.cache.cached`).
    """

    config = {"train": train, "test": test, "seed": seed, "n_bootstrap": n_bootstrap,
              "backbones": {k: [b, describe(b).config] for k, b in backbones.items()},
              "probe": study_probe(profile, seed).get_params()}

    def compute() -> dict[str, pd.DataFrame]:
        per = {label: probe_scores(profile, b, train, test, seed=seed)
               for label, b in backbones.items()}
        table = align_scores({label: d["score"] for label, d in per.items()})
        labels = next(iter(per.values()))["label"].loc[table.index].to_numpy()
        long = fusion_table(table, labels, n_bootstrap=n_bootstrap, random_state=seed)
        return {"fusion": long.assign(n_videos=len(table), n_fake=int(labels.sum())),
                "scores": table.assign(label=labels).reset_index()}

    res = cached(profile, "complementarity", config, compute, code=__name__, force=force)
    scores = res["scores"].set_index("video_id")
    table = scores.drop(columns="label")
    return {"scores": scores, "pearson": correlation_matrix(table, "pearson"),
            "spearman": correlation_matrix(table, "spearman"), "fusion": res["fusion"]}
