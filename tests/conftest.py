"""Shared fixtures: one tiny synthetic benchmark per test session (a few clips per domain)."""

from __future__ import annotations

from pathlib import Path

import pytest

TINY_SCALE = 0.05  # ~5 % of the default counts: every domain and split still has both classes


@pytest.fixture(scope="session")
def tiny_home(tmp_path_factory) -> Path:
    """An ``AVDD_HOME`` holding the tiny synthetic benchmark (generated once per session)."""
    from avdd.config import make_profile
    from avdd.features.prepare import ensure_data

    home = tmp_path_factory.mktemp("avdd-home")
    ensure_data(make_profile("demo", home=home, synth_scale=TINY_SCALE), workers=2)
    return home


@pytest.fixture
def tiny_profile(tiny_home, tmp_path):
    """The tiny benchmark with a fresh, empty cache for this test."""
    from dataclasses import replace

    from avdd.config import make_profile

    return replace(make_profile("demo", home=tiny_home, synth_scale=TINY_SCALE),
                   cache_dir=tmp_path / "cache")


def in_ci() -> bool:
    """Whether this is the CI run (``.ci/run`` sets ``CI=true``), where everything must run."""
    import os

    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def fixed_probe(w, b: float = 0.0):
    """A 'fitted' :class:`avdd.heads.probe.LinearProbe` with the given weights (what fit would
    set, without training)."""
    import numpy as np

    from avdd.heads.probe import LinearProbe

    probe = LinearProbe()
    probe.coef_, probe.intercept_ = np.asarray(w, np.float32), float(b)
    probe.n_features_in_, probe.classes_ = len(probe.coef_), np.array([0, 1])
    probe.best_epoch_, probe.history_ = 0, []
    return probe


def require(available: bool, reason: str) -> None:
    """Skip the calling test when ``available`` is false, with ``reason``; in CI fail it
    instead: CI installs everything the tests need, so a missing piece there is a bug of the
    CI setup, not a reason to test less."""
    if available:
        return
    if in_ci():
        pytest.fail(f"{reason} (CI=true: .ci/run must install it)", pytrace=False)
    pytest.skip(reason)
