"""Metrics and their intervals, one home for each: ROC-AUC (the paper's main number, also of
frame scores), average precision, and bootstrap 95 % intervals (the paper reports none; its
test sets are small and imbalanced, e.g. FAVC 151 real / 3,357 fake, so intervals matter).

- :func:`auc`: Mann-Whitney AUC with mid-ranks for ties (= sklearn's), NaN for one class;
- :func:`evaluate`: AUC, AP and the stratified bootstrap interval of a detector's scores;
- :func:`bootstrap_ap`: stratified bootstrap replicates of the average precision;
- :func:`stratified_indices`: one stratified resample (paired across detectors, Fig. 5);
- :func:`bootstrap_mean_interval`: the interval of a mean (localisation AUC, click error);
- :func:`percentile_interval`: the 2.5 / 97.5 % percentiles every interval reports.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import average_precision_score

__all__ = ["auc", "evaluate", "bootstrap_auc", "bootstrap_ap", "bootstrap_mean_interval",
           "checked_scores", "percentile_interval", "stratified_indices", "METRICS"]

LEVEL = 95.0  # percent: every interval the book shows


def percentile_interval(samples: np.ndarray, axis: int = 0, *, level: float = LEVEL
                        ) -> tuple[np.ndarray, np.ndarray]:
    """The central ``level`` % (default :data:`LEVEL`) percentile interval of bootstrap
    ``samples`` along ``axis``, ignoring NaN replicates (e.g. a relative gain over an AUC
    of 0)."""
    if not 0 < level < 100:
        raise ValueError(f"level={level!r}: give a percentage between 0 and 100")
    tail = (100.0 - level) / 2
    lo, hi = np.nanpercentile(np.asarray(samples, np.float64), [tail, 100.0 - tail], axis=axis)
    return lo, hi


def auc(labels, scores) -> float:
    """ROC-AUC as a fraction: the Mann-Whitney statistic with ties counted one half (equal to
    ``sklearn.metrics.roc_auc_score``); NaN when only one class is present."""
    labels = np.asarray(labels).astype(bool).ravel()
    n1 = int(labels.sum())
    n0 = len(labels) - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = rankdata(np.asarray(scores, np.float64).ravel())
    return float((ranks[labels].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def stratified_indices(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One bootstrap resample of positions, reals and fakes drawn separately with replacement
    (their counts kept), so that every resample has both classes."""
    labels = np.asarray(labels)
    return np.concatenate([rng.choice(idx, len(idx)) for idx in
                           (np.flatnonzero(labels == 0), np.flatnonzero(labels == 1))])


def bootstrap_mean_interval(values, *, n_bootstrap: int, rng: np.random.Generator,
                            level: float = LEVEL) -> tuple[float, float]:
    """``level`` % percentile interval of the mean of ``values`` over ``n_bootstrap``
    resamples (NaN values dropped; NaN interval when fewer than 2 values remain or
    ``n_bootstrap`` is 0)."""
    v = np.asarray(values, np.float64)
    v = v[~np.isnan(v)]
    if len(v) < 2 or n_bootstrap <= 0:
        return float("nan"), float("nan")
    means = v[rng.integers(0, len(v), (n_bootstrap, len(v)))].mean(axis=1)
    lo, hi = percentile_interval(means, level=level)
    return float(lo), float(hi)


def bootstrap_auc(labels: np.ndarray, scores: np.ndarray, *, n_bootstrap: int = 1000,
                  random_state: int = 0) -> np.ndarray:
    """(n_bootstrap,) ROC-AUCs of stratified resamples.

    Positives and negatives are resampled separately (with replacement, keeping their
    counts), so every resample has both classes. Each AUC is the Mann-Whitney statistic with
    mid-ranks for ties, which equals ``sklearn.metrics.roc_auc_score`` on that resample.
    """
    labels, scores = np.asarray(labels), np.asarray(scores, np.float64)
    pos, neg = scores[labels == 1], scores[labels == 0]
    rng = np.random.default_rng(random_state)
    out = np.empty(n_bootstrap)
    step = max(1, 2_000_000 // (len(pos) + len(neg)))  # resamples per block: bounded memory
    for lo in range(0, n_bootstrap, step):
        k = min(step, n_bootstrap - lo)
        sample = np.concatenate([rng.choice(pos, (k, len(pos))), rng.choice(neg, (k, len(neg)))], axis=1)
        ranks = rankdata(sample, axis=1)  # mid-ranks: ties count one half, as in sklearn
        out[lo:lo + k] = (ranks[:, :len(pos)].sum(1) - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))
    return out


def bootstrap_ap(labels: np.ndarray, scores: np.ndarray, *, n_bootstrap: int = 1000,
                 random_state: int = 0) -> np.ndarray:
    """(n_bootstrap,) average precisions (fake = positive) of stratified resamples
    (:func:`stratified_indices`: every resample keeps the class counts)."""
    labels, scores = np.asarray(labels), np.asarray(scores, np.float64)
    rng = np.random.default_rng(random_state)
    out = np.empty(n_bootstrap)
    for b in range(n_bootstrap):
        idx = stratified_indices(labels, rng)
        out[b] = _average_precision(labels[idx], scores[idx])
    return out


def _average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """``sklearn.metrics.average_precision_score`` (step-wise sum of precision over recall
    steps, one step per distinct score) without its input checks, which cost ~5 ms a call:
    1,000 bootstrap replicates take 20 ms instead of 6 s."""
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], labels[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last position of each tie group
    tp = np.cumsum(y)[last]
    precision, recall = tp / (last + 1), tp / tp[-1]
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


METRICS = ("auc", "ap", "auc_ci_low", "auc_ci_high")


def checked_scores(labels, scores, *, finite: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``labels`` (N,) int64 and ``scores`` (N,) float64, flattened, after checking that they
    pair up, that labels are 0/1 and (``finite``) that no score is NaN or inf."""
    labels = np.asarray(labels).astype(np.int64).ravel()
    scores = np.asarray(scores, np.float64).ravel()
    if labels.shape != scores.shape:
        raise ValueError(f"{labels.shape[0]} labels but {scores.shape[0]} scores")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 0 (real) or 1 (fake)")
    if finite and not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or inf")
    return labels, scores


def evaluate(labels, scores, *, n_bootstrap: int = 1000, random_state: int = 0,
             one_class: str = "raise", level: float = LEVEL) -> dict:
    """Video-level detection metrics.

    Args:
        labels: (N,) 1 = fake, 0 = real.
        scores: (N,) higher = more likely fake (e.g. ``LinearProbe.decision_function``).
        n_bootstrap: stratified bootstrap resamples for the AUC interval (0 to skip).
        random_state: seed of the resampling.
        one_class: what a set with a single class gets, where AUC is undefined: ``"raise"``
            (ValueError) or ``"nan"`` (every metric NaN, the counts kept), for grids that
            keep the row and say why.
        level: percent coverage of the interval (:data:`LEVEL`; the known answers' chance
            checks ask for :data:`avdd.analysis.checks.CONTROL_LEVEL`).

    Returns:
        dict with ``auc``, ``ap`` (average precision, fake = positive class),
        ``auc_ci_low``/``auc_ci_high`` (``level`` % percentile interval; NaN when skipped),
        ``n``, ``n_fake``, ``n_real``.
    """
    labels, scores = checked_scores(labels, scores, finite=False)
    n_fake = int(labels.sum())
    counts = {"n": len(labels), "n_fake": n_fake, "n_real": len(labels) - n_fake}
    if n_fake in (0, len(labels)):
        if one_class == "nan":
            return {**dict.fromkeys(METRICS, float("nan")), **counts}
        raise ValueError(f"AUC needs both classes; got {n_fake} fake of {len(labels)} videos")
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or inf")
    ci = (np.nan, np.nan)
    if n_bootstrap:
        ci = percentile_interval(bootstrap_auc(labels, scores, n_bootstrap=n_bootstrap,
                                               random_state=random_state), level=level)
    return {
        "auc": auc(labels, scores),
        "ap": float(average_precision_score(labels, scores)),
        "auc_ci_low": float(ci[0]), "auc_ci_high": float(ci[1]), **counts,
    }
