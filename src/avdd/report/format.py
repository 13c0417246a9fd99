"""How the book writes numbers and labels: intervals, the synthetic-data label, modality colours.

Kept here (not in the notebooks) so that every page writes an interval, labels a synthetic
number and colours a modality the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from avdd.config import Profile

__all__ = ["DASH", "MODALITY_COLOURS", "AUC_GRADIENT", "interval", "intervals", "synthetic_label",
           "data_label", "auc_gradient"]

#: What a missing number shows as (the tables' ``na_rep`` too).
DASH = "–"

#: One colour per modality the probe sees, on every page (matplotlib's first three).
MODALITY_COLOURS: dict[str, str] = {"audio": "tab:blue", "visual": "tab:orange",
                                    "audio-visual": "tab:green"}

#: The colour scale of AUC tables (%): red at 40 and below, green at 100; 50 is chance.
AUC_GRADIENT: dict[str, object] = {"cmap": "RdYlGn", "vmin": 40, "vmax": 100}


def _number(x: float, digits: int, signed: bool) -> str:
    if pd.isna(x):  # None, NaN and pandas' NA alike
        return DASH
    return f"{x:{'+' if signed else ''}.{digits}f}"


def interval(value: float, lo: float, hi: float, digits: int = 1, *,
             signed: bool = False) -> str:
    """``"78.6 [63.2, 90.9]"``: a value and its interval; a dash for a missing value (NaN,
    e.g. an AUC on one class), a dash for each missing bound. ``signed`` writes ``+`` on
    positive numbers (relative improvements)."""
    if _number(value, digits, signed) == DASH:
        return DASH
    return (f"{_number(value, digits, signed)} "
            f"[{_number(lo, digits, signed)}, {_number(hi, digits, signed)}]")


def intervals(table: pd.DataFrame, value: str, lo: str, hi: str, digits: int = 1, *,
              signed: bool = False) -> list[str]:
    """:func:`interval` of every row of ``table``, from its columns ``value``, ``lo``, ``hi``
    (e.g. ``"auc", "auc_ci_low", "auc_ci_high"``)."""
    return [interval(v, a, b, digits, signed=signed)
            for v, a, b in zip(table[value], table[lo], table[hi])]


def synthetic_label(profile: Profile, *, weights: str | None = None) -> str:
    """``" (synthetic)"`` after a title or legend entry of numbers from the synthetic benchmark
    (``" (synthetic, random weights)"`` with ``weights="random"``); ``""`` on real data."""
    if not profile.synthetic:
        return ""
    return f" (synthetic, {weights} weights)" if weights else " (synthetic)"


def data_label(profile: Profile) -> str:
    """What a table caption starts with: ``"Synthetic benchmark"`` or ``"Real data"``."""
    return "Synthetic benchmark" if profile.synthetic else "Real data"


def auc_gradient(styler: pd.io.formats.style.Styler, subset: Sequence[str] | None = None,
                 axis: int | None = 0) -> pd.io.formats.style.Styler:
    """Colour an AUC table (%) with :data:`AUC_GRADIENT`; missing cells stay white."""
    return (styler.background_gradient(**AUC_GRADIENT, subset=subset, axis=axis)
            .highlight_null(color="white"))
