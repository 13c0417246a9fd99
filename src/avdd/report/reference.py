"""The paper's own numbers (Tables 2-4, Figs. 2, 4, 5), shipped as CSV files beside the code,
which every page shows beside ours, and which of the paper's rows a backbone of ours stands
beside."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from avdd.backbones.base import parse_spec

REFERENCE_DIR = Path(__file__).resolve().parents[1] / "data" / "reference"

#: Fig. 2's rows (the reference CSV's ``model``) by the registry name of their architecture
#: and weights (``avdd backbones``); the paper's random-init rows are the ``-random`` names.
FIG2_ROWS: dict[str, str] = {
    "avhubert-a-random": "AV-H(A) random", "avhubert-a": "AV-H(A)",
    "autoavsr-asr": "Auto-AVSR (ASR)", "wav2vec2": "Wav2Vec2",
    "avhubert-v-random": "AV-H(V) random", "avhubert-v": "AV-H(V)",
    "autoavsr-vsr": "Auto-AVSR (VSR)", "fsfm": "FSFM", "clip": "CLIP", "videomae": "Video-MAE",
    "avhubert-av": "AV-HuBERT (AV)", "autoavsr-av": "Auto-AVSR (AV)",
}

#: The demo's stand-ins are tiny versions of an architecture: ``NAME-tiny-random`` stands
#: beside the paper's row of ``NAME`` (pretrained weights there, tiny random ones here).
TINY_SUFFIX = "-tiny-random"


def reference(name: str) -> pd.DataFrame:
    """One of the paper's reference tables, e.g. ``reference("table2_linear_probing_auc")``."""
    f = REFERENCE_DIR / f"{name}.csv"
    if not f.is_file():
        known = sorted(p.stem for p in REFERENCE_DIR.glob("*.csv"))
        raise FileNotFoundError(f"no reference table {name!r}; known: {known}")
    return pd.read_csv(f)


def fig2_row(spec: str) -> str | None:
    """The paper's Fig. 2 row a backbone spec stands beside (:data:`FIG2_ROWS`), or None
    (handcrafted features, BRAVEn: not in the figure). Arguments such as ``model=`` do not
    change the row."""
    name, _ = parse_spec(spec)
    if name.endswith(TINY_SUFFIX):
        name = name[: -len(TINY_SUFFIX)]
    return FIG2_ROWS.get(name)


def fig2_paper(specs: Sequence[str]) -> pd.DataFrame:
    """The paper's Fig. 2 numbers beside each of ``specs``: indexed by spec, columns
    ``paper row``, ``paper classification`` and ``paper localisation`` (AUC %), all missing
    (NaN) where the paper has no row for the backbone."""
    paper = reference("fig2_classification_vs_localization_auc").set_index("model")
    rows = [fig2_row(s) for s in specs]
    unknown = sorted({r for r in rows if r is not None} - set(paper.index))
    if unknown:
        raise ValueError(f"FIG2_ROWS names rows that the reference CSV lacks: {unknown}")
    return pd.DataFrame({
        "paper row": rows,
        "paper classification": [paper.classification_auc.get(r, float("nan")) for r in rows],
        "paper localisation": [paper.localization_auc.get(r, float("nan")) for r in rows],
    }, index=pd.Index(list(specs), name="backbone"))
