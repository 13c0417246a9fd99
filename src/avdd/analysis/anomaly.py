"""Table 4's steps: supervised cross-domain probes vs anomaly detectors trained on real videos.

Rows are single representations or pairs. Columns, for each test set (AV1M, FAVC):

* ``sup``: the cross-domain linear probe (AV1M column = FAVC-trained probe, FAVC column =
  AV1M-trained probe); a pair is the late fusion (mean of raw scores) of its two probes;
* ``ntp``: next-token prediction trained on real videos only (a pair is one model on the
  concatenated features);
* ``sync``: audio-visual synchronisation (pairs of one visual and one audio representation).

Training data of the detectors (:func:`training_splits`): on the paper profile, the paper's
45k / 5k real-only AV1M split (AVH-Align's lists, which its sync training reads, shipped as
AV1M's ``real_train`` / ``real_val`` splits; the authors' NTP code reads a ``45k+5k_split`` of
the same name and columns), whose features are
extracted here when missing (37,453 of their 50,000 videos are in no probe list). The demo
has no such split and trains on the real videos of its own AV1M-like ``train`` split (``val``
for early stopping): a cheaper stand-in.

Every AUC carries a bootstrap 95 % interval. The pretext diagnostics (do the proxies solve
their own task?) are computed on the same models.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from avdd.analysis.cache import cached
from avdd.analysis.metrics import evaluate
from avdd.analysis.probes import probe_scores
from avdd.backbones import describe
from avdd.config import REAL_ONLY_SPLITS, SPLITS, Profile
from avdd.features.prepare import feature_set, prepare

__all__ = ["DEMO_ROWS", "PAPER_ROWS", "anomaly_table", "training_splits"]

#: Table 4's rows on the demo profile: the tiny random stand-ins of the paper's backbones.
DEMO_ROWS: dict[str, tuple[str, ...]] = {
    "AV-H (A)": ("avhubert-a-tiny-random",),
    "Wav2Vec2": ("wav2vec2-tiny-random",),
    "AV-H (V)": ("avhubert-v-tiny-random",),
    "CLIP": ("clip-tiny-random",),
    "AV-H (A + V)": ("avhubert-v-tiny-random", "avhubert-a-tiny-random"),
    "AV-H (A) + CLIP": ("clip-tiny-random", "avhubert-a-tiny-random"),
    "W2V2 + AV-H (V)": ("avhubert-v-tiny-random", "wav2vec2-tiny-random"),
    "W2V2 + CLIP": ("clip-tiny-random", "wav2vec2-tiny-random"),
}

#: The paper's rows (checkpoint paths are the caller's: add ``:checkpoint=...`` to the specs).
PAPER_ROWS: dict[str, tuple[str, ...]] = {
    "AV-H (A)": ("avhubert-a",),
    "Wav2Vec2": ("wav2vec2",),
    "AV-H (V)": ("avhubert-v",),
    "CLIP": ("clip",),
    "AV-H (A + V) random": ("avhubert-v-random", "avhubert-a-random"),
    "AV-H (A + V)": ("avhubert-v", "avhubert-a"),
    "AV-H (A) + CLIP": ("clip", "avhubert-a"),
    "W2V2 + AV-H (V)": ("avhubert-v", "wav2vec2"),
    "W2V2 + CLIP": ("clip", "wav2vec2"),
}

CROSS = {"av1m": "favc", "favc": "av1m"}  # test set → the training set of its "sup" probe


def training_splits(profile: Profile, train: str = "av1m") -> tuple[str, str]:
    """(training split, early-stopping split) of ``train`` that the anomaly detectors learn
    from: the real-only ``("real_train", "real_val")`` lists on real data when the dataset has
    them (AV1M: the paper's 45k / 5k), else ``("train", "val")`` (the demo, or a dataset
    without a real-only split), whose real videos are used."""
    if not profile.synthetic and train in REAL_ONLY_SPLITS:
        return REAL_ONLY_SPLITS[train]
    return ("train", "val")


def _sets(profile: Profile, specs: Sequence[str], dataset: str, split: str):
    """One FeatureSet, or a tuple restricted to the videos every set has (a video whose
    extraction failed for one backbone is left out of the pair), in the first set's order."""
    sets = [feature_set(profile, b, dataset, split) for b in specs]
    if len(sets) == 1:
        return sets[0]
    common = set(sets[0].ids).intersection(*(set(s.ids) for s in sets[1:]))
    ids = [v for v in sets[0].ids if v in common]
    return tuple(s.select(ids) for s in sets)


def _labels(x) -> np.ndarray:
    return (x[0] if isinstance(x, tuple) else x).labels


def _auc(labels: np.ndarray, scores: np.ndarray, n_bootstrap: int, seed: int) -> dict:
    m = evaluate(labels, scores, n_bootstrap=n_bootstrap, random_state=seed, one_class="nan")
    return {k: 100 * m[k] for k in ("auc", "auc_ci_low", "auc_ci_high")}


def _sup(profile, specs, test, seed, n_bootstrap) -> dict:
    per = [probe_scores(profile, b, CROSS[test], test, seed=seed) for b in specs]
    common = per[0].index
    for p in per[1:]:
        common = common.intersection(p.index)
    scores = np.mean([p.loc[common, "score"].to_numpy(np.float64) for p in per], axis=0)
    return _auc(per[0].loc[common, "label"].to_numpy(), scores, n_bootstrap, seed)


def _visual_audio(specs: Sequence[str]) -> tuple[str, str] | None:
    kinds = {describe(b).modality: b for b in specs}
    if len(specs) != 2 or set(kinds) != {"visual", "audio"}:
        return None
    return kinds["visual"], kinds["audio"]


def anomaly_table(profile: Profile, rows: dict[str, Sequence[str]], *, train: str = "av1m",
                  tests: Sequence[str] = ("av1m", "favc"), ntp_params: dict | None = None,
                  sync_params: dict | None = None, seed: int = 43, n_bootstrap: int = 1000,
                  train_splits: tuple[str, str] | None = None, workers: int = 2,
                  force: bool = False) -> dict[str, pd.DataFrame]:
    """Compute Table 4.

    Args:
        rows: display label → one backbone spec or a pair (visual first for sync pairs).
        train: dataset whose real videos train the anomaly detectors.
        train_splits: (training, early-stopping) splits of ``train``; default
            :func:`training_splits` (paper profile: AV1M's real-only 45k / 5k). Splits that
            the notebooks' ``prepare`` does not cover (the real-only ones) are extracted here
            first with ``workers`` processes when their features are missing.
        tests: test sets (columns).
        ntp_params, sync_params: keyword arguments of
            :class:`~avdd.heads.ntp.NextTokenPredictor` / :class:`~avdd.heads.sync.SyncDetector`
            (the paper's sizes by default; the demo passes smaller ones).
    Returns:
        ``table``: long, one row per (row, test, method) with ``auc`` and its interval (%);
        ``pretext``: the pretext diagnostics of each detector on the ``train`` test split.
        Cached (:func:`avdd.analysis.cache.cached`).
    """
    from avdd.heads.ntp import NextTokenPredictor
    from avdd.heads.pretext import ntp_pretext_report, sync_pretext_report
    from avdd.heads.sync import SyncDetector

    ntp_params, sync_params = dict(ntp_params or {}), dict(sync_params or {})
    fit_split, val_split = train_splits or training_splits(profile, train)
    config = {"train": train, "train_splits": [fit_split, val_split], "tests": list(tests),
              "rows": {k: [[b, describe(b).config] for b in v] for k, v in rows.items()},
              "ntp": NextTokenPredictor(random_state=seed, **ntp_params).get_params(),
              "sync": SyncDetector(random_state=seed, **sync_params).get_params(),
              "seed": seed, "n_bootstrap": n_bootstrap}

    def compute() -> dict[str, pd.DataFrame]:
        extra = [s for s in (fit_split, val_split) if s not in SPLITS[train]]
        if extra:  # the page's prepare(...) extracts the usual splits, not these
            backbones = list(dict.fromkeys(b for specs in rows.values() for b in specs))
            prepare(profile, backbones, [train], splits=extra, workers=workers, progress=False)
        out: list[dict[str, Any]] = []
        pretext: list[pd.DataFrame] = []
        ntp_cache: dict[tuple[str, ...], Any] = {}
        for label, specs in rows.items():
            specs = tuple(specs)
            group = "single" if len(specs) == 1 else "combination"
            for test in tests:
                out.append({"row": label, "group": group, "test": test, "method": "sup",
                            **_sup(profile, specs, test, seed, n_bootstrap)})
            if specs not in ntp_cache:
                ntp = NextTokenPredictor(random_state=seed, **ntp_params).fit(
                    _sets(profile, specs, train, fit_split), _sets(profile, specs, train, val_split))
                ntp_cache[specs] = ntp
                rep = ntp_pretext_report(ntp, _sets(profile, specs, train, "test"))
                pretext.append(rep.assign(row=label, detector="ntp"))
            ntp = ntp_cache[specs]
            for test in tests:
                x = _sets(profile, specs, test, "test")
                out.append({"row": label, "group": group, "test": test, "method": "ntp",
                            **_auc(_labels(x), ntp.decision_function(x), n_bootstrap, seed),
                            "epochs": ntp.best_epoch_ + 1})
            pair = _visual_audio(specs)
            if pair is None:
                continue
            sync = SyncDetector(random_state=seed, **sync_params).fit(
                *_sets(profile, pair, train, fit_split), val=_sets(profile, pair, train, val_split))
            rep = sync_pretext_report(sync, *_sets(profile, pair, train, "test"))
            pretext.append(rep.assign(row=label, detector="sync"))
            for test in tests:
                x = _sets(profile, pair, test, "test")
                out.append({"row": label, "group": group, "test": test, "method": "sync",
                            **_auc(_labels(x), sync.decision_function(*x), n_bootstrap, seed),
                            "epochs": sync.best_epoch_ + 1})
        table = pd.DataFrame(out)
        pre = pd.concat(pretext, ignore_index=True) if pretext else pd.DataFrame()
        return {"table": table, "pretext": pre}

    return cached(profile, "table4_anomaly", config, compute, code=__name__, force=force)
