"""Appendix: the temporal Transformer head against the frame-wise linear probe, on every
Table 2 column (:class:`avdd.heads.transformer.TransformerHead`)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from avdd.analysis.cache import cached
from avdd.analysis.linear_probing import TABLE2_COLUMNS
from avdd.analysis.metrics import METRICS, evaluate
from avdd.backbones import describe
from avdd.config import Profile
from avdd.features.prepare import feature_set
from avdd.heads.transformer import TransformerHead


def head_grid(profile: Profile, backbones: Sequence[str], *, seed: int = 43,
              columns: Sequence[tuple[str, str, str]] = TABLE2_COLUMNS,
              head_params: dict | None = None, n_bootstrap: int = 1000,
              force: bool = False) -> pd.DataFrame:
    """The Table 2 grid with a :class:`TransformerHead` in place of the linear probe.

    One head per (backbone, training set), fitted on its train split with early stopping on
    its val split, tested on every column's test split. Returns the same long layout as
    :func:`avdd.analysis.linear_probing.linear_probe_grid` (``backbone``, ``column``, ``train``, ``test``,
    ``auc``, ``ap``, ``auc_ci_low``, ``auc_ci_high`` in percent, ``n_real``, ``n_fake``,
    ``best_epoch``) plus ``head`` = ``"transformer"``. Cached (:func:`avdd.analysis.cache.cached`).
    """
    params = TransformerHead(random_state=seed, **(head_params or {})).get_params()
    config = {"backbones": {b: describe(b).config for b in backbones},
              "columns": [list(c) for c in columns], "n_bootstrap": n_bootstrap,
              "head": params}

    def compute() -> pd.DataFrame:
        rows = []
        for b in backbones:
            heads: dict[str, TransformerHead] = {}
            for code, train, test in columns:
                if train not in heads:
                    heads[train] = TransformerHead(**params).fit(
                        feature_set(profile, b, train, "train"),
                        feature_set(profile, b, train, "val"))
                xt = feature_set(profile, b, test, "test")
                m = evaluate(xt.labels, heads[train].decision_function(xt),
                             n_bootstrap=n_bootstrap, random_state=seed, one_class="nan")
                rows.append({"backbone": b, "head": "transformer", "column": code,
                             "train": train, "test": test, **{k: 100 * m[k] for k in METRICS},
                             "n_real": int((xt.labels == 0).sum()),
                             "n_fake": int((xt.labels == 1).sum()),
                             "best_epoch": heads[train].best_epoch_})
        return pd.DataFrame(rows)

    return cached(profile, "head_grid", config, compute, code=__name__, force=force)
