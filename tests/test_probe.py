"""LinearProbe: exactness against a naive padded torch implementation, and behaviour."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score

import avdd.heads.probe_kernels as kernels
from avdd.features.store import FeatureSet, FeatureStore
from avdd.heads.probe import LinearProbe, _Adam, batch_gradient
from avdd.heads.probe_order import plan_epoch
from avdd.heads.scoring import video_losses


def random_set(n=12, dim=24, seed=0, max_len=30) -> FeatureSet:
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal((int(rng.integers(1, max_len)), dim)) for _ in range(n)]
    return FeatureSet.from_arrays(arrays, np.arange(n) % 2)


def planted(n, dim=32, seed=0, shift=4.0):
    """Noise videos; fakes get 5-10 frames shifted along one axis. Returns (set, frame labels)."""
    rng = np.random.default_rng(seed)
    arrays, frame_labels = [], []
    for i in range(n):
        x = rng.standard_normal((int(rng.integers(20, 60)), dim))
        lab = np.zeros(len(x))
        if i % 2:
            k = int(rng.integers(5, 11))
            a = int(rng.integers(0, len(x) - k))
            x[a:a + k, 0] += shift
            lab[a:a + k] = 1
        arrays.append(x)
        frame_labels.append(lab)
    return FeatureSet.from_arrays(arrays, np.arange(n) % 2), frame_labels


def naive_model(w, b) -> torch.nn.Linear:
    lin = torch.nn.Linear(len(w), 1)
    with torch.no_grad():
        lin.weight.copy_(torch.as_tensor(np.asarray(w, np.float32))[None])
        lin.bias.fill_(float(b))
    return lin


def naive_scores(lin, fs, idx) -> torch.Tensor:
    """The official model on a zero-padded, masked batch: (B,) scores with autograd."""
    x = [torch.from_numpy(np.asarray(fs[i], np.float32)) for i in idx]
    pad = torch.nn.utils.rnn.pad_sequence(x, batch_first=True)  # (B, T_max, D)
    mask = torch.arange(pad.shape[1])[None] < torch.tensor([len(v) for v in x])[:, None]
    feats = pad / pad.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    logits = lin(feats)[..., 0].masked_fill(~mask, float("-inf"))
    return torch.logsumexp(logits, dim=1)


def naive_loss(lin, fs, idx) -> torch.Tensor:
    s = naive_scores(lin, fs, idx)[:, None]
    return torch.nn.functional.cross_entropy(torch.cat((-s, s), 1), torch.as_tensor(fs.labels[idx]))


needs_numba = pytest.mark.skipif(kernels.numba is None, reason="numba not installed: only the NumPy path")
ENGINES = [False, pytest.param(True, marks=needs_numba)]  # batch_gradient(compiled=...)


@pytest.mark.parametrize("compiled", ENGINES, ids=["numpy", "numba"])
def test_gradient_equals_autograd_on_padded_batch(compiled):
    fs = random_set()
    rng = np.random.default_rng(1)
    w, b = (0.5 * rng.standard_normal(fs.dim)).astype(np.float32), 0.3
    idx = np.array([3, 0, 7, 11, 4])
    loss, grad = batch_gradient(fs, idx, w, b, compiled=compiled)
    lin = naive_model(w, b)
    ref = naive_loss(lin, fs, idx)
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-5)
    np.testing.assert_allclose(grad[:-1], lin.weight.grad[0].numpy(), rtol=1e-4, atol=1e-6)
    assert grad[-1] == pytest.approx(lin.bias.grad.item(), rel=1e-4)


def test_losses_are_cross_entropy_of_minus_s_s():
    s = np.array([-30.0, -1.0, 0.0, 2.0, 40.0])
    y = np.array([1, 0, 1, 1, 0])
    logits = torch.tensor(np.stack([-s, s], 1))
    ref = torch.nn.functional.cross_entropy(logits, torch.tensor(y), reduction="none").numpy()
    np.testing.assert_allclose(video_losses(s, y), ref, rtol=1e-12)


@pytest.mark.slow
def test_adam_port_matches_torch():
    rng = np.random.default_rng(0)
    theta = rng.standard_normal(50).astype(np.float32)
    param = torch.nn.Parameter(torch.tensor(theta))
    ours, ref = _Adam(theta, lr=1e-3), torch.optim.Adam([param], lr=1e-3)
    for _ in range(300):
        g = (rng.standard_normal(50) * rng.uniform(1e-3, 10)).astype(np.float32)
        param.grad = torch.tensor(g)
        ref.step()
        ours.step(g)
    np.testing.assert_allclose(theta, param.detach().numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("batch_size", [1, 4])
def test_training_equals_naive_torch_training(batch_size):
    """Same init, same batches: our fit and nn.Linear + autograd + torch Adam agree."""
    fs = random_set(n=30, seed=2)
    probe = LinearProbe(max_epochs=3, batch_size=batch_size, random_state=7).fit(fs)
    with torch.random.fork_rng(devices=[]):  # the official init: nn.Linear after manual_seed
        torch.manual_seed(7)
        lin = torch.nn.Linear(fs.dim, 1)
    opt = torch.optim.Adam(lin.parameters(), lr=1e-3)
    rng = np.random.default_rng(7)
    for _ in range(3):
        for pool in plan_epoch(fs, rng, batch_size=batch_size, chunk_bytes=32 << 20, pool_chunks=8):
            for batch in pool:
                opt.zero_grad()
                naive_loss(lin, fs, batch).backward()
                opt.step()
    np.testing.assert_allclose(probe.coef_, lin.weight.detach()[0].numpy(), rtol=1e-4, atol=1e-6)
    assert probe.intercept_ == pytest.approx(lin.bias.item(), rel=1e-4, abs=1e-6)


def test_scores_do_not_depend_on_batching_or_padding():
    fs = random_set(n=9)
    probe = LinearProbe(max_epochs=2).fit(fs)
    together = probe.decision_function(fs)
    alone = np.array([probe.decision_function(fs.subset([i]))[0] for i in range(len(fs))])
    np.testing.assert_array_equal(together, alone)
    padded = naive_scores(naive_model(probe.coef_, probe.intercept_), fs, np.arange(len(fs)))
    np.testing.assert_allclose(together, padded.detach().numpy(), rtol=1e-5, atol=1e-6)
    logits = probe.frame_logits(fs)
    assert [len(z) for z in logits] == fs.lengths.tolist()
    np.testing.assert_allclose([torch.logsumexp(torch.tensor(z, dtype=torch.float64), 0) for z in logits],
                               together, rtol=1e-5)
    proba = probe.predict_proba(fs)
    np.testing.assert_allclose(proba[:, 1], 1 / (1 + np.exp(-2 * together)))
    np.testing.assert_allclose(proba.sum(1), 1.0)
    np.testing.assert_array_equal(probe.predict(fs), (together > 0).astype(int))


@pytest.mark.slow
def test_recovers_planted_signal_and_localises_it():
    train, _ = planted(300, seed=0)
    val, _ = planted(100, seed=1)
    test, frame_labels = planted(200, seed=2)
    probe = LinearProbe().fit(train, val)
    assert roc_auc_score(test.labels, probe.decision_function(test)) > 0.97
    logits = probe.frame_logits(test)
    loc = [roc_auc_score(lab, z) for lab, z, y in zip(frame_labels, logits, test.labels) if y == 1]
    assert np.mean(loc) > 0.9


def test_early_stopping_keeps_best_validation_weights():
    rng = np.random.default_rng(0)  # random labels: the probe can only overfit
    train = FeatureSet.from_arrays([rng.standard_normal((10, 64)) for _ in range(40)], rng.integers(0, 2, 40))
    val = FeatureSet.from_arrays([rng.standard_normal((10, 64)) for _ in range(40)], np.arange(40) % 2)
    probe = LinearProbe(patience=3, max_epochs=200, lr=1e-2).fit(train, val)
    losses = [h["val_loss"] for h in probe.history_]
    assert probe.best_epoch_ == int(np.argmin(losses))
    assert len(losses) == probe.best_epoch_ + 3 + 1 < 200  # stopped early, 3 epochs after the best
    kept = video_losses(probe.decision_function(val), val.labels).mean()
    assert kept == pytest.approx(losses[probe.best_epoch_], rel=1e-6)


def test_seeded_and_deterministic():
    fs = random_set(n=20)
    a = LinearProbe(max_epochs=3).fit(fs)
    b = LinearProbe(max_epochs=3).fit(fs)
    c = LinearProbe(max_epochs=3, random_state=0).fit(fs)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    assert not np.array_equal(a.coef_, c.coef_)


def test_store_and_in_memory_sets_train_identically(tmp_path):
    fs = random_set(n=15)
    with FeatureStore(tmp_path, dim=fs.dim, fps=25.0) as store:
        for i in range(len(fs)):
            store.append(fs.ids[i], fs[i], label=fs.labels[i])
    on_disk = FeatureSet.open(tmp_path)
    a = LinearProbe(max_epochs=2, chunk_mb=1).fit(fs)
    b = LinearProbe(max_epochs=2, chunk_mb=1).fit(on_disk)
    np.testing.assert_array_equal(a.coef_, b.coef_)


def flat(plan) -> np.ndarray:
    """The epoch's sequence of videos (the Adam steps' order at batch size 1)."""
    return np.concatenate([b for pool in plan for b in pool])


@pytest.mark.parametrize("shuffle", ["uniform", "blocked"])
def test_plan_epoch_visits_every_video_once(shuffle):
    fs = random_set(n=50, dim=256)
    rng = np.random.default_rng(0)
    plans = [plan_epoch(fs, rng, batch_size=4, shuffle=shuffle, chunk_bytes=4096, pool_chunks=2)
             for _ in range(2)]
    for plan in plans:
        assert sorted(flat(plan)) == list(range(50))
        assert max(len(b) for pool in plan for b in pool) <= 4
        assert len(plan) > 1  # several pools: the read windows are exercised
    assert not np.array_equal(flat(plans[0]), flat(plans[1]))


def test_uniform_plan_batches_are_consecutive_in_the_permutation():
    """Pools never reorder: the batches are order[k:k + B] of one permutation."""
    fs = random_set(n=50, dim=256)
    plan = plan_epoch(fs, np.random.default_rng(3), batch_size=3, chunk_bytes=4096, pool_chunks=1)
    order = flat(plan)
    assert len(plan) > 2
    assert [b.tolist() for pool in plan for b in pool] == [order[k:k + 3].tolist() for k in range(0, 50, 3)]
    assert plan_epoch(fs, np.random.default_rng(3), batch_size=3, chunk_bytes=4096,
                      pool_chunks=1)[0][0].tolist() == np.random.default_rng(3).permutation(50)[:3].tolist()


def equal_lengths(n, length=4, dim=8, labels=None) -> FeatureSet:
    return FeatureSet.from_arrays([np.ones((length, dim))] * n, np.zeros(n, int) if labels is None else labels)


@pytest.mark.slow
@pytest.mark.parametrize("chunk_videos,pool_chunks", [(1, 1), (2, 1), (4, 2), (10**6, 8)])
def test_uniform_plan_makes_every_order_equally_likely(chunk_videos, pool_chunks):
    """N = 3: each of the 6 orders in 1/6 of 30,000 epochs (4.6 sigma), whatever the read
    windows (a planner that shuffled only within storage chunks fails at 2 videos a chunk)."""
    fs = equal_lengths(3)
    video_bytes = 4 * 8 * 2
    rng = np.random.default_rng(0)
    counts: dict[tuple, int] = {}
    n = 30_000
    for _ in range(n):
        key = tuple(flat(plan_epoch(fs, rng, batch_size=1, chunk_bytes=chunk_videos * video_bytes,
                                    pool_chunks=pool_chunks)).tolist())
        counts[key] = counts.get(key, 0) + 1
    assert len(counts) == 6
    for key, c in counts.items():
        assert abs(c / n - 1 / 6) < 0.01, (key, c / n)


def test_uniform_plan_separates_videos_stored_together():
    """N = 64 equal videos, 4 per storage chunk: P(|pos(v0) - pos(v1)| < 16) is
    1680 / 4032 = 0.4167 under a uniform permutation; neighbours in storage are not kept
    together (a chunk-local shuffle gives >> 0.5)."""
    fs = equal_lengths(64)
    rng = np.random.default_rng(1)
    close = []
    for _ in range(5000):
        order = flat(plan_epoch(fs, rng, batch_size=1, chunk_bytes=4 * 64, pool_chunks=2))
        pos = np.argsort(order)
        close.append(abs(int(pos[0]) - int(pos[1])) < 16)
    assert np.mean(close) == pytest.approx(1680 / 4032, abs=0.02)


def longest_run(labels: np.ndarray) -> int:
    """Length of the longest run of equal consecutive values."""
    cuts = np.flatnonzero(np.diff(labels)) + 1
    return int(np.diff(np.r_[0, cuts, len(labels)]).max())


@pytest.mark.parametrize("shuffle", ["uniform", "blocked"])
def test_class_runs_on_a_store_written_class_by_class(shuffle):
    """A FAVC-like store (314 reals, then 2,600 fakes, in storage order, ~70 videos per
    chunk): the longest run of same-class Adam steps is that of a uniform shuffle (expected
    value simulated with NumPy), not ~2,600 consecutive fakes."""
    n_real, n_fake, length, dim = 314, 2600, 20, 8
    labels = np.r_[np.zeros(n_real, int), np.ones(n_fake, int)]
    fs = equal_lengths(n_real + n_fake, length, dim, labels)
    sim = np.random.default_rng(123)
    expected = np.array([longest_run(sim.permutation(labels)) for _ in range(2000)])
    rng = np.random.default_rng(0)
    runs = np.array([longest_run(labels[flat(plan_epoch(fs, rng, batch_size=1, shuffle=shuffle,
                                                        chunk_bytes=70 * length * dim * 2, pool_chunks=8))])
                     for _ in range(200)])
    se = np.sqrt(expected.var() / len(expected) + runs.var() / len(runs))
    assert abs(runs.mean() - expected.mean()) < 4 * se, (runs.mean(), expected.mean())
    assert runs.max() < 4 * expected.mean()


def test_readahead_prefetches_only_while_pools_come_from_disk(monkeypatch):
    """On (next pool prefetched) while the last pool read >= 1/16 of a pool from storage, off
    once pools are served from memory, on again when reads come back; always on for a set
    larger than physical memory."""
    from avdd.heads import probe_order

    fs = random_set(n=4)
    asked = []
    monkeypatch.setattr(fs, "prefetch", lambda idx: asked.append(list(idx)))
    disk = iter([0, 0, 100, 100, 200, 203, 260])  # bytes read so far, at each call
    monkeypatch.setattr(probe_order, "_disk_bytes_read", lambda: next(disk))
    ahead = probe_order.Readahead(fs)
    for k in range(7):
        ahead(np.array([k]), pool_bytes=16 * 16)  # threshold: 16 bytes since the last call
    assert asked == [[0], [2], [4], [6]]  # first on, +0 off, +100 on, +0 off, +100 on, +3 off, +57 on
    ahead.always = True
    monkeypatch.setattr(probe_order, "_disk_bytes_read", lambda: 260)
    ahead(np.array([9]), pool_bytes=16 * 16)
    assert asked[-1] == [9]


def test_initial_weights_are_nn_linear_after_manual_seed():
    """The official init, bit for bit: nn.Linear(D, 1) right after torch.manual_seed(seed);
    the caller's torch RNG is untouched."""
    fs = random_set(n=4, dim=37)
    state = torch.random.get_rng_state()
    probe = LinearProbe(max_epochs=0, random_state=43).fit(fs)
    assert torch.equal(torch.random.get_rng_state(), state)
    torch.manual_seed(43)
    ref = torch.nn.Linear(37, 1)
    np.testing.assert_array_equal(probe.coef_, ref.weight.detach().numpy()[0])
    assert probe.intercept_ == ref.bias.item()
    torch.random.set_rng_state(state)


def test_estimator_conventions():
    probe = LinearProbe(batch_size=8)
    assert clone(probe).get_params() == probe.get_params()
    with pytest.raises(NotFittedError):
        probe.decision_function(random_set(n=2))
    fs = random_set(n=6)
    assert probe.set_params(max_epochs=1).fit(fs) is probe
    assert probe.coef_.shape == (fs.dim,) and probe.n_features_in_ == fs.dim
    assert probe.classes_.tolist() == [0, 1]
    with pytest.raises(ValueError, match="labels"):
        LinearProbe().fit(FeatureSet.from_arrays([np.ones((3, 4))]))


# -- the compiled (numba) path against the NumPy reference ----------------------------------------


def fit_with(engine, monkeypatch, *args, **params):
    """LinearProbe(**params).fit(*args) on the NumPy path (engine 'numpy') or the compiled one."""
    if engine == "numpy":
        monkeypatch.setenv("AVDD_NO_NUMBA", "1")
    else:
        monkeypatch.delenv("AVDD_NO_NUMBA", raising=False)
    probe = LinearProbe(**params).fit(*args)
    assert probe.engine_ == engine
    return probe


@needs_numba
@pytest.mark.parametrize("batch_size", [1, 3])
def test_compiled_path_equals_numpy_path(batch_size, monkeypatch):
    """Same batches and Adam: the weights after an epoch (and two) agree to float32 rounding,
    as do the validation losses and the scores."""
    train, val = random_set(n=40, dim=48, seed=3), random_set(n=10, dim=48, seed=4)
    for epochs in (1, 2):
        params = dict(max_epochs=epochs, patience=5, batch_size=batch_size, random_state=5)
        ref = fit_with("numpy", monkeypatch, train, val, **params)
        ours = fit_with("numba", monkeypatch, train, val, **params)
        np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-5, atol=1e-7)
        assert ours.intercept_ == pytest.approx(ref.intercept_, rel=1e-5, abs=1e-7)
        for key in ("train_loss", "val_loss"):
            assert [h[key] for h in ours.history_] == pytest.approx([h[key] for h in ref.history_], rel=1e-5)
    compiled_scores = ours.decision_function(val)
    compiled_logits = ours.frame_logits(val)
    monkeypatch.setenv("AVDD_NO_NUMBA", "1")
    np.testing.assert_allclose(compiled_scores, ours.decision_function(val), rtol=1e-5, atol=1e-6)
    for z, z_ref in zip(compiled_logits, ours.frame_logits(val)):
        np.testing.assert_allclose(z, z_ref, rtol=1e-5, atol=1e-6)


@needs_numba
def test_compiled_path_on_a_multi_rank_store(tmp_path, monkeypatch):
    """Videos spread over two writer ranks: two shards, interleaved within the batches."""
    fs = random_set(n=16)
    for rank in (0, 1):
        with FeatureStore(tmp_path, rank=rank, dim=fs.dim, fps=25.0) as store:
            for i in range(rank, len(fs), 2):
                store.append(fs.ids[i], fs[i], label=fs.labels[i])
    assert len(list(tmp_path.glob("shard-*.bin"))) == 2
    on_disk = FeatureSet.open(tmp_path)
    ref = fit_with("numpy", monkeypatch, on_disk, on_disk, max_epochs=2, batch_size=2)
    ours = fit_with("numba", monkeypatch, on_disk, on_disk, max_epochs=2, batch_size=2)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-5, atol=1e-7)
    scores = ours.decision_function(on_disk)
    monkeypatch.setenv("AVDD_NO_NUMBA", "1")
    np.testing.assert_allclose(scores, ours.decision_function(on_disk), rtol=1e-5, atol=1e-6)


@needs_numba
def test_compiled_gradient_on_awkward_videos():
    """The online softmax rescales whenever the running max rises: rising logits (a rescale
    every frame), one-frame videos, all-zero and huge frames, long videos."""
    rng = np.random.default_rng(0)
    dim = 40
    direction = rng.standard_normal(dim)
    rising = np.linspace(-3, 3, 50)[:, None] * direction + 0.1 * rng.standard_normal((50, dim))
    zeros = rng.standard_normal((20, dim))
    zeros[[0, 7, 19]] = 0.0
    arrays = [rising, rising[::-1], rng.standard_normal((1, dim)), zeros,
              2e3 * rng.standard_normal((30, dim)), rng.standard_normal((700, dim))]
    fs = FeatureSet.from_arrays(arrays, [1, 0, 1, 0, 1, 0])
    w, b = (0.3 * direction / np.linalg.norm(direction) * 20).astype(np.float32), -0.2
    for idx in ([0], [1], [2], [3], [4], [5], [5, 0, 3, 2, 1, 4]):
        loss, grad = batch_gradient(fs, idx, w, b, compiled=True)
        ref_loss, ref_grad = batch_gradient(fs, idx, w, b, compiled=False)
        assert loss == pytest.approx(ref_loss, rel=1e-5)
        np.testing.assert_allclose(grad, ref_grad, rtol=1e-4, atol=1e-6 * np.abs(ref_grad).max())


@needs_numba
def test_compiled_adam_is_the_numpy_adam_bit_for_bit():
    rng = np.random.default_rng(0)
    theta = rng.standard_normal(50).astype(np.float32)
    ours, ref = theta.copy(), _Adam(theta.copy(), lr=1e-3)
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    for t in range(1, 301):
        g = (rng.standard_normal(50) * rng.uniform(1e-3, 10)).astype(np.float32)
        ref.step(g)
        kernels.nb_adam(ours, g, m, v, t, 1e-3, 0.9, 0.999, 1e-8)
    np.testing.assert_array_equal(ours, ref.params)
    np.testing.assert_array_equal(m, ref.m)


@needs_numba
@pytest.mark.parametrize("converter", ["arith", "hardware"])
def test_fp16_conversion_in_kernels_is_exact(converter):
    """Every fp16 value (subnormals, +-0, +-inf, NaN) converts to the same float32 as NumPy."""
    if converter == "hardware" and not kernels.F16_HARDWARE:
        pytest.skip("no hardware fp16 conversion on this CPU")
    numba = kernels.numba
    half = kernels.half_arith if converter == "arith" else kernels.half_hardware

    @numba.njit
    def convert(bits, out):
        for k in range(bits.shape[0]):
            out[k] = half(bits[k])

    bits = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    out = np.empty(len(bits), np.float32)
    convert(bits, out)
    ref = bits.view(np.float16).astype(np.float32)
    nan = np.isnan(ref)
    np.testing.assert_array_equal(np.isnan(out), nan)
    np.testing.assert_array_equal(out[~nan].view(np.uint32), ref[~nan].view(np.uint32))  # -0.0 too


def test_numba_disabled_or_missing_takes_the_numpy_path(monkeypatch):
    """AVDD_NO_NUMBA=1, or numba not importable, trains and scores with the NumPy path."""
    fs = random_set(n=10)

    def fail(*args, **kwargs):
        raise AssertionError("compiled kernel called")

    for name in ("nb_train_pool", "nb_scan", "nb_batch"):
        monkeypatch.setattr(kernels, name, fail)
    monkeypatch.setenv("AVDD_NO_NUMBA", "1")
    probe = LinearProbe(max_epochs=2).fit(fs, fs)
    assert probe.engine_ == "numpy"
    probe.decision_function(fs)
    batch_gradient(fs, [0, 1], probe.coef_, probe.intercept_)
    monkeypatch.delenv("AVDD_NO_NUMBA")
    monkeypatch.setattr(kernels, "numba", None)
    assert LinearProbe(max_epochs=1).fit(fs).engine_ == "numpy"
    probe.frame_logits(fs)
    with pytest.raises(ImportError, match="numba"):
        batch_gradient(fs, [0], probe.coef_, probe.intercept_, compiled=True)
