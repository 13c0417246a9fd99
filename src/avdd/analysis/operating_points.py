"""Operating points: the threshold a probe decides at, its calibration, and the rates there.

A probe's video score ``s`` (logit scale, higher = more likely fake) becomes a decision only at
a threshold, and a probability only through a link: the paper's is P(fake) = σ(2 s), which a
probe trained on one domain need not get right on another. These functions choose both on a
validation set and measure them anywhere; the probe file stores the result
(:class:`OperatingPoint`, ``metadata["operating_point"]``) and ``avdd score`` / ``avdd
evaluate`` apply it.

- :func:`equal_error_rate`: the EER and the score threshold where FPR = FNR (the rule stored);
- :func:`rates_at`: accuracy, TPR, FPR (and TNR, FNR) of the decision ``s >= threshold``;
- :func:`fit_temperature`: the temperature T minimising the log loss of σ(2 s / T);
- :func:`expected_calibration_error` and :func:`reliability_table`: how far probabilities
  are from observed fake rates, in equal-width bins.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from sklearn.metrics import roc_curve

from avdd.analysis.metrics import checked_scores
from avdd.heads.scoring import probability, video_losses

__all__ = ["OperatingPoint", "calibration_error", "choose_operating_point", "equal_error_rate",
           "expected_calibration_error", "fit_temperature", "rates_at", "reliability_table"]

#: Equal-width probability bins of the calibration measures (the common choice of the
#: calibration literature, e.g. Guo et al. 2017, who use 15).
N_BINS = 15
#: Temperatures searched (log scale): wide enough for scores from near-constant to saturated.
TEMPERATURE_RANGE = (1e-2, 1e2)


def equal_error_rate(labels, scores) -> tuple[float, float]:
    """The equal error rate and the threshold that reaches it.

    Args:
        labels: (N,) 1 = fake, 0 = real (both present).
        scores: (N,) higher = more likely fake.

    Returns:
        ``(eer, threshold)``: the ROC point where the false positive rate and the false
        negative rate are closest (``eer`` is their mean there, a fraction) and the score
        threshold of that point, for decisions ``score >= threshold`` = fake: halfway between
        the lowest score called fake there and the highest score below it, so that every
        threshold in that gap (which all give the same rates) is equally far from it.
    """
    labels, scores = checked_scores(labels, scores)
    if labels.min() == labels.max():
        raise ValueError(f"the EER needs both classes; got {int(labels.sum())} fake of "
                         f"{len(labels)} videos")
    fpr, tpr, thresholds = roc_curve(labels, scores, drop_intermediate=False)
    fnr = 1.0 - tpr
    # roc_curve's first threshold is +inf (nothing called fake); a finite one is always
    # at least as close, since the last point has FNR = 0.
    i = 1 + int(np.argmin(np.abs(fnr[1:] - fpr[1:])))
    below = scores[scores < thresholds[i]]
    threshold = (thresholds[i] + below.max()) / 2 if len(below) else thresholds[i]
    return float((fpr[i] + fnr[i]) / 2), float(threshold)


def rates_at(labels, scores, threshold: float) -> dict[str, float]:
    """Rates of the decision ``score >= threshold`` = fake.

    Returns:
        dict with ``accuracy``, ``tpr`` (fakes caught), ``fpr`` (reals called fake), ``tnr``,
        ``fnr`` (fractions; NaN for a class that is absent) and ``threshold``.
    """
    labels, scores = checked_scores(labels, scores)
    fake = scores >= threshold
    pos, neg = labels == 1, labels == 0
    tpr = float(fake[pos].mean()) if pos.any() else float("nan")
    fpr = float(fake[neg].mean()) if neg.any() else float("nan")
    return {"threshold": float(threshold), "accuracy": float((fake == pos).mean()),
            "tpr": tpr, "fpr": fpr, "tnr": 1.0 - fpr, "fnr": 1.0 - tpr}


def fit_temperature(labels, scores) -> float:
    """Temperature scaling (Guo et al. 2017) of the paper's link: the T > 0 minimising the
    mean log loss of P(fake) = σ(2 s / T) on (``labels``, ``scores``). T > 1 softens
    over-confident scores, T < 1 sharpens timid ones; the ranking (AUC) is unchanged. Searched
    on a log scale within :data:`TEMPERATURE_RANGE`.

    Raises:
        ValueError: the scores separate the classes perfectly (the log loss then falls
            forever as T goes to 0: a larger validation set is needed), or they are
            uninformative or inverted (the best T is at the upper search bound: the
            constant 0.5).
    """
    labels, scores = checked_scores(labels, scores)
    if labels.min() == labels.max():
        raise ValueError("temperature scaling needs both classes")
    if scores[labels == 0].max() < scores[labels == 1].min():
        raise ValueError("the scores separate real from fake perfectly, so the log loss has "
                         "no minimum at a finite temperature; calibrate on a larger or harder "
                         "validation set")

    def loss(log_t: float) -> float:
        return float(video_losses(scores / np.exp(log_t), labels).mean())

    lo, hi = np.log(TEMPERATURE_RANGE)
    t = float(np.exp(minimize_scalar(loss, bounds=(lo, hi), method="bounded").x))
    if t > 0.99 * TEMPERATURE_RANGE[1]:
        raise ValueError(f"the best temperature lies at the search bound ({t:.3g}): the "
                         "scores carry (almost) no information about the labels, or rank "
                         "them the wrong way round; there is nothing to calibrate")
    return t


def reliability_table(labels, probabilities, n_bins: int = N_BINS) -> pd.DataFrame:
    """Reliability diagram data: ``n_bins`` equal-width bins of P(fake) in [0, 1].

    Returns:
        One row per bin: ``lo``, ``hi`` (bin edges), ``count``, ``mean_probability`` and
        ``fake_rate`` (NaN for an empty bin).
    """
    labels, p = checked_scores(labels, probabilities)
    if ((p < 0) | (p > 1)).any():
        raise ValueError("probabilities must lie in [0, 1]")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.clip(np.digitize(p, edges[1:-1], right=True), 0, n_bins - 1)
    df = pd.DataFrame({"bin": bins, "p": p, "y": labels}).groupby("bin").agg(
        count=("p", "size"), mean_probability=("p", "mean"), fake_rate=("y", "mean"))
    df = df.reindex(range(n_bins))
    df["count"] = df["count"].fillna(0).astype(int)
    df.insert(0, "hi", edges[1:])
    df.insert(0, "lo", edges[:-1])
    return df.reset_index(drop=True)


def expected_calibration_error(labels, probabilities, n_bins: int = N_BINS) -> float:
    """ECE: the count-weighted mean |fake rate - mean P(fake)| over the bins of
    :func:`reliability_table` (a fraction; 0 = calibrated)."""
    return calibration_error(reliability_table(labels, probabilities, n_bins))


def calibration_error(table: pd.DataFrame) -> float:
    """The ECE of a :func:`reliability_table` (for a caller that keeps the table too)."""
    t = table[table["count"] > 0]
    gap = (t["fake_rate"] - t["mean_probability"]).abs()
    return float((gap * t["count"]).sum() / t["count"].sum())


@dataclass(frozen=True)
class OperatingPoint:
    """What a probe file stores to decide and to give probabilities.

    Attributes:
        threshold: video score at or above which a video is called fake (logit scale).
        rule: how it was chosen (``"eer"``: the validation set's equal-error point).
        temperature: P(fake) = σ(2 s / temperature) (1.0 = the paper's link, uncalibrated).
        calibrated: whether ``temperature`` was fitted (temperature scaling on validation).
        validation: the rates and calibration measured on the validation set it was chosen
            on (``eer``, ``accuracy``, ``tpr``, ``fpr``, ``ece`` before and after).
    """

    threshold: float
    rule: str = "eer"
    temperature: float = 1.0
    calibrated: bool = False
    validation: dict[str, float] | None = None

    def probability(self, scores) -> np.ndarray:
        """P(fake) of video scores ``scores`` (any shape) through this point's temperature."""
        return probability(np.asarray(scores, np.float64) / self.temperature)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OperatingPoint:
        return cls(**{k: d[k] for k in ("threshold", "rule", "temperature", "calibrated",
                                        "validation") if k in d})


def choose_operating_point(labels, scores, *, calibrate: bool = False) -> OperatingPoint:
    """The EER threshold of validation scores, with temperature scaling when ``calibrate``
    (default off: probabilities stay the paper's σ(2 s)).

    Args:
        labels: (N,) validation labels, both classes present. scores: (N,) video scores.

    Raises:
        ValueError: ``calibrate`` on scores that separate the classes perfectly
            (:func:`fit_temperature`).
    """
    labels, scores = checked_scores(labels, scores)
    eer, threshold = equal_error_rate(labels, scores)
    temperature = fit_temperature(labels, scores) if calibrate else 1.0
    at = rates_at(labels, scores, threshold)
    validation = {"eer": eer, "accuracy": at["accuracy"], "tpr": at["tpr"], "fpr": at["fpr"],
                  "ece_uncalibrated": expected_calibration_error(labels, probability(scores)),
                  "ece": expected_calibration_error(labels, probability(scores / temperature))}
    return OperatingPoint(threshold=threshold, rule="eer", temperature=temperature,
                          calibrated=calibrate, validation=validation)
