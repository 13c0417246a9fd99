"""Table 2: the linear-probing grid, every backbone's probe trained on each dataset and tested
on every column's test set, and its pivot into the paper's layout (columns A-I, J = mean of
the six out-of-domain columns).

Compute only, cached (:func:`avdd.analysis.cache.cached`): the probes are
:func:`avdd.analysis.probes.trained_probe`'s, shared with every other page.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from avdd.analysis.cache import cached
from avdd.analysis.metrics import METRICS, evaluate
from avdd.analysis.probes import study_probe, trained_probe
from avdd.backbones import describe
from avdd.config import Profile
from avdd.features.prepare import feature_set

#: Table 2 columns: (code, train set, test set), as in the paper.
TABLE2_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("A", "favc", "favc"), ("B", "av1m", "favc"), ("C", "av1m", "av1m"),
    ("D", "favc", "av1m"), ("E", "favc", "avlips"), ("F", "av1m", "avlips"),
    ("G", "dfe", "dfe"), ("H", "favc", "dfe"), ("I", "av1m", "dfe"),
)

#: The out-of-domain columns averaged into J.
OOD_COLUMNS: tuple[str, ...] = ("B", "D", "E", "F", "H", "I")


def linear_probe_grid(profile: Profile, backbones: Sequence[str], *, seed: int = 43,
                      columns: Sequence[tuple[str, str, str]] = TABLE2_COLUMNS,
                      n_bootstrap: int = 1000, force: bool = False) -> pd.DataFrame:
    """Train one probe per (backbone, training set) and test it on every column's test set.

    Returns a long table: one row per (backbone, column) with ``auc``, ``ap``, the bootstrap
    95 % interval on AUC (``auc_ci_low``, ``auc_ci_high``), test-set sizes, the best epoch,
    and the backbone's modality and weights. AUC and AP are in percent, as in the paper.
    Cached by configuration; ``force`` recomputes.
    """
    config = {"profile": profile.name, "synthetic": profile.synthetic,
              "data": {k: str(v) for k, v in profile.data_roots.items()},
              "backbones": {b: describe(b).config for b in backbones}, "seed": seed,
              "columns": [list(c) for c in columns], "n_bootstrap": n_bootstrap,
              "probe": study_probe(profile, seed).get_params()}

    def compute() -> pd.DataFrame:
        rows = []
        for b in backbones:
            bb = describe(b)
            for code, train, test in columns:
                probe = trained_probe(profile, b, train, seed=seed, force=force)
                xt = feature_set(profile, b, test, "test")
                # A one-class test set keeps its row, with NaN metrics.
                m = evaluate(xt.labels, probe.decision_function(xt), n_bootstrap=n_bootstrap,
                             random_state=seed, one_class="nan")
                rows.append({"backbone": b, "modality": bb.modality, "weights": bb.weights,
                             "column": code, "train": train, "test": test,
                             **{k: 100 * m[k] for k in METRICS},
                             "n_real": int((xt.labels == 0).sum()),
                             "n_fake": int((xt.labels == 1).sum()),
                             "best_epoch": probe.best_epoch_})
        return pd.DataFrame(rows)

    return cached(profile, "linear_probe_grid", config, compute, code=__name__, force=force)


def table2_matrix(grid: pd.DataFrame, value: str = "auc") -> pd.DataFrame:
    """Pivot the long grid into the paper's layout: rows = backbones, columns A–I plus
    J = mean of the six out-of-domain columns."""
    wide = grid.pivot(index="backbone", columns="column", values=value)
    wide = wide[[c for c, _, _ in TABLE2_COLUMNS if c in wide.columns]]
    ood = [c for c in OOD_COLUMNS if c in wide.columns]
    if len(ood) == len(OOD_COLUMNS):
        # NaN when any of the six is undefined (a one-class test set): never a mean of five.
        wide["J"] = wide[ood].mean(axis=1, skipna=False)
    order = list(dict.fromkeys(grid["backbone"]))
    return wide.loc[order]


