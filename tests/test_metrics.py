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


# -- one home for each piece of shared maths ---------------------------------------------------
def test_one_auc_for_videos_and_frames_equal_to_sklearn():
    from sklearn.metrics import roc_auc_score

    from avdd.analysis.metrics import auc

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    scores = np.round(rng.normal(size=200) + labels, 1)  # ties on purpose
    assert auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert np.isnan(auc([1, 1, 1], [0.1, 0.2, 0.3]))  # one class: undefined, not an error


def test_one_class_sets_get_nan_metrics_where_a_grid_asks_for_them():
    m = evaluate([1, 1, 1], [0.1, 0.2, 0.3], one_class="nan")
    assert np.isnan([m["auc"], m["ap"], m["auc_ci_low"], m["auc_ci_high"]]).all()
    assert (m["n"], m["n_fake"], m["n_real"]) == (3, 3, 0)


def test_bootstrap_intervals_share_one_percentile_rule():
    from avdd.analysis.metrics import bootstrap_mean_interval, percentile_interval

    lo, hi = percentile_interval(np.arange(1001.0))
    assert (lo, hi) == (25.0, 975.0)
    v = np.r_[np.zeros(50), np.ones(50)]
    lo, hi = bootstrap_mean_interval(v, n_bootstrap=2000, rng=np.random.default_rng(0))
    assert lo < 0.5 < hi and hi - lo == pytest.approx(2 * 1.96 * 0.05, rel=0.15)
    assert np.isnan(bootstrap_mean_interval([1.0], n_bootstrap=10,
                                            rng=np.random.default_rng(0))).all()


def test_probability_is_sigma_of_twice_the_score_everywhere():
    import torch

    from avdd.heads.scoring import probability, video_losses

    s = np.array([-800.0, -1.0, 0.0, 0.3, 800.0])
    np.testing.assert_allclose(probability(s), 1 / (1 + np.exp(-2 * s.clip(-300, 300))),
                               atol=1e-15)
    assert probability(0.0) == 0.5 and isinstance(probability(0.2), float)
    t = torch.tensor(s[1:4], requires_grad=True)
    torch.testing.assert_close(probability(t), torch.sigmoid(2 * t))
    loss = video_losses(t, torch.tensor([1.0, 0.0, 1.0]))
    np.testing.assert_allclose(loss.detach().numpy(), video_losses(s[1:4], [1, 0, 1]))
    loss.sum().backward()  # differentiable for the Transformer head
    assert t.grad is not None


def test_the_silence_rule_is_one_and_upstreams():
    """1.16 s at 25 fps: 29 frames for the lip models' trimming, the leading-silence check and
    Fig. 3's clock alike (the two roundings disagreed there: 29 vs 30)."""
    from avdd.analysis.temporal import drop_leading_silence, feature_offsets
    from avdd.backbones.layers.audio import silence_frames, trim_leading_silence

    assert silence_frames(1.16, 25.0) == 29 == int(25.0 * 1.16) + 1
    assert silence_frames(0.32, 25.0) == 9 and silence_frames(0.0, 25.0) == 0
    sr = 16000
    wave = np.r_[np.zeros(int(1.16 * sr)), np.full(sr, 0.1)].astype(np.float32)
    frames, _, s = trim_leading_silence(np.arange(75), wave, sample_rate=sr, fps=25.0)
    assert 75 - len(frames) == silence_frames(s, 25.0)
    _, dropped = drop_leading_silence([np.zeros(75)], [s], 25.0)
    assert dropped.tolist() == [silence_frames(s, 25.0)]
    trimmed = feature_offsets("avhubert-a-tiny-random:trim_silence=true", np.array([s]))
    assert trimmed.tolist() == [silence_frames(s, 25.0)]


def test_a_wider_level_gives_a_wider_interval_from_the_same_resamples():
    """The chance checks read 99 % intervals (checks.CONTROL_LEVEL): from the same resamples
    they contain the 95 % ones, the point estimate is unchanged, and a level outside (0, 100)
    is refused."""
    from avdd.analysis.metrics import bootstrap_mean_interval, percentile_interval

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 80)
    scores = rng.normal(size=80) + 0.3 * labels
    m95 = evaluate(labels, scores, random_state=5)
    m99 = evaluate(labels, scores, random_state=5, level=99)
    assert m99["auc"] == m95["auc"]
    assert m99["auc_ci_low"] < m95["auc_ci_low"] < m95["auc_ci_high"] < m99["auc_ci_high"]
    values = rng.normal(size=50)
    lo95, hi95 = bootstrap_mean_interval(values, n_bootstrap=500, rng=np.random.default_rng(1))
    lo99, hi99 = bootstrap_mean_interval(values, n_bootstrap=500, rng=np.random.default_rng(1),
                                         level=99)
    assert lo99 < lo95 < hi95 < hi99
    for bad in (0, 100, -5, 150):
        with pytest.raises(ValueError, match="level"):
            percentile_interval(values, level=bad)
