"""Anomaly detectors (avdd.anomaly) on tiny synthetic FeatureSets: fast, CPU only."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from avdd.features.featureset import FeatureSet
from avdd.heads.ntp import NextTokenPredictor, _NTPNet
from avdd.heads.pretext import fake_frame_mask, ntp_pretext_report, sync_pretext_report
from avdd.heads.sequences import Aligned, epoch_batches
from avdd.heads.sync import SyncDetector

TINY_NTP = dict(d_model=32, n_layers=2, n_heads=2, dim_feedforward=64, dropout=0.0)
TINY_SYNC = dict(hidden=64, widths=(64, 32, 16), tau=8)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: one torch thread is faster, and fair to a shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# -- synthetic data ---------------------------------------------------------------------------
def rotating(rng: np.random.Generator, t: int, harmonics: int = 4) -> np.ndarray:
    """(t, 2 * harmonics): cos/sin of k (w s + phase), k = 1..harmonics, w random per video,
    plus a little noise: each frame follows from the previous two."""
    w, phase = rng.uniform(0.2, 0.5), rng.uniform(0, 2 * np.pi)
    angle = (w * np.arange(t) + phase)[:, None] * np.arange(1, harmonics + 1)
    x = np.concatenate([np.cos(angle), np.sin(angle)], axis=1)
    return x + 0.02 * rng.standard_normal(x.shape)


def ntp_set(seed: int, n_real: int, n_fake: int, lo: int = 24, hi: int = 40) -> FeatureSet:
    """Reals are rotating sequences; fakes are too, with 4 random frames injected."""
    rng = np.random.default_rng(seed)
    arrays, meta = [], []
    for k in range(n_real + n_fake):
        x = rotating(rng, int(rng.integers(lo, hi)))
        m = {}
        if k >= n_real:
            a = int(rng.integers(4, len(x) - 4))
            x[a:a + 4] = rng.standard_normal((4, x.shape[1]))
            m = {"fake_segments": [[a / 25.0, (a + 3) / 25.0]]}
        arrays.append(x)
        meta.append(m)
    return FeatureSet.from_arrays(arrays, [0] * n_real + [1] * n_fake, meta=meta,
                                  ids=[f"{seed}-{k}" for k in range(len(arrays))])


def sync_sets(seed: int, n_real: int, n_fake: int, *, fps_a: float = 25.0):
    """(V, A): a_t = M v_t + noise for reals; fakes' audio is shifted by 4..8 frames."""
    rng = np.random.default_rng(seed)
    mix = np.random.default_rng(99).standard_normal((12, 10))  # one V->A map for all videos
    vs, as_, meta = [], [], []
    for k in range(n_real + n_fake):
        t = int(rng.integers(20, 36))
        v = rng.standard_normal((t, 12))
        a = v @ mix + 0.1 * rng.standard_normal((t, 10))
        if k >= n_real:
            a = np.roll(a, int(rng.integers(4, 9)), axis=0)
            meta.append({"fake_segments": [[0.0, t / 25.0]]})
        else:
            meta.append({})
        vs.append(v)
        as_.append(a)
    labels = [0] * n_real + [1] * n_fake
    ids = [f"s{seed}-{k}" for k in range(len(vs))]
    return (FeatureSet.from_arrays(vs, labels, ids=ids, meta=meta),
            FeatureSet.from_arrays(as_, labels, ids=ids, fps=fps_a))


@pytest.fixture(scope="module")
def ntp_data():
    return ntp_set(0, 60, 0), ntp_set(1, 20, 0), ntp_set(2, 30, 30)


@pytest.fixture(scope="module")
def ntp_model(ntp_data):
    train, val, _ = ntp_data
    return NextTokenPredictor(**TINY_NTP, max_epochs=25, patience=5, batch_size=8,
                              random_state=0).fit(train, val)


@pytest.fixture(scope="module")
def sync_data():
    return sync_sets(0, 40, 0), sync_sets(1, 12, 0), sync_sets(2, 20, 20)


@pytest.fixture(scope="module")
def sync_model(sync_data):
    (v, a), val, _ = sync_data
    return SyncDetector(**TINY_SYNC, lr=1e-3, max_epochs=20, patience=4, random_state=0).fit(v, a, val)


# -- next-token prediction --------------------------------------------------------------------
def test_ntp_scores_injected_frames_higher(ntp_model, ntp_data):
    test = ntp_data[2]
    scores = ntp_model.decision_function(test)
    assert roc_auc_score(test.labels, scores) > 0.9
    assert ntp_model.history_[ntp_model.best_epoch_]["val_loss"] < ntp_model.history_[0]["train_loss"]


def test_ntp_frame_errors_shape_and_frame0(ntp_model, ntp_data):
    test = ntp_data[2]
    errs = ntp_model.frame_errors(test)
    assert [len(e) for e in errs] == test.lengths.tolist()
    assert all(np.isnan(e[0]) and np.isfinite(e[1:]).all() and e.dtype == np.float32 for e in errs)
    np.testing.assert_allclose(ntp_model.decision_function(test), [e[1:].max() for e in errs])


def test_ntp_padding_does_not_change_errors(ntp_model, ntp_data):
    test = ntp_data[2].subset(np.arange(10))  # lengths 24..39: padded batches
    assert len(set(test.lengths.tolist())) > 1
    batched = ntp_model.frame_errors(test)
    for i in range(len(test)):
        alone = ntp_model.frame_errors(test.subset([i]))[0]
        np.testing.assert_allclose(batched[i][1:], alone[1:], rtol=1e-4, atol=1e-6)


def test_ntp_is_causal(ntp_model):
    net = ntp_model.module_
    x = torch.randn(1, 20, 8)
    valid = torch.ones(1, 20, dtype=torch.bool)
    t = 9
    y = x.clone()
    y[0, t + 1] += 5.0
    with torch.no_grad():
        a, b = net(x, valid), net(y, valid)
    torch.testing.assert_close(a[0, : t + 1], b[0, : t + 1])
    assert not torch.allclose(a[0, t + 1], b[0, t + 1])


def test_ntp_trains_on_reals_only(ntp_data):
    train, val, test = ntp_data
    mixed = FeatureSet.from_arrays([train[i] for i in range(20)] + [test[i] for i in range(30, 40)],
                                   [0] * 20 + [1] * 10)
    reals = mixed.subset(np.arange(20))
    kw = dict(**TINY_NTP, max_epochs=2, batch_size=8, random_state=3)
    a = NextTokenPredictor(**kw).fit(mixed)
    b = NextTokenPredictor(**kw).fit(reals)
    assert a.n_train_ == b.n_train_ == 20
    np.testing.assert_array_equal(a.decision_function(test), b.decision_function(test))
    with pytest.raises(ValueError, match="no real"):
        NextTokenPredictor(**kw).fit(mixed.subset(np.arange(20, 30)))


def test_ntp_early_stopping_keeps_best_weights(ntp_data):
    train = ntp_data[0].subset(np.arange(20))
    # Unpredictable (white-noise) "real" validation videos: the better the model learns the
    # rotations, the worse it does on them, so the validation loss rises and training stops.
    rng = np.random.default_rng(5)
    val = FeatureSet.from_arrays([rng.standard_normal((30, 8)) for _ in range(10)], [0] * 10)
    model = NextTokenPredictor(**TINY_NTP, max_epochs=20, patience=2, batch_size=8,
                               random_state=0).fit(train, val)
    val_losses = [h["val_loss"] for h in model.history_]
    assert model.best_epoch_ == int(np.argmin(val_losses))
    assert len(model.history_) == model.best_epoch_ + 3 < 20
    errs = np.concatenate([e[1:] for e in model.frame_errors(val)])
    assert errs.mean() == pytest.approx(val_losses[model.best_epoch_], rel=1e-5)
    assert errs.mean() != pytest.approx(val_losses[-1], rel=1e-3)


def test_ntp_pair_truncates_and_concatenates():
    rng = np.random.default_rng(0)
    xa = [rng.standard_normal((10, 3)), rng.standard_normal((12, 3))]
    xb = [rng.standard_normal((15, 2)), rng.standard_normal((8, 2))]
    fa = FeatureSet.from_arrays(xa, [0, 0], ids=["p", "q"])
    fb = FeatureSet.from_arrays(xb[::-1], [0, 0], ids=["q", "p"])  # other order: matched by id
    data = Aligned((fa, fb))
    assert data.dims == (3, 2) and data.lengths.tolist() == [10, 8]
    for i, n in enumerate([10, 8]):
        a = np.asarray(fa[i], np.float32)[:n]
        b = np.asarray(FeatureSet.from_arrays([xb[i]])[0], np.float32)[:n]
        want = np.concatenate([a / np.linalg.norm(a, axis=1, keepdims=True),
                               b / np.linalg.norm(b, axis=1, keepdims=True)], axis=1)
        np.testing.assert_allclose(data.frames(i).numpy(), want, rtol=1e-5, atol=1e-6)
    model = NextTokenPredictor(**TINY_NTP, max_epochs=1).fit((fa, fb))
    assert model.n_features_in_ == 5
    assert [len(e) for e in model.frame_errors((fa, fb))] == [10, 8]
    with pytest.raises(ValueError, match="D ="):
        model.frame_errors(fa)


def test_ntp_deterministic_and_leaves_global_rng(ntp_data):
    train = ntp_data[0].subset(np.arange(16))
    kw = dict(**{**TINY_NTP, "dropout": 0.1}, max_epochs=2, batch_size=4, random_state=7)
    torch.manual_seed(123)
    a = NextTokenPredictor(**kw).fit(train)
    after = torch.rand(3)
    torch.manual_seed(123)
    expected = torch.rand(3)
    b = NextTokenPredictor(**kw).fit(train)
    torch.testing.assert_close(after, expected)
    np.testing.assert_array_equal(a.decision_function(train), b.decision_function(train))
    c = NextTokenPredictor(**{**kw, "random_state": 8}).fit(train)
    assert not np.array_equal(a.decision_function(train), c.decision_function(train))


def test_ntp_positional_dropout():
    """Upstream adds positions then applies Dropout(0.1) before the encoder: with every other
    dropout off, two train-mode passes differ, eval-mode passes do not; pe_dropout=0 removes it."""
    x, valid = torch.randn(2, 12, 8), torch.ones(2, 12, dtype=torch.bool)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = _NTPNet(8, 16, 1, 2, 32, dropout=0.0, pe_dropout=0.1)
        plain = _NTPNet(8, 16, 1, 2, 32, dropout=0.0, pe_dropout=0.0)
        with torch.no_grad():
            assert not torch.equal(net.train()(x, valid), net(x, valid))
            assert torch.equal(net.eval()(x, valid), net(x, valid))
            torch.testing.assert_close(plain.train()(x, valid), plain(x, valid), rtol=0, atol=0)
    assert NextTokenPredictor().pe_dropout == 0.1 and NextTokenPredictor().dropout == 0.1


def share_rate(batching: str, lengths: np.ndarray, pair: tuple[int, int], epochs: int = 3000) -> float:
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(epochs):
        for b in epoch_batches(lengths, 32, batching, rng):
            hits += pair[0] in b and pair[1] in b
    return hits / epochs


def test_ntp_uniform_batches_mix_lengths():
    """Upstream's DataLoader(shuffle=True, batch_size=32): any two videos share a batch with
    probability 31 / (N - 1), whatever their lengths; length bucketing never puts the
    shortest and the longest video together."""
    lengths = np.arange(10, 106)  # N = 96 = 3 batches of 32
    batches = epoch_batches(lengths, 32, "uniform", np.random.default_rng(1))
    assert sorted(np.concatenate(batches).tolist()) == list(range(96)) and len(batches) == 3
    assert share_rate("uniform", lengths, (0, 95)) == pytest.approx(31 / 95, abs=0.03)
    assert share_rate("length", lengths, (0, 95)) == 0.0
    assert NextTokenPredictor().batching == "uniform"


def test_ntp_fit_trains_on_uniform_batches(ntp_data, monkeypatch):
    from avdd.heads import ntp

    seen = []
    monkeypatch.setattr(ntp, "epoch_batches", lambda *a: seen.append(a[2]) or epoch_batches(*a))
    NextTokenPredictor(**TINY_NTP, max_epochs=2, batch_size=8).fit(ntp_data[0].subset(np.arange(16)))
    assert seen == ["uniform", "uniform"]
    with pytest.raises(ValueError, match="batching"):
        NextTokenPredictor(batching="sorted").fit(ntp_data[0])


def test_ntp_validation_loss_is_upstream_batch_mean(ntp_data):
    """Lightning's epoch val_loss: the mean of per-batch losses (batches of batch_size in the
    set's order, each the mean over its valid target frames), weighted by batch size. With
    unequal lengths it differs from the mean over all frames."""
    rng = np.random.default_rng(2)
    lengths = [8, 40, 12, 35, 9, 30, 11, 38, 10, 25]
    val = FeatureSet.from_arrays([rotating(rng, t) for t in lengths], [0] * 10)
    model = NextTokenPredictor(**TINY_NTP, max_epochs=2, batch_size=4, random_state=0).fit(
        ntp_data[0].subset(np.arange(16)), val)
    errs = [e[1:].astype(np.float64) for e in model.frame_errors(val)]
    batches = [range(4), range(4, 8), range(8, 10)]
    per_batch = [np.concatenate([errs[i] for i in b]).mean() for b in batches]
    want = np.average(per_batch, weights=[4, 4, 2])
    assert model.history_[model.best_epoch_]["val_loss"] == pytest.approx(want, rel=1e-5)
    assert want != pytest.approx(np.concatenate(errs).mean(), rel=1e-3)


def test_ntp_pretext_report(ntp_model, ntp_data):
    report = ntp_pretext_report(ntp_model, ntp_data[2]).set_index("group")
    assert list(report.index) == ["real videos", "fake videos", "fake frames of fakes", "real frames of fakes"]
    assert report.loc["fake frames of fakes", "mean_error"] > 2 * report.loc["real videos", "mean_error"]
    assert report.loc["fake frames of fakes", "n_frames"] == 30 * 4


def test_fake_frame_mask():
    m = fake_frame_mask({"fake_segments": [[0.2, 0.3], [1.9, 5.0]]}, 50, 25.0)
    assert np.flatnonzero(m).tolist() == [5, 6, 7] + list(range(47, 50))
    assert fake_frame_mask({}, 10, 25.0) is None
    assert not fake_frame_mask({"fake_segments": [[9.0, 9.5]]}, 10, 25.0).any()


# -- synchronisation (AVH-Align) -------------------------------------------------------------
def test_sync_learns_alignment(sync_model, sync_data):
    v, a = sync_data[2]
    assert roc_auc_score(v.labels, sync_model.decision_function(v, a)) > 0.9
    reals = np.flatnonzero(v.labels == 0)
    assert sync_model.offset_accuracy(v.subset(reals), a.subset(reals)) > 0.8
    fakes = np.flatnonzero(v.labels == 1)
    assert sync_model.offset_accuracy(v.subset(fakes), a.subset(fakes)) < 0.3


def test_sync_outputs(sync_model, sync_data):
    v, a = sync_data[2]
    scores = sync_model.frame_scores(v, a)
    assert [len(s) for s in scores] == v.lengths.tolist()
    lse = [np.logaddexp.reduce(s.astype(np.float64)) for s in scores]
    np.testing.assert_allclose(sync_model.decision_function(v, a), lse, rtol=1e-6)
    offsets = sync_model.predicted_offsets(v, a)
    assert all(np.abs(o).max() <= 8 for o in offsets)
    masks = [np.arange(len(o)) < 5 for o in offsets]
    want = np.mean(np.concatenate([o[:5] == 0 for o in offsets]))
    assert sync_model.offset_accuracy(v, a, frames=masks) == pytest.approx(want)


def test_sync_window_logits_match_pairwise(sync_model):
    net = sync_model.module_
    lengths, tau = [7, 4], 3
    v, a = torch.randn(11, 12), torch.randn(11, 10)
    with torch.no_grad():
        fast = net.window_logits(v, a, lengths, tau)
        start = 0
        for n in lengths:
            for t in range(n):
                for j in range(2 * tau + 1):
                    k = t + j - tau
                    ak = a[start + k] if 0 <= k < n else torch.zeros(10)
                    torch.testing.assert_close(fast[start + t, j], net(v[start + t], ak), rtol=1e-5, atol=1e-5)
            start += n


def test_sync_network_matches_upstream_layout():
    """Parameter names and shapes of bit-ml/AVH-Align's FusionModel (its checkpoint's keys)."""
    from avdd.heads.sync import _SyncNet

    shapes = {k: tuple(v.shape) for k, v in _SyncNet(1024, 1024).state_dict().items()}
    want = {"visual_proj.weight": (512, 1024), "visual_proj.bias": (512,),
            "audio_proj.weight": (512, 1024), "audio_proj.bias": (512,)}
    for i, (n_in, n_out) in zip((0, 3, 6), ((1024, 512), (512, 256), (256, 128))):
        want.update({f"mlp.{i}.weight": (n_out, n_in), f"mlp.{i}.bias": (n_out,),
                     f"mlp.{i + 1}.weight": (n_out,), f"mlp.{i + 1}.bias": (n_out,)})
    want.update({"mlp.9.weight": (1, 128), "mlp.9.bias": (1,)})
    assert shapes == want


def test_sync_fps_mismatch(sync_data):
    v, _ = sync_data[1]
    _, a = sync_sets(1, 12, 0, fps_a=12.5)
    with pytest.raises(ValueError, match="25 Hz but the audio set A is at 12.5 Hz"):
        SyncDetector().fit(v, a)


def test_sync_pretext_report(sync_model, sync_data):
    report = sync_pretext_report(sync_model, *sync_data[2]).set_index("group")
    assert report.loc["real videos", "sync_accuracy"] > 0.8
    assert report.loc["fake frames of fakes", "sync_accuracy"] < 0.3
    assert report.loc["fake frames of fakes", "chance"] == pytest.approx(1 / 17)


def test_sync_deterministic(sync_data):
    (v, a), _, _ = sync_data
    v, a = v.subset(np.arange(8)), a.subset(np.arange(8))
    kw = dict(**TINY_SYNC, lr=1e-3, max_epochs=2, batch_frames=64, random_state=5)
    s1 = SyncDetector(**kw).fit(v, a).decision_function(v, a)
    s2 = SyncDetector(**kw).fit(v, a).decision_function(v, a)
    np.testing.assert_array_equal(s1, s2)


# -- estimator conventions --------------------------------------------------------------------
@pytest.mark.parametrize("est", [NextTokenPredictor(**TINY_NTP, max_epochs=3), SyncDetector(lr=1e-4, tau=5)])
def test_clone(est):
    c = clone(est)
    assert c.get_params() == est.get_params() and c is not est
    assert not hasattr(c, "module_")


def test_unfitted_raises(ntp_data):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        NextTokenPredictor().decision_function(ntp_data[1])
