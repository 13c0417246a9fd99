"""Operating points (threshold, temperature, ECE), the AP interval and the fit's sweep, each
against a hand-computed answer."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from avdd.analysis.fit_evaluate import evaluate_probe, fit_probe, scores_with_progress
from avdd.analysis.metrics import bootstrap_ap, stratified_indices
from avdd.analysis.operating_points import (
    OperatingPoint,
    choose_operating_point,
    equal_error_rate,
    expected_calibration_error,
    fit_temperature,
    rates_at,
    reliability_table,
)
from avdd.features.featureset import FeatureSet
from avdd.heads.probe import LinearProbe


def test_equal_error_rate_and_rates_by_hand():
    # Scores 0, 2 (real) and 1, 3 (fake): at "s >= 2" one real of two and one fake of two
    # are wrong, FPR = FNR = 0.5; the scores 2 down to just above 1 all give that point.
    eer, t = equal_error_rate([0, 0, 1, 1], [0.0, 2.0, 1.0, 3.0])
    assert eer == 0.5 and t == 1.5
    r = rates_at([0, 0, 1, 1], [0.0, 2.0, 1.0, 3.0], t)
    assert (r["accuracy"], r["tpr"], r["fpr"], r["fnr"]) == (0.5, 0.5, 0.5, 0.5)
    # Separable: the threshold sits halfway in the gap between the classes.
    assert equal_error_rate([0, 0, 1, 1], [-1.0, 0.0, 2.0, 5.0]) == (0.0, 1.0)
    # Unequal classes: 3 reals, 1 fake scored between them.
    eer, t = equal_error_rate([0, 0, 0, 1], [0.0, 1.0, 3.0, 2.0])
    assert t == 1.5 and eer == pytest.approx((1 / 3 + 0) / 2)
    with pytest.raises(ValueError, match="both classes"):
        equal_error_rate([1, 1], [0.0, 1.0])


def test_temperature_is_recovered_and_refused_when_separable():
    rng = np.random.default_rng(0)
    s = rng.normal(0, 3, 20000)
    y = (rng.random(len(s)) < 1 / (1 + np.exp(-2 * s / 2.5))).astype(int)  # true T = 2.5
    assert fit_temperature(y, s) == pytest.approx(2.5, rel=0.06)
    with pytest.raises(ValueError, match="separate real from fake perfectly"):
        fit_temperature([0, 0, 1, 1], [-1.0, 0.0, 2.0, 5.0])
    with pytest.raises(ValueError, match="wrong way round"):  # inverted: the best T is infinite
        fit_temperature(y, -s)
    op = choose_operating_point(y, s, calibrate=True)
    assert op.calibrated and op.temperature == pytest.approx(2.5, rel=0.06)
    assert op.validation["ece"] < op.validation["ece_uncalibrated"]
    assert OperatingPoint.from_dict(op.to_dict()) == op
    t = op.temperature
    assert op.probability(0.0) == 0.5 and op.probability(t) == pytest.approx(1 / (1 + np.e ** -2))


def test_ece_and_reliability_table_by_hand():
    y, p = [0, 1, 1, 1], [0.1, 0.1, 0.9, 0.9]
    # bins [0, .5], (.5, 1]: |0.5 - 0.1| * 2 + |1.0 - 0.9| * 2, over 4 videos
    assert expected_calibration_error(y, p, n_bins=2) == pytest.approx(0.25)
    t = reliability_table(y, p, n_bins=4)
    assert t["count"].tolist() == [2, 0, 0, 2] and t["fake_rate"].iloc[0] == 0.5
    assert np.isnan(t["mean_probability"].iloc[1]) and t["hi"].iloc[-1] == 1.0
    assert expected_calibration_error([0, 1], [0.0, 1.0]) == 0.0


def test_bootstrap_ap_replicates_are_stratified_resamples():
    rng = np.random.default_rng(1)
    y = np.r_[np.zeros(30, int), np.ones(10, int)]
    s = rng.normal(size=40) + y
    s[:6] = s[6:12]  # ties, which average precision steps over as one threshold
    reps = bootstrap_ap(y, s, n_bootstrap=50, random_state=7)
    again = np.random.default_rng(7)
    for r in reps:
        idx = stratified_indices(y, again)
        assert r == pytest.approx(average_precision_score(y[idx], s[idx]), abs=1e-12)
    assert np.unique(reps).size > 10


def _planted(n, seed):
    """Videos of 8 frames in D = 6 whose first coordinate is shifted up in fakes."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    arrays = [rng.normal(size=(8, 6)) + np.eye(6)[0] * (1.5 * lab) for lab in y]
    return FeatureSet.from_arrays(arrays, y)


def test_fit_probe_paper_default_sweep_and_operating_point(capsys):
    train, val = _planted(40, 0), _planted(20, 1)
    epochs = []
    one = LinearProbe(max_epochs=5).fit(train, val, on_epoch=epochs.append)
    assert epochs == one.history_  # the hook sees each epoch's record as it ends
    res = fit_probe(train, val, max_epochs=5, n_bootstrap=0, progress=False)
    assert res.sweep["lr"].tolist() == [1e-3] and res.probe.lr == 1e-3  # the paper's
    assert np.array_equal(res.probe.coef_, one.coef_)  # exactly the paper's probe
    res = fit_probe(train, val, lrs=(1e-4, 1e-2), max_epochs=5, n_bootstrap=0, progress=False)
    best = res.sweep.sort_values(["val_auc", "val_loss"], ascending=[False, True]).iloc[0]
    assert res.probe.lr == best["lr"] and res.sweep["selected"].sum() == 1
    s = res.probe.decision_function(val)
    assert res.operating_point.threshold == equal_error_rate(val.labels, s)[1]
    m = evaluate_probe(res.probe, res.operating_point, val, n_bootstrap=0)
    assert m == res.val_metrics and m["accuracy"] == rates_at(val.labels, s, m["threshold"])[
        "accuracy"]
    assert np.array_equal(scores_with_progress(res.probe, val, chunk=3, progress=False), s)
    paper = evaluate_probe(res.probe, None, val, n_bootstrap=0)  # no stored point: s >= 0
    assert paper["threshold"] == 0.0 and paper["auc"] == m["auc"]
    sep = fit_probe(train, val, max_epochs=5, n_bootstrap=0, progress=False, calibrate=True)
    assert not sep.operating_point.calibrated  # 5 epochs: no temperature fits these scores
    assert "calibration skipped" in capsys.readouterr().err
    with pytest.raises(ValueError, match="real and fake"):
        fit_probe(train, val.subset(val.labels == 1), progress=False)
