"""Operating points across domains (avdd.analysis.thresholds, the book's operating_points
page): one pair by hand on fabricated scores, the bootstrap shortcut against explicit
resampling, the whole table on the tiny benchmark against the probes' own scores, and its
known-answer checks."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import TINY_SCALE
from sklearn.metrics import roc_auc_score

from avdd.analysis import known_answers
from avdd.analysis.linear_probing import TABLE2_COLUMNS
from avdd.analysis.metrics import stratified_indices
from avdd.analysis.operating_points import (
    choose_operating_point,
    expected_calibration_error,
    fit_temperature,
)
from avdd.analysis.probes import probe_scores
from avdd.analysis.thresholds import balanced_accuracy_interval, transfer_rows, transfer_table
from avdd.config import make_profile
from avdd.features.prepare import prepare
from avdd.heads.scoring import probability


def scores(labels, values) -> pd.DataFrame:
    return pd.DataFrame({"label": labels, "score": np.asarray(values, np.float64)})


def test_one_pair_by_hand():
    # Validation: reals 0, 2 and fakes 1, 3: the EER threshold is 1.5 (see
    # test_operating_points). Test: reals -1, 1, 2 (one of three at or above 1.5) and fakes
    # 0, 1.6, 3, 4 (three of four).
    val = scores([0, 0, 1, 1], [0.0, 2.0, 1.0, 3.0])
    test = scores([0, 0, 0, 1, 1, 1, 1], [-1.0, 1.0, 2.0, 0.0, 1.6, 3.0, 4.0])
    row, rel = transfer_rows(val, test, n_bins=5, n_bootstrap=200)
    assert row["threshold"] == 1.5 and row["val_eer"] == 50.0
    assert row["tpr"] == 75.0 and row["fpr"] == pytest.approx(100 / 3)
    assert row["accuracy"] == pytest.approx(100 * 5 / 7)
    assert row["balanced_accuracy"] == pytest.approx((75 + 200 / 3) / 2)
    assert row["auc"] == pytest.approx(100 * roc_auc_score(test["label"], test["score"]))
    assert row["tpr_ci_low"] < row["tpr"] < row["tpr_ci_high"]
    assert row["accuracy_ci_low"] < row["accuracy"] < row["accuracy_ci_high"]
    assert (row["n_real"], row["n_fake"], row["val_n_real"], row["val_n_fake"]) == (3, 4, 2, 2)
    # The test set's own EER point: 1 of 3 reals and 1 of 4 fakes wrong at "s >= 1.3".
    assert row["oracle_balanced_accuracy"] == pytest.approx(100 - 100 * (1 / 3 + 1 / 4) / 2)
    t = fit_temperature(val["label"], val["score"])
    assert row["temperature"] == pytest.approx(t) and row["temperature_note"].startswith("fitted")
    p = probability(test["score"].to_numpy())
    assert row["ece"] == pytest.approx(expected_calibration_error(test["label"], p, 5))
    assert row["ece_temperature"] == pytest.approx(
        expected_calibration_error(test["label"], probability(test["score"].to_numpy() / t), 5))
    assert list(rel["link"].unique()) == ["paper", "temperature"] and len(rel) == 10
    assert rel.groupby("link")["count"].sum().tolist() == [7, 7]


def test_separable_validation_has_a_threshold_but_no_temperature_and_one_class_tests_nan():
    val = scores([0, 0, 1, 1], [-1.0, 0.0, 2.0, 5.0])  # separable: threshold 1.0
    test = scores([1, 1, 1], [0.5, 1.0, 3.0])  # fakes only
    row, rel = transfer_rows(val, test, n_bins=4)
    assert row["threshold"] == 1.0 and row["tpr"] == pytest.approx(200 / 3)
    assert np.isnan(row["temperature"]) and np.isnan(row["ece_temperature"])
    assert row["temperature_note"] == "validation separates the classes"
    for k in ("fpr", "fpr_ci_low", "auc", "oracle_balanced_accuracy", "balanced_accuracy",
              "balanced_accuracy_ci_low"):
        assert np.isnan(row[k]), k
    assert set(rel["link"]) == {"paper"}
    with pytest.raises(ValueError, match="both classes"):  # no threshold without both
        transfer_rows(test, val)


@pytest.mark.slow
def test_balanced_accuracy_interval_equals_resampling_the_videos():
    """Two binomials stand for the stratified resamples: their interval is the one of
    explicitly resampled decisions (up to Monte Carlo error)."""
    rng = np.random.default_rng(1)
    labels = np.r_[np.zeros(30, int), np.ones(50, int)]
    fake = rng.random(80) < np.where(labels == 1, 0.7, 0.3)
    lo, hi = balanced_accuracy_interval(labels, fake, n_bootstrap=20000, random_state=2)
    boot = []
    for _ in range(20000):
        i = stratified_indices(labels, rng)
        y, f = labels[i], fake[i]
        boot.append(50 * (f[y == 1].mean() + (~f[y == 0]).mean()))
    assert lo == pytest.approx(np.percentile(boot, 2.5), abs=0.8)
    assert hi == pytest.approx(np.percentile(boot, 97.5), abs=0.8)
    point = 50 * (fake[labels == 1].mean() + (~fake[labels == 0]).mean())
    assert lo < point < hi
    assert all(np.isnan(balanced_accuracy_interval(labels[:30], fake[:30])))


@pytest.fixture(scope="module")
def logmel_profile(tiny_home, tmp_path_factory):
    profile = replace(make_profile("demo", home=tiny_home, synth_scale=TINY_SCALE),
                      cache_dir=tmp_path_factory.mktemp("thresholds") / "cache")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        prepare(profile, ["logmel"], progress=False)
        yield profile
    finally:
        torch.set_num_threads(before)


@pytest.mark.slow
def test_transfer_table_reads_each_columns_probe_on_the_training_sets_validation(
        logmel_profile):
    result = transfer_table(logmel_profile, ["logmel"], n_bootstrap=100)
    table, rel = result["table"], result["reliability"]
    assert list(zip(table["column"], table["train"], table["test"])) == list(TABLE2_COLUMNS)
    assert (table["backbone"] == "logmel").all() and (table["modality"] == "audio").all()
    for _, r in table.iterrows():
        val = probe_scores(logmel_profile, "logmel", r["train"], r["train"], split="val")
        test = probe_scores(logmel_profile, "logmel", r["train"], r["test"])
        op = choose_operating_point(val["label"], val["score"])
        assert r["threshold"] == pytest.approx(op.threshold), r["column"]
        fake = test["score"].to_numpy() >= op.threshold
        y = test["label"].to_numpy()
        assert r["tpr"] == pytest.approx(100 * fake[y == 1].mean()), r["column"]
        assert r["fpr"] == pytest.approx(100 * fake[y == 0].mean()), r["column"]
        assert r["auc"] == pytest.approx(100 * roc_auc_score(y, test["score"])), r["column"]
        assert r["n_fake"] + r["n_real"] == len(test)
        counts = rel[(rel["column"] == r["column"]) & (rel["link"] == "paper")]["count"]
        assert counts.sum() == len(test)
    # Cached: the same tables again, from the entry written by the first call.
    entries = list((logmel_profile.cache_dir / "results" / "operating_points").iterdir())
    assert len(entries) == 1
    again = transfer_table(logmel_profile, ["logmel"], n_bootstrap=100)
    pd.testing.assert_frame_equal(again["table"], table, check_dtype=False)

    checks = known_answers.operating_point_checks(logmel_profile, table)
    assert [c.page for c in checks] == ["operating_points"] * 2
    by_column = table.set_index("column")
    for c, col in zip(checks, ("A", "C")):
        assert f"({col}, balanced accuracy %)" in c.check
        assert c.value == pytest.approx(by_column.loc[col, "balanced_accuracy"])
        assert c.passed == (c.low > 50)


def test_operating_point_checks_need_the_reference_and_a_synthetic_profile():
    table = pd.DataFrame({"backbone": ["mouth-pixels"], "column": ["A"],
                          "balanced_accuracy": [90.0], "balanced_accuracy_ci_low": [80.0],
                          "balanced_accuracy_ci_high": [95.0]})
    demo = make_profile("demo", home="/nonexistent-avdd")
    (missing,) = known_answers.operating_point_checks(demo, table)
    assert not missing.passed and "logmel" in missing.why
    paper = replace(demo, name="paper", synthetic=False)
    assert known_answers.operating_point_checks(paper, table) == []
    ok = table.assign(backbone="logmel")
    ok = pd.concat([ok, ok.assign(column="C", balanced_accuracy_ci_low=49.0)])
    a, c = known_answers.operating_point_checks(demo, ok)
    assert a.passed and not c.passed
