"""Checks: a measured number, its interval, the rule it must satisfy, and whether it does.

The vocabulary of the known-answer tables (:mod:`avdd.analysis.known_answers`): one
:class:`Check` per claim, made by a rule (:func:`at_least`, :func:`at_chance`,
:func:`above_chance`, :func:`below`), shown by :func:`frame`; and the two intervals the rules
need that the other metrics do not give (:func:`binomial_interval` of a share,
:func:`correlation_gap` of paired correlations).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from avdd.analysis import metrics

__all__ = ["Check", "COLUMNS", "CONTROL_LEVEL", "applies", "finite", "at_least", "at_chance",
           "above_chance", "below", "frame", "binomial_interval", "correlation_gap"]

#: Columns of ``known_answers.csv`` (and of each page's table).
COLUMNS: tuple[str, ...] = ("page", "check", "expected", "measured", "passed")

#: Percent coverage of the intervals that :func:`at_chance` reads. A true chance result
#: falls outside a 95 % interval one time in twenty, and the book has four chance checks
#: (two audio cells on AVLips-like fakes, two controls): at 95 % one of them would fail in
#: about one build in five (1 - 0.95**4 = 19 %) with nothing wrong, and "every check passed"
#: could not be asked of a build. 99 % is the Bonferroni level for four (1 - 0.05 / 4 =
#: 98.75 %, rounded up), so a correct build fails some chance check about 4 % of the time.
#: The other rules keep 95 %: they ask for an effect, where a wider interval only makes
#: them harder to pass.
CONTROL_LEVEL = 99.0

@dataclass(frozen=True)
class Check:
    """One known answer on one page.

    Attributes:
        page: the book page (notebook name).
        check: what is checked, in words.
        expected: the rule the measured number must satisfy, in words (e.g. ``"AUC ≥ 90 and
            lower bound ≥ 80"``).
        value, low, high: the measured number and its interval (NaN when undefined): 95 %,
            or :data:`CONTROL_LEVEL` % for a chance check (its ``expected`` says so).
        passed: whether the rule holds (False when the number is undefined).
        why: what the benchmark plants that makes the rule follow.
        digits: decimals :attr:`measured` shows (1 for percentages, 3 for fractions).
    """

    page: str
    check: str
    expected: str
    value: float
    low: float
    high: float
    passed: bool
    why: str
    digits: int = 1

    @property
    def measured(self) -> str:
        """``"93.1 [88.0, 97.2]"`` (a dash when undefined)."""
        d = self.digits
        if math.isnan(self.value):
            return "–"
        if math.isnan(self.low) or math.isnan(self.high):
            return f"{self.value:.{d}f}"
        return f"{self.value:.{d}f} [{self.low:.{d}f}, {self.high:.{d}f}]"


def applies(profile) -> bool:
    """Known answers exist only for the synthetic benchmark, whose construction is known."""
    return profile.synthetic


def finite(*xs: float) -> bool:
    return all(x is not None and not math.isnan(float(x)) for x in xs)


def at_least(page: str, check: str, value: float, low: float, high: float, *, minimum: float,
             lower_bound: float | None = None, why: str) -> Check:
    """Passes when ``value >= minimum`` and (if given) ``low >= lower_bound``."""
    rule = f"≥ {minimum:g}" + ("" if lower_bound is None else
                                f", lower bound ≥ {lower_bound:g}")
    ok = finite(value) and value >= minimum and (
        lower_bound is None or (finite(low) and low >= lower_bound))
    return Check(page, check, rule, float(value), float(low), float(high), bool(ok), why)


def at_chance(page: str, check: str, value: float, low: float, high: float, *,
              chance: float = 50.0, why: str) -> Check:
    """Passes when the interval ``[low, high]`` contains ``chance``; the interval must be a
    :data:`CONTROL_LEVEL` % one (the rule says so)."""
    ok = finite(low, high) and low <= chance <= high
    return Check(page, check, f"{CONTROL_LEVEL:g} % interval contains {chance:g} (chance)",
                 float(value), float(low), float(high), bool(ok), why)


def above_chance(page: str, check: str, value: float, low: float, high: float, *,
                 chance: float = 50.0, margin: float = 0.0, why: str) -> Check:
    """Passes when the interval's lower bound exceeds ``chance + margin``."""
    rule = (f"lower bound > {chance:.3g}" if margin == 0 else
            f"lower bound > {chance + margin:.1f} (chance {chance:.1f} + {margin:.1f})")
    ok = finite(low) and low > chance + margin
    return Check(page, check, rule, float(value), float(low), float(high), bool(ok), why)


def below(page: str, check: str, value: float, low: float, high: float, *, limit: float,
          limit_name: str, why: str) -> Check:
    """Passes when the interval's upper bound is below ``limit`` (e.g. a baseline's error)."""
    ok = finite(high) and high < limit
    return Check(page, check, f"upper bound < {limit:.3g} ({limit_name})", float(value),
                 float(low), float(high), bool(ok), why)


def frame(checks: Sequence[Check]) -> pd.DataFrame:
    """The checks as a table with :data:`COLUMNS` (``measured`` as ``"value [low, high]"``)
    plus ``why``."""
    rows = [{"page": c.page, "check": c.check, "expected": c.expected, "measured": c.measured,
             "passed": c.passed, "why": c.why} for c in checks]
    return pd.DataFrame(rows, columns=[*COLUMNS, "why"])


def binomial_interval(k: int, n: int) -> tuple[float, float, float]:
    """``(100 k / n, low, high)``: a share in percent with its exact (Clopper-Pearson) 95 %
    interval; NaNs when ``n == 0``."""
    from scipy.stats import binomtest

    if n == 0:
        return float("nan"), float("nan"), float("nan")
    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=metrics.LEVEL / 100)
    return 100 * k / n, 100 * ci.low, 100 * ci.high


# -- paired statistics -----------------------------------------------------------------------

def correlation_gap(scores: pd.DataFrame, same: tuple[str, str],
                    across: Sequence[tuple[str, str]], *, n_bootstrap: int = 1000,
                    random_state: int = 0) -> tuple[float, float, float]:
    """Pearson correlation (percent) of the pair ``same`` minus the mean correlation of the
    pairs ``across``, over the rows of ``scores`` (videos × detectors), with a paired bootstrap
    95 % interval (videos resampled, every correlation recomputed on the same resample)."""
    x = scores.to_numpy(np.float64)
    col = {c: i for i, c in enumerate(scores.columns)}

    def gap(idx: np.ndarray) -> float:
        c = np.corrcoef(x[idx].T)
        return 100 * (c[col[same[0]], col[same[1]]]
                      - np.mean([c[col[a], col[b]] for a, b in across]))

    rng = np.random.default_rng(random_state)
    n = len(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = np.array([gap(rng.integers(0, n, n)) for _ in range(n_bootstrap)])
    lo, hi = metrics.percentile_interval(boot)
    return gap(np.arange(n)), float(lo), float(hi)
