"""The paper's own numbers (Tables 2-4, Figs. 2, 4, 5), shipped as CSV files beside the code,
which every page shows beside ours."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

REFERENCE_DIR = Path(__file__).resolve().parents[1] / "data" / "reference"

def reference(name: str) -> pd.DataFrame:
    """One of the paper's reference tables, e.g. ``reference("table2_linear_probing_auc")``."""
    f = REFERENCE_DIR / f"{name}.csv"
    if not f.is_file():
        known = sorted(p.stem for p in REFERENCE_DIR.glob("*.csv"))
        raise FileNotFoundError(f"no reference table {name!r}; known: {known}")
    return pd.read_csv(f)
