"""Probe files (safetensors + JSON) and the complementarity analysis (correlation, fusion)."""

import numpy as np
import pandas as pd
import pytest

from avdd.analysis.fusion import align_scores, correlation_matrix, fusion_table, late_fusion
from avdd.features.featureset import FeatureSet
from avdd.heads.probe import LinearProbe
from avdd.heads.probe_io import load_probe, probe_metadata, save_probe


def _toy(n=40, d=8, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    arrays = [rng.standard_normal((int(rng.integers(5, 20)), d)) + 0.8 * y for y in labels]
    return FeatureSet.from_arrays(arrays, labels)


def test_probe_round_trip_is_exact_and_safe(tmp_path):
    fs = _toy()
    probe = LinearProbe(max_epochs=3, random_state=1).fit(fs)
    path = save_probe(probe, tmp_path / "p.safetensors", backbone="logmel", train="av1m",
                      metrics={"auc": 0.9})
    loaded, meta = load_probe(path)
    assert meta == {"backbone": "logmel", "train": "av1m", "metrics": {"auc": 0.9}}
    np.testing.assert_array_equal(loaded.decision_function(fs), probe.decision_function(fs))
    assert loaded.get_params() == probe.get_params()
    assert probe_metadata(path)["dim"] == 8
    (tmp_path / "bad.safetensors").write_bytes(b"not a probe")
    with pytest.raises(ValueError, match="bad.safetensors"):
        load_probe(tmp_path / "bad.safetensors")
    with pytest.raises(FileNotFoundError, match="missing"):
        load_probe(tmp_path / "missing.safetensors")


def test_correlation_and_fusion():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(100), np.ones(100)].astype(int)
    a = y + rng.standard_normal(200)  # informative
    b = y + rng.standard_normal(200)  # informative, independent noise: fusion helps
    c = a + 0.01 * rng.standard_normal(200)  # a copy of a: fusion does not help
    ids = [f"v{i}" for i in range(200)]
    table = align_scores({"a": pd.Series(a, ids), "b": pd.Series(b, ids),
                          "c": pd.Series(c, ids[::-1][::-1]).iloc[:150]})
    assert len(table) == 150 and list(table.columns) == ["a", "b", "c"]
    table = align_scores({"a": pd.Series(a, ids), "b": pd.Series(b, ids), "c": pd.Series(c, ids)})
    corr = correlation_matrix(table)
    assert corr.loc["a", "c"] > 99 and abs(corr.loc["a", "b"]) < corr.loc["a", "c"]
    assert correlation_matrix(table, "spearman").loc["a", "a"] == 100
    np.testing.assert_allclose(late_fusion([1, 2], [3, 4]), [2, 3])
    fused = fusion_table(table, y, n_bootstrap=50).set_index(["row", "col"])
    assert fused.loc[("a", "b"), "rel_improvement"] > 2
    assert abs(fused.loc[("a", "c"), "rel_improvement"]) < 1
    assert fused.loc[("a", "a"), "rel_improvement"] == 0
    row = fused.loc[("a", "b")]
    assert row.auc_fused_low <= row.auc_fused <= row.auc_fused_high
    with pytest.raises(ValueError, match="real"):
        fusion_table(table, np.ones(200, int), n_bootstrap=5)
