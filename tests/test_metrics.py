"""Video-level metrics against scikit-learn, and the bootstrap interval."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from avdd.analysis.metrics import bootstrap_auc, evaluate


def scores_for(labels, seed=0, signal=1.0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(len(labels)) + signal * np.asarray(labels)


def test_point_estimates_equal_sklearn():
    labels = np.r_[np.zeros(40), np.ones(25)].astype(int)
    scores = scores_for(labels)
    m = evaluate(labels, scores)
    assert m["auc"] == pytest.approx(roc_auc_score(labels, scores))
    assert m["ap"] == pytest.approx(average_precision_score(labels, scores))
    assert (m["n"], m["n_fake"], m["n_real"]) == (65, 25, 40)


def test_interval_contains_estimate_and_is_seeded():
    labels = np.r_[np.zeros(151), np.ones(500)].astype(int)  # imbalanced, like FAVC's test
    scores = scores_for(labels, signal=0.8)
    m = evaluate(labels, scores, n_bootstrap=500, random_state=3)
    assert m["auc_ci_low"] < m["auc"] < m["auc_ci_high"]
    assert m["auc_ci_high"] - m["auc_ci_low"] < 0.15
    assert evaluate(labels, scores, n_bootstrap=500, random_state=3) == m
    assert evaluate(labels, scores, n_bootstrap=500, random_state=4)["auc_ci_low"] != m["auc_ci_low"]


def test_bootstrap_aucs_equal_sklearn_on_the_same_resamples_with_ties():
    labels = np.r_[np.zeros(7), np.ones(5)].astype(int)
    scores = np.round(scores_for(labels, seed=1) * 2) / 2  # many tied scores
    boots = bootstrap_auc(labels, scores, n_bootstrap=20, random_state=5)
    rng = np.random.default_rng(5)
    pos, neg = scores[labels == 1], scores[labels == 0]
    sample = np.concatenate([rng.choice(pos, (20, 5)), rng.choice(neg, (20, 7))], axis=1)
    y = np.r_[np.ones(5), np.zeros(7)]
    np.testing.assert_allclose(boots, [roc_auc_score(y, s) for s in sample])


def test_tiny_minority_class_still_has_both_classes_in_every_resample():
    labels = np.r_[np.zeros(2), np.ones(60)].astype(int)
    m = evaluate(labels, scores_for(labels), n_bootstrap=200)
    assert np.isfinite([m["auc_ci_low"], m["auc_ci_high"]]).all()


def test_invalid_inputs():
    with pytest.raises(ValueError, match="both classes"):
        evaluate([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="scores"):
        evaluate([0, 1], [0.1])
    with pytest.raises(ValueError, match="NaN"):
        evaluate([0, 1], [0.1, np.nan])
    m = evaluate([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8], n_bootstrap=0)
    assert m["auc"] == 1.0 and np.isnan(m["auc_ci_low"])
