"""Operating points across domains (beyond the paper): how a threshold and a calibration chosen
on the training set's validation split fare on every Table 2 test set, next to the AUC.

An AUC only says how well a probe *ranks* videos; a user needs a decision, i.e. a threshold,
and that threshold is chosen where the probe was trained. For each backbone and Table 2
column (train → test) :func:`transfer_table` takes the study's probe
(:func:`avdd.analysis.probes.trained_probe`, shared with Table 2, so nothing is retrained),
chooses its operating point on the ``train`` set's ``val`` split (the EER threshold, the rule
:func:`avdd.analysis.operating_points.choose_operating_point` stores with a probe, and a
temperature where one can be fitted) and measures on the column's test set:

- accuracy, TPR, FPR and balanced accuracy at that threshold, with exact (Clopper-Pearson)
  95 % intervals for the first three and a stratified bootstrap one for the balanced accuracy.
  They are conditional on the threshold: its own uncertainty (a small validation split)
  is not in them;
- the test AUC beside it, and the test set's own EER: ``1 - EER`` is the balanced accuracy an
  oracle threshold chosen *on the test set* would reach, so the gap to it is what the
  threshold's transfer costs, separately from what the ranking loses;
- the ECE of the paper's probabilities σ(2 s) and of the temperature-scaled σ(2 s / T), and
  both reliability tables (for a diagram).

Compute only, cached (:func:`avdd.analysis.cache.cached`); the book's page
``operating_points`` plots it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from avdd.analysis import metrics
from avdd.analysis.cache import cached
from avdd.analysis.checks import binomial_interval
from avdd.analysis.linear_probing import TABLE2_COLUMNS
from avdd.analysis.operating_points import (
    N_BINS,
    calibration_error,
    equal_error_rate,
    fit_temperature,
    reliability_table,
)
from avdd.analysis.probes import probe_scores, study_probe
from avdd.backbones import describe
from avdd.config import Profile
from avdd.heads.scoring import probability

__all__ = ["LINKS", "transfer_rows", "transfer_table", "balanced_accuracy_interval"]

#: The two probability links compared: the paper's σ(2 s) and temperature scaling σ(2 s / T).
LINKS: tuple[str, ...] = ("paper", "temperature")


def balanced_accuracy_interval(labels, fake, *, n_bootstrap: int = 1000,
                               random_state: int = 0) -> tuple[float, float]:
    """Stratified bootstrap 95 % interval (percent) of the balanced accuracy of fixed decisions.

    Args:
        labels: (N,) 1 = fake, 0 = real. fake: (N,) bool, the decisions (``score >= t``).

    With the decisions fixed, resampling the reals and the fakes separately (as
    :func:`avdd.analysis.metrics.stratified_indices` does) draws the number of fakes caught
    and of reals called fake as two independent binomials, so they are drawn as such
    directly: the same distribution, without materialising the resamples.
    """
    labels, fake = np.asarray(labels), np.asarray(fake, bool)
    pos, neg = fake[labels == 1], fake[labels == 0]
    if not len(pos) or not len(neg) or n_bootstrap <= 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(random_state)
    tpr = rng.binomial(len(pos), pos.mean(), n_bootstrap) / len(pos)
    tnr = rng.binomial(len(neg), 1 - neg.mean(), n_bootstrap) / len(neg)
    lo, hi = metrics.percentile_interval(100 * (tpr + tnr) / 2)
    return float(lo), float(hi)


def _temperature(labels, scores) -> tuple[float, str]:
    """The validation temperature, or NaN and why none can be fitted (a fact of the data,
    shown on the page, not an error of the table)."""
    try:
        return fit_temperature(labels, scores), "fitted on validation"
    except ValueError as e:
        return float("nan"), ("validation separates the classes" if "perfectly" in str(e)
                              else "validation scores are uninformative or inverted")


def transfer_rows(val: pd.DataFrame, test: pd.DataFrame, *, n_bins: int = N_BINS,
                  n_bootstrap: int = 1000, random_state: int = 0
                  ) -> tuple[dict, pd.DataFrame]:
    """One train → test pair: the operating point of ``val`` measured on ``test``.

    Args:
        val, test: video tables with ``label`` (1 = fake) and ``score`` (logit scale), as
            :func:`avdd.analysis.probes.probe_scores` gives; ``val`` needs both classes.

    Returns:
        ``(row, reliability)``: the row's numbers (rates and AUC in percent, ECE as a
        fraction; NaN where a test class is absent) and the reliability tables of both
        :data:`LINKS` (``n_bins`` rows each, with a ``link`` column; the temperature's only
        when one was fitted).
    """
    vy, vs = val["label"].to_numpy(), val["score"].to_numpy(np.float64)
    ty, ts = test["label"].to_numpy(), test["score"].to_numpy(np.float64)
    # The rule choose_operating_point stores with a probe (the EER point), without its
    # validation summary, which this table does not show.
    val_eer, threshold = equal_error_rate(vy, vs)
    temperature, note = _temperature(vy, vs)
    fake = ts >= threshold  # the decision rule of operating_points.rates_at
    n_fake, n_real = int((ty == 1).sum()), int((ty == 0).sum())
    acc = binomial_interval(int((fake == (ty == 1)).sum()), len(ty))
    tpr = binomial_interval(int(fake[ty == 1].sum()), n_fake)
    fpr = binomial_interval(int(fake[ty == 0].sum()), n_real)
    both = n_fake > 0 and n_real > 0
    test_eer, test_threshold = equal_error_rate(ty, ts) if both else (np.nan, np.nan)
    ba_lo, ba_hi = balanced_accuracy_interval(ty, fake, n_bootstrap=n_bootstrap,
                                              random_state=random_state)
    tables, ece = [], {}
    for link, t in zip(LINKS, (1.0, temperature)):
        if np.isnan(t) or not len(ty):
            ece[link] = float("nan")
            continue
        table = reliability_table(ty, probability(ts / t), n_bins)
        ece[link] = calibration_error(table)
        tables.append(table.assign(link=link))
    row = {"threshold": threshold, "val_eer": 100 * val_eer,
           "val_n_real": int((vy == 0).sum()), "val_n_fake": int((vy == 1).sum()),
           "auc": 100 * metrics.auc(ty, ts),
           "accuracy": acc[0], "accuracy_ci_low": acc[1], "accuracy_ci_high": acc[2],
           "tpr": tpr[0], "tpr_ci_low": tpr[1], "tpr_ci_high": tpr[2],
           "fpr": fpr[0], "fpr_ci_low": fpr[1], "fpr_ci_high": fpr[2],
           "balanced_accuracy": (tpr[0] + 100 - fpr[0]) / 2,
           "balanced_accuracy_ci_low": ba_lo, "balanced_accuracy_ci_high": ba_hi,
           "oracle_balanced_accuracy": 100 * (1 - test_eer), "test_threshold": test_threshold,
           "temperature": temperature, "temperature_note": note,
           "ece": ece["paper"], "ece_temperature": ece["temperature"],
           "n_real": n_real, "n_fake": n_fake}
    reliability = (pd.concat(tables, ignore_index=True) if tables else
                   pd.DataFrame(columns=["lo", "hi", "count", "mean_probability", "fake_rate",
                                         "link"]))
    return row, reliability


def transfer_table(profile: Profile, backbones: Sequence[str], *, seed: int = 43,
                   columns: Sequence[tuple[str, str, str]] = TABLE2_COLUMNS,
                   n_bins: int = N_BINS, n_bootstrap: int = 1000,
                   force: bool = False) -> dict[str, pd.DataFrame]:
    """Every (backbone, Table 2 column): the source-validation operating point on the test set.

    Returns:
        ``{"table": ..., "reliability": ...}``: ``table`` has one row per (backbone, column)
        with ``backbone``, ``modality``, ``column``, ``train``, ``test`` and
        :func:`transfer_rows`' numbers; ``reliability`` one row per (backbone, column, link,
        bin). Cached by configuration; ``force`` recomputes (the probes stay cached).
    """
    config = {"profile": profile.name, "synthetic": profile.synthetic,
              "data": {k: str(v) for k, v in profile.data_roots.items()},
              "backbones": {b: describe(b).config for b in backbones}, "seed": seed,
              "columns": [list(c) for c in columns], "n_bins": n_bins,
              "n_bootstrap": n_bootstrap, "probe": study_probe(profile, seed).get_params()}

    def compute() -> dict[str, pd.DataFrame]:
        rows, tables = [], []
        for b in backbones:
            modality = describe(b).modality
            vals = {}  # one validation scoring per training set, shared by its columns
            for code, train, test in columns:
                if train not in vals:
                    vals[train] = probe_scores(profile, b, train, train, seed=seed,
                                               split="val")
                row, rel = transfer_rows(vals[train], probe_scores(profile, b, train, test,
                                                                    seed=seed),
                                         n_bins=n_bins, n_bootstrap=n_bootstrap,
                                         random_state=seed)
                key = {"backbone": b, "modality": modality, "column": code, "train": train,
                       "test": test}
                rows.append({**key, **row})
                tables.append(rel.assign(**key))
        return {"table": pd.DataFrame(rows),
                "reliability": pd.concat(tables, ignore_index=True)}

    return cached(profile, "operating_points", config, compute, code=__name__, force=force)
