"""``avdd fit`` and ``avdd evaluate``: the paper's probe trained and measured on any data.

A *source* names a set of labelled videos: a dataset CSV (:mod:`avdd.datasets.csv`) as
``FILE.csv`` (every row; a CSV with a ``split`` column needs ``FILE.csv:SPLIT``), or a split of
a dataset of the profile as ``DATASET:SPLIT`` (e.g. ``av1m:train``). Its features come from
the feature store, extracted first where missing (resumable: stored videos are skipped).

:func:`fit_probe` trains :class:`avdd.heads.probe.LinearProbe` with the paper's defaults
(lr 1e-3, batch 1, patience 10, at most 100 epochs, seed 43) on the training source, early
stopping on the validation source. An optional learning-rate sweep, in the spirit of
dinov2's linear evaluation, fits one probe per rate on the same features (extracted once,
memory-mapped once) and keeps the one with the highest validation AUC (ties: the lower
validation loss, then the earlier rate in the list); the paper's single rate stays the
default. The kept probe's operating point is chosen on the same validation scores
(:func:`avdd.analysis.operating_points.choose_operating_point`: the EER threshold, and a
temperature for calibrated probabilities).

:func:`evaluate_probe` gives AUC and AP with stratified bootstrap 95 % intervals, the EER, and
accuracy / TPR / FPR at the probe's stored threshold (plus the ECE of its probabilities).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from avdd.analysis.cache import FEATURE_SIDE
from avdd.analysis.metrics import bootstrap_ap, evaluate, percentile_interval
from avdd.analysis.operating_points import (
    OperatingPoint,
    choose_operating_point,
    equal_error_rate,
    expected_calibration_error,
    rates_at,
)
from avdd.backbones import describe
from avdd.config import Profile
from avdd.datasets import DatasetError, load_items
from avdd.features.extract import extract, store_dir
from avdd.features.featureset import FeatureSet
from avdd.features.prepare import ensure_data
from avdd.heads.probe import LinearProbe

__all__ = ["FitResult", "Source", "evaluate_probe", "evaluate_saved", "fit_and_save",
           "fit_probe", "metrics_lines", "parse_source", "scores_with_progress", "source_features", "PAPER_LR", "SWEEP_LRS"]

#: The paper's (and the official code's) Adam learning rate: the default.
PAPER_LR = 1e-3
#: ``avdd fit --sweep``: half-decade steps around the paper's rate (dinov2's linear evaluation
#: sweeps a similar log grid), the paper's in the middle so that ties keep it.
SWEEP_LRS = (PAPER_LR, 3e-4, 3e-3, 1e-4, 1e-2)


@dataclass(frozen=True)
class Source:
    """A labelled set of videos: ``(profile, dataset, split)`` as the stores key them.

    Attributes:
        text: the source as the user wrote it (``data.csv:train``, ``av1m:test``).
        csv: the CSV file, or None for a dataset of the profile.
    """

    text: str
    profile: Profile
    dataset: str
    split: str
    csv: Path | None = None

    def describe(self) -> dict[str, Any]:
        """What a probe file or a results file records of it."""
        out = {"source": self.text, "dataset": self.dataset, "split": self.split,
               "profile": self.profile.name, "root": str(self.profile.data_roots[self.dataset])}
        return out | ({"csv": str(self.csv)} if self.csv else {})


def parse_source(text: str, *, dataset_profile: Profile | None = None,
                 root: str | Path | None = None, cache_dir: str | Path | None = None,
                 skip_bad_rows: bool = False) -> Source:
    """Read a source: ``FILE.csv``, ``FILE.csv:SPLIT`` or ``DATASET:SPLIT``.

    Args:
        dataset_profile: the profile whose datasets ``DATASET:SPLIT`` names.
        root, cache_dir, skip_bad_rows: for a CSV, as :func:`avdd.datasets.csv.
            read_csv_dataset` and :func:`avdd.datasets.csv.csv_profile` take them.

    Raises:
        DatasetError: an invalid CSV, or a source that names no split where one is needed.
    """
    from avdd.datasets.csv import ALL, csv_profile, read_csv_dataset

    file, sep, split = text.rpartition(":")
    if not sep or "/" in split or split.endswith(".csv"):  # a plain path, maybe with ':' in it
        file, split = text, ""
    if Path(file).suffix.lower() == ".csv" or Path(file).is_file():
        data = read_csv_dataset(file, root, skip_bad_rows=skip_bad_rows)
        if data.problems:
            print(f"{file}: leaving out {len(data.problems)} bad row(s) (--skip-bad-rows)",
                  file=sys.stderr)
        if not split:
            if data.splits != (ALL,):
                raise DatasetError(f"{file} has a split column ({', '.join(data.splits)}): "
                                   f"name one, e.g. {file}:{data.splits[0]}")
            split = ALL
        elif split not in data.splits:
            raise DatasetError(f"{text}: {file} has no split {split!r} (splits: "
                               f"{', '.join(data.splits)})")
        return Source(text, csv_profile(data, cache_dir), data.key, split, data.csv)
    if not split:
        raise DatasetError(f"{text!r} is neither a .csv file nor DATASET:SPLIT (e.g. av1m:train)")
    if dataset_profile is None or file not in dataset_profile.data_roots:
        known = sorted(dataset_profile.data_roots) if dataset_profile else []
        raise DatasetError(f"{text}: no dataset {file!r} in this profile (has {known}); give "
                           "a CSV file or --data-root NAME=DIR")
    return Source(text, dataset_profile, file, split)


def _stored_and_failed(root: Path) -> tuple[set[str], set[str]]:
    """Ids with features in the store at ``root``, and ids its failures logs name."""
    stored = set(FeatureSet.open(root).ids) if (root / "store.json").is_file() else set()
    failed = set()
    for log in root.glob("failures*.jsonl"):
        failed |= {json.loads(line)["video_id"] for line in log.read_text().splitlines()
                   if line.strip()}
    return stored, failed


def source_features(source: Source, backbone: str, *, workers: int = 1,
                    precision: str = "fp32", progress: bool = True) -> FeatureSet:
    """The features of ``source``'s videos under ``backbone``, extracted first where missing.

    Videos that a previous run recorded as failed are not retried here (that would build the
    backbone, in every worker, for files that failed before): ``avdd extract`` retries them.

    Returns:
        The stored videos of the source in its list order (videos without features are left
        out, with one line on stderr naming the store's failures log).

    Raises:
        DatasetError: no video of the source has features.
    """
    prof = source.profile
    ensure_data(prof, workers=workers)
    items = load_items(prof, source.dataset, source.split)
    root = store_dir(prof, describe(backbone), source.dataset, source.split, precision)
    stored, failed = _stored_and_failed(root)
    if any(i.video_id not in stored and i.video_id not in failed for i in items):
        extract(prof, [backbone], source.dataset, source.split, workers=workers,
                precision=precision, progress=progress)
        stored, failed = _stored_and_failed(root)
    ids = [i.video_id for i in items if i.video_id in stored]
    if len(ids) < len(items):
        print(f"{source.text}: {len(items) - len(ids)} of {len(items)} video(s) failed "
              f"extraction, left out (see {root}/failures*.jsonl; `avdd extract` retries them)",
              file=sys.stderr)
    if not ids:
        raise DatasetError(f"{source.text}: none of its {len(items)} video(s) has "
                           f"{backbone} features (see {root}/failures*.jsonl)")
    return FeatureSet.open(root).select(ids)


@dataclass
class FitResult:
    """The kept probe, its operating point and what the fit measured.

    Attributes:
        probe: the fitted probe (highest validation AUC of the sweep).
        operating_point: its EER threshold (and temperature) on the validation set.
        val_metrics: :func:`evaluate_probe` of the kept probe on the validation set.
        sweep: one row per learning rate: ``lr``, ``val_auc``, ``val_loss`` (best),
            ``best_epoch``, ``epochs`` (run), ``selected``.
    """

    probe: LinearProbe
    operating_point: OperatingPoint
    val_metrics: dict[str, Any]
    sweep: pd.DataFrame = field(repr=False)


def fit_probe(train: FeatureSet, val: FeatureSet, *, lrs: tuple[float, ...] = (PAPER_LR,),
              random_state: int = 43, max_epochs: int = 100, patience: int = 10,
              calibrate: bool = False, n_bootstrap: int = 1000, progress: bool = True
              ) -> FitResult:
    """Fit one paper probe per learning rate on ``train`` (early stopping on ``val``), keep
    the best on validation and choose its operating point there.

    Args:
        train, val: features with labels 0/1; ``val`` must hold both classes.
        lrs: Adam learning rates (paper: ``(1e-3,)``).
        random_state, max_epochs, patience: :class:`LinearProbe`'s (paper: 43, 100, 10).
        calibrate: fit a temperature on ``val`` (:func:`avdd.analysis.operating_points.
            fit_temperature`); skipped, with a line on stderr, when the validation scores
            separate the classes (no finite temperature fits them).
        progress: one bar per rate with the epochs done and an ETA (an upper bound: early
            stopping usually ends sooner).
    """
    if len(set(val.labels.tolist())) < 2:
        raise ValueError("the validation set needs real and fake videos (it chooses the "
                         "threshold and the learning rate)")
    if not lrs or any(not np.isfinite(lr) or lr <= 0 for lr in lrs):
        raise ValueError(f"learning rates must be finite and > 0, got {list(lrs)}")
    rows, probes, scores = [], [], []
    for lr in lrs:
        probe = LinearProbe(lr=lr, random_state=random_state, max_epochs=max_epochs,
                            patience=patience)
        with tqdm(total=max_epochs, unit="epoch", disable=not progress,
                  desc=f"fit lr={lr:g}") as bar:
            def tick(rec: dict, bar=bar) -> None:
                bar.set_postfix(train=f"{rec['train_loss']:.4f}", val=f"{rec['val_loss']:.4f}")
                bar.update()

            probe.fit(train, val, on_epoch=tick)
        s = probe.decision_function(val)
        val_loss = min(h["val_loss"] for h in probe.history_)
        rows.append({"lr": lr, "val_auc": evaluate(val.labels, s, n_bootstrap=0)["auc"],
                     "val_loss": val_loss, "best_epoch": probe.best_epoch_,
                     "epochs": len(probe.history_)})
        probes.append(probe)
        scores.append(s)
    sweep = pd.DataFrame(rows)
    # Highest AUC; ties (frequent on small validation sets) to the lower loss, then list order.
    best = int(sweep.sort_values(["val_auc", "val_loss"], ascending=[False, True],
                                 kind="stable").index[0])
    sweep["selected"] = sweep.index == best
    try:
        op = choose_operating_point(val.labels, scores[best], calibrate=calibrate)
    except ValueError as e:  # separable validation scores: keep the trained probe, say why
        print(f"calibration skipped, probabilities stay sigmoid(2s): {e}", file=sys.stderr)
        op = choose_operating_point(val.labels, scores[best])
    metrics = evaluate_probe(probes[best], op, val, n_bootstrap=n_bootstrap,
                             random_state=random_state, scores=scores[best])
    return FitResult(probes[best], op, metrics, sweep)


def scores_with_progress(probe: LinearProbe, fs: FeatureSet, *, chunk: int = 1024,
                         progress: bool = True) -> np.ndarray:
    """(N,) ``probe.decision_function(fs)``, ``chunk`` videos at a time behind a progress bar
    (videos/s and ETA); the same numbers as one call (each video is scored alone)."""
    out = np.empty(len(fs))
    with tqdm(total=len(fs), unit="video", disable=not progress, desc="score") as bar:
        for lo in range(0, len(fs), chunk):
            out[lo:lo + chunk] = probe.decision_function(fs.subset(slice(lo, lo + chunk)))
            bar.update(min(chunk, len(fs) - lo))
    return out


def evaluate_probe(probe: LinearProbe, operating_point: OperatingPoint | None, test: FeatureSet,
                   *, n_bootstrap: int = 1000, random_state: int = 0,
                   scores: np.ndarray | None = None) -> dict[str, Any]:
    """Detection metrics of ``probe`` on ``test`` (both classes needed).

    Args:
        operating_point: the probe's stored threshold and temperature; None: the paper's
            P(fake) > 0.5 (score >= 0), uncalibrated.
        scores: (N,) ``probe.decision_function(test)`` when already computed.

    Returns:
        dict with ``auc``, ``auc_ci_low``/``auc_ci_high``, ``ap``, ``ap_ci_low``/
        ``ap_ci_high`` (stratified bootstrap 95 % intervals, NaN when ``n_bootstrap`` is 0),
        ``eer``, ``threshold``, ``accuracy``, ``tpr``, ``fpr`` at that threshold, ``ece`` of
        the probabilities (through the point's temperature), ``n``, ``n_fake``, ``n_real``.
    """
    labels = np.asarray(test.labels)
    s = probe.decision_function(test) if scores is None else np.asarray(scores, np.float64)
    op = operating_point or OperatingPoint(threshold=0.0, rule="paper: P(fake) > 0.5")
    out = evaluate(labels, s, n_bootstrap=n_bootstrap, random_state=random_state)
    ap_lo, ap_hi = (np.nan, np.nan)
    if n_bootstrap:
        ap_lo, ap_hi = percentile_interval(bootstrap_ap(labels, s, n_bootstrap=n_bootstrap,
                                                        random_state=random_state))
    at = rates_at(labels, s, op.threshold)
    return {**out, "ap_ci_low": float(ap_lo), "ap_ci_high": float(ap_hi),
            "eer": equal_error_rate(labels, s)[0], "threshold": op.threshold,
            "threshold_rule": op.rule, "accuracy": at["accuracy"], "tpr": at["tpr"],
            "fpr": at["fpr"], "ece": expected_calibration_error(labels, op.probability(s)),
            "temperature": op.temperature}


def metrics_lines(m: dict[str, Any]) -> list[str]:
    """Human-readable lines of :func:`evaluate_probe`'s metrics (percent)."""
    def pct(x: float | None) -> str:
        return "n/a" if x is None or np.isnan(x) else f"{100 * x:.1f}"

    return [
        f"videos: {m['n']} ({m['n_fake']} fake, {m['n_real']} real)",
        f"AUC {pct(m['auc'])} [{pct(m['auc_ci_low'])}, {pct(m['auc_ci_high'])}]  "
        f"AP {pct(m['ap'])} [{pct(m['ap_ci_low'])}, {pct(m['ap_ci_high'])}]  "
        f"EER {pct(m['eer'])}",
        f"at threshold s >= {m['threshold']:+.4f} ({m['threshold_rule']}): accuracy "
        f"{pct(m['accuracy'])}  TPR {pct(m['tpr'])}  FPR {pct(m['fpr'])}  "
        f"ECE {pct(m['ece'])} (T = {m['temperature']:.3g})",
    ]


def fit_and_save(train: Source, val: Source, backbone: str, out: str | Path, *,
                 workers: int = 1, precision: str = "fp32", progress: bool = True,
                 **fit_kwargs: Any) -> tuple[FitResult, Path]:
    """:func:`fit_probe` on the features of two sources, saved to ``out`` with its metadata:
    backbone spec and config, training and validation data, the sweep, the validation
    metrics, the operating point and provenance (:func:`avdd.provenance.provenance`)."""
    from avdd.heads.probe_io import save_probe
    from avdd.provenance import code_fingerprints, provenance

    info = describe(backbone)
    tr = source_features(train, backbone, workers=workers, precision=precision,
                         progress=progress)
    va = source_features(val, backbone, workers=workers, precision=precision,
                         progress=progress)
    result = fit_probe(tr, va, progress=progress, **fit_kwargs)
    data = {"train": {**train.describe(), "videos": len(tr)},
            "val": {**val.describe(), "videos": len(va)}}
    path = save_probe(
        result.probe, out, backbone=backbone, backbone_config=info.config,
        precision=precision, **data, probe_params=result.probe.get_params(),
        sweep=result.sweep.to_dict("records"), metrics={"val": result.val_metrics},
        operating_point=result.operating_point.to_dict(),
        provenance=provenance(profile=train.profile.name, synthetic=train.profile.synthetic,
                              weights=info.weights, **data,
                              code=code_fingerprints([__name__], stop=FEATURE_SIDE)))
    return result, path


def evaluate_saved(probe_path: str | Path, test: Source, *, workers: int = 1,
                   n_bootstrap: int = 1000, random_state: int = 0, progress: bool = True
                   ) -> dict[str, Any]:
    """:func:`evaluate_probe` of a probe file (its backbone, precision and operating point as
    stored) on ``test``, scored behind a progress bar (:func:`scores_with_progress`); the
    result carries the probe, the data and provenance, NaN metrics written as None."""
    from avdd.heads.probe_io import load_probe
    from avdd.provenance import provenance

    probe, meta = load_probe(probe_path)
    backbone = meta.get("backbone")
    if not isinstance(backbone, str) or not backbone:
        raise ValueError(f"{probe_path}: the probe's metadata names no backbone; re-save it "
                         "with save_probe(..., backbone=SPEC)")
    if describe(backbone).dim != probe.n_features_in_:
        raise ValueError(f"{probe_path}: probe expects {probe.n_features_in_}-d features but "
                         f"backbone {backbone!r} gives {describe(backbone).dim}-d")
    op = meta.get("operating_point")
    op = OperatingPoint.from_dict(op) if op else None
    fs = source_features(test, backbone, workers=workers,
                         precision=meta.get("precision", "fp32"), progress=progress)
    metrics = evaluate_probe(probe, op, fs, n_bootstrap=n_bootstrap, random_state=random_state,
                             scores=scores_with_progress(probe, fs, progress=progress))
    data = {**test.describe(), "videos": len(fs)}
    # NaN (an interval not computed) as null: the results file stays strict JSON.
    metrics = {k: None if isinstance(v, float) and np.isnan(v) else v for k, v in metrics.items()}
    return {"probe": str(probe_path), "backbone": backbone, "test": data, "metrics": metrics,
            "provenance": provenance(profile=test.profile.name, test=data,
                                     n_bootstrap=n_bootstrap, random_state=random_state)}
