"""The appendix's Transformer head, Table 3's validation-based selection, and the Wav2Vec2
``layer`` option (multi-layer features)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from avdd.analysis.sota import TABLE3_COLUMNS, select_best, sota_table
from avdd.features.featureset import FeatureSet
from avdd.heads.probe import LinearProbe
from avdd.heads.transformer import TransformerHead


def order_data(n: int, seed: int, T: int = 10, D: int = 8) -> FeatureSet:
    """Real videos show pattern a then b, fakes b then a: the same *set* of frames, so a
    frame-wise probe (permutation-invariant log-sum-exp) cannot tell them apart."""
    rng = np.random.default_rng(seed)
    a, b = np.eye(D)[0], np.eye(D)[1]
    arrays, labels = [], []
    for i in range(n):
        fake = i % 2
        first, second = (b, a) if fake else (a, b)
        x = np.concatenate([np.tile(first, (T // 2, 1)), np.tile(second, (T - T // 2, 1))])
        arrays.append(x + 0.05 * rng.standard_normal((T, D)))
        labels.append(fake)
    return FeatureSet.from_arrays(arrays, labels)


@pytest.fixture(scope="module")
def order_sets():
    return order_data(48, 0), order_data(16, 1), order_data(32, 2)


@pytest.fixture(scope="module")
def head(order_sets):
    train, val, _ = order_sets
    return TransformerHead(lr=3e-3, max_epochs=60, patience=15, batch_size=8).fit(train, val)


def test_head_learns_temporal_order_the_probe_cannot(head, order_sets):
    from sklearn.metrics import roc_auc_score

    train, val, test = order_sets
    assert roc_auc_score(test.labels, head.decision_function(test)) > 0.95
    probe = LinearProbe(max_epochs=20, patience=5).fit(train, val)
    assert roc_auc_score(test.labels, probe.decision_function(test)) < 0.8


def test_head_outputs_and_padding(head, order_sets):
    test = order_sets[2]
    frames = head.frame_logits(test)
    assert [len(f) for f in frames] == test.lengths.tolist()
    s = head.decision_function(test)
    np.testing.assert_allclose(s, [np.logaddexp.reduce(f.astype(np.float64)) for f in frames],
                               rtol=1e-5, atol=1e-5)
    # One video alone and next to a longer, padded one: same score (masks work).
    long = FeatureSet.from_arrays([np.asarray(test[0], np.float32),
                                   np.random.default_rng(3).standard_normal((25, 8))], [0, 1])
    alone = FeatureSet.from_arrays([np.asarray(test[0], np.float32)], [0])
    np.testing.assert_allclose(head.decision_function(long)[0],
                               head.decision_function(alone)[0], atol=1e-5)
    p = head.predict_proba(test)
    assert p.shape == (len(test), 2) and np.allclose(p.sum(1), 1)
    assert set(head.predict(test).tolist()) <= {0, 1}
    assert 0 <= head.best_epoch_ < len(head.history_)
    with pytest.raises(ValueError, match="D = 8"):
        head.decision_function(FeatureSet.from_arrays([np.ones((3, 4))], [0]))


def test_head_is_deterministic_and_leaves_global_state(order_sets):
    train, val, test = order_sets
    state, threads = torch.random.get_rng_state(), torch.get_num_threads()
    a = TransformerHead(max_epochs=3).fit(train, val).decision_function(test)
    assert torch.equal(state, torch.random.get_rng_state())
    assert torch.get_num_threads() == threads
    b = TransformerHead(max_epochs=3).fit(train, val).decision_function(test)
    np.testing.assert_array_equal(a, b)


def test_head_rejects_unlabelled():
    fs = FeatureSet.from_arrays([np.ones((3, 4)), np.ones((3, 4))], [0, -1])
    with pytest.raises(ValueError, match="labels must be 0"):
        TransformerHead(max_epochs=1).fit(fs)


# -- Table 3: selection on validation --------------------------------------------------------
def test_select_best_uses_validation_with_tie_breaks():
    val = pd.DataFrame({
        "modality": ["audio", "audio", "visual", "visual", "visual"],
        "val_auc": [90.0, 95.0, 100.0, 100.0, np.nan],
        "val_loss": [0.1, 0.5, 0.3, 0.2, 0.01],
        "val_ap": [90.0, 95.0, 100.0, 100.0, np.nan],
    }, index=pd.Index(["a1", "a2", "v1", "v2", "v3"], name="backbone"))
    best = select_best(val)
    assert best.to_dict() == {"audio": "a2", "visual": "v2"}  # AUC first, then lower loss
    only_nan = val.assign(val_auc=np.nan, val_ap=np.nan)
    assert select_best(only_nan).to_dict() == {"audio": "a1", "visual": "v3"}


def test_sota_table_means():
    rows = [{"backbone": b, "column": c, "auc": v}
            for b, vals in {"x": [100, 90, 60, 50], "y": [50, 50, 50, 50]}.items()
            for c, v in zip(TABLE3_COLUMNS.values(), vals)]
    table = sota_table(pd.DataFrame(rows), pd.Series({"audio": "x"}))
    row = table.loc["audio"]
    assert (row["av1m"], row["favc"], row["avlips"], row["dfe"]) == (100, 90, 60, 50)
    assert row["all4"] == pytest.approx(75) and row["last3"] == pytest.approx(200 / 3)
    with pytest.raises(ValueError, match="lacks"):
        sota_table(pd.DataFrame(rows).query("column != 'I'"), pd.Series({"audio": "x"}))


# -- multi-layer Wav2Vec2 features ---------------------------------------------------------
@pytest.mark.slow
def test_wav2vec2_layer_option():
    from avdd.backbones import get_backbone
    from avdd.media import Clip

    default = get_backbone("wav2vec2-tiny-random")
    assert "layer" not in default.config()  # old cache keys unchanged
    for same in ("wav2vec2-tiny-random:layer=-1", "wav2vec2-tiny-random:layer=2"):
        assert json.dumps(get_backbone(same).config(), sort_keys=True) == \
            json.dumps(default.config(), sort_keys=True)
    with pytest.raises(ValueError, match="hidden states 0..2"):
        get_backbone("wav2vec2-tiny-random:layer=3")
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, 16000).astype(np.float32)
    clip = Clip(video=np.zeros((0, 8, 8, 3), np.uint8), audio=audio)
    last = default(clip)
    feats = {k: get_backbone(f"wav2vec2-tiny-random:layer={k}") for k in (0, 1)}
    for k, b in feats.items():
        assert b.config()["layer"] == k
        x = b(clip)
        assert x.shape == last.shape and not np.allclose(x, last)
    np.testing.assert_allclose(get_backbone("wav2vec2-tiny-random:layer=2")(clip), last)


def test_layer_specs_name_the_default_layer_plainly():
    from avdd.backbones.wav2vec2 import layer_specs

    assert layer_specs("wav2vec2-tiny-random", [0, 2, -1]) == [
        "wav2vec2-tiny-random:layer=0", "wav2vec2-tiny-random", "wav2vec2-tiny-random"]
    assert layer_specs("wav2vec2-tiny-random:seed=1", [1]) == [
        "wav2vec2-tiny-random:seed=1,layer=1"]
