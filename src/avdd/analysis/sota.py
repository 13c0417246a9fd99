"""Table 3: the best representation of each modality against the published state of the art.

The paper picks "the best model of each modality" without saying on what; picking it on the
test columns it then reports would be selection on test. Here the choice is made on
**validation** data only: every backbone's AV1M-trained linear probe (the probe behind
columns C, B, F, I) is scored on AV1M's *validation* split, and the modality's backbone with
the highest validation ROC-AUC is kept (ties, frequent when a tiny validation set is perfectly
separated: lower mean validation loss, then AP, then the order given). Only then are its test
columns read from the Table 2 grid.

Caveat, stated in the book: the same validation split also stopped the probe's training
(early stopping), so validation scores are slightly optimistic for every backbone alike; the
test set is never looked at before the choice.

The paper's own choice is fixed (:data:`PAPER_CHOICE`: Wav2Vec2, BRAVEn (V), AV-HuBERT (AV),
as the official release's README and its three checkpoints show); :func:`fixed_choice` finds
those families among the given backbones, so the book shows the paper's choice and the
validation choice side by side.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from avdd.analysis.metrics import evaluate
from avdd.analysis.probes import trained_probe
from avdd.backbones import describe
from avdd.config import Profile
from avdd.features.prepare import feature_set
from avdd.heads.scoring import video_losses

#: Table 3's test columns: test set -> the Table 2 column of the AV1M-trained probe on it.
TABLE3_COLUMNS: dict[str, str] = {"av1m": "C", "favc": "B", "avlips": "F", "dfe": "I"}
#: The three out-of-domain test sets averaged into Last3 (All4 adds in-domain AV1M).
LAST3: tuple[str, ...] = ("favc", "avlips", "dfe")

#: The paper's fixed Table 3 choice: modality -> backbone family (bit-ml/ssr-dfd README, "the
#: best set of features for each modality reported in the paper", and its checkpoints
#: wav2vec2, braven_vsr, avh_multimodal).
PAPER_CHOICE: dict[str, str] = {"audio": "wav2vec2", "visual": "braven-v",
                                "audio-visual": "avhubert-av"}


def fixed_choice(backbones: Sequence[str], families: dict[str, str] = PAPER_CHOICE
                 ) -> pd.Series:
    """Per modality, the first of ``backbones`` of the chosen family: its registry name is the
    family (``"wav2vec2"``, ``"wav2vec2:model=/ckpt"``) or a variant of it
    (``"wav2vec2-tiny-random"``).

    Raises:
        ValueError: a family has no backbone in ``backbones`` (name the missing one).
    """
    out = {}
    for modality, family in families.items():
        hit = next((b for b in backbones
                    if (name := b.partition(":")[0]) == family or name.startswith(family + "-")),
                   None)
        if hit is None:
            raise ValueError(f"Table 3's fixed choice needs a {family} backbone ({modality}); "
                             f"add one to `backbones` (given: {list(backbones)})")
        out[modality] = hit
    return pd.Series(out, name="backbone").rename_axis("modality")


def validation_table(profile: Profile, backbones: Sequence[str], *, train: str = "av1m",
                     seed: int = 43) -> pd.DataFrame:
    """Validation scores of each backbone's ``train``-trained probe on ``train``'s val split.

    Returns a table indexed by backbone with ``modality``, ``weights``, ``val_auc`` and
    ``val_ap`` (percent; NaN when the validation split has one class), ``val_loss`` (mean
    per-video cross-entropy on [-s, s], nats), ``n_real``, ``n_fake``. Probes come from
    :func:`avdd.analysis.linear_probing.trained_probe` (cached, shared with Table 2).
    """
    rows = []
    for b in backbones:
        bb = describe(b)
        probe = trained_probe(profile, b, train, seed=seed)
        xv = feature_set(profile, b, train, "val")
        scores = probe.decision_function(xv)
        m = evaluate(xv.labels, scores, n_bootstrap=0, one_class="nan")
        rows.append({
            "backbone": b, "modality": bb.modality, "weights": bb.weights,
            "val_auc": 100 * m["auc"], "val_ap": 100 * m["ap"],
            "val_loss": float(np.mean(video_losses(scores, xv.labels))),
            "n_real": int((xv.labels == 0).sum()), "n_fake": int((xv.labels == 1).sum())})
    return pd.DataFrame(rows).set_index("backbone")


def select_best(val: pd.DataFrame) -> pd.Series:
    """Per modality, the backbone ranked first by (val AUC ↓, val loss ↑, val AP ↓, order).

    Args:
        val: a :func:`validation_table`.
    Returns:
        Series modality -> backbone, modalities in order of first appearance.
    """
    ranked = val.assign(_order=np.arange(len(val)),
                        _auc=val["val_auc"].fillna(-np.inf), _ap=val["val_ap"].fillna(-np.inf))
    ranked = ranked.sort_values(["_auc", "val_loss", "_ap", "_order"],
                                ascending=[False, True, False, True])
    best = ranked.groupby("modality", sort=False).head(1)
    order = list(dict.fromkeys(val["modality"]))
    return best.reset_index().set_index("modality")["backbone"].loc[order]


def sota_table(grid: pd.DataFrame, chosen: pd.Series, value: str = "auc") -> pd.DataFrame:
    """Our Table 3 rows: the chosen backbones' test ``value`` (percent) on AV1M, FAVC, AVLips,
    DFE (Table 2 columns C, B, F, I), ``all4`` (mean of the four) and ``last3`` (mean without
    AV1M).

    Args:
        grid: :func:`avdd.analysis.linear_probing.linear_probe_grid` output containing columns C, B, F, I.
        chosen: :func:`select_best` output (modality -> backbone).
    Returns:
        One row per modality (index), columns ``backbone``, the four test sets, ``all4``,
        ``last3``.
    """
    wide = grid.pivot(index="backbone", columns="column", values=value)
    missing = [c for c in TABLE3_COLUMNS.values() if c not in wide.columns]
    if missing:
        raise ValueError(f"the grid lacks Table 2 column(s) {missing}: run linear_probe_grid "
                         "with the default TABLE2_COLUMNS")
    rows = []
    for modality, b in chosen.items():
        vals = {test: float(wide.loc[b, col]) for test, col in TABLE3_COLUMNS.items()}
        rows.append({"modality": modality, "backbone": b, **vals,
                     "all4": float(np.mean(list(vals.values()))),
                     "last3": float(np.mean([vals[t] for t in LAST3]))})
    return pd.DataFrame(rows).set_index("modality")
