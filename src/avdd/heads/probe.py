"""The paper's linear probe, trained fast on features streamed from a :class:`FeatureSet`.

Model (SPEC.md, "Linear probing"): every frame is L2-normalised, scored by one linear layer,
and the video score is the log-sum-exp over its frames::

    z_t = w . x_t / ||x_t||          (per-frame logit without bias)
    s   = b + logsumexp_t z_t        (video score; frame logits are z_t + b)
    L   = CE([-s, s], y) = softplus(-2 y' s),  y' = 2y - 1,  P(fake) = sigmoid(2 s)

Training: Adam (lr 1e-3, no weight decay) on the mean loss of each minibatch, early stopping
on the mean validation loss (patience 10, at most 100 epochs) keeping the best-validation
weights, seed 43: the official recipe, whose batch size of one is the default here.

Why it is fast, computing exactly this loss and gradient:

* No padding: videos are processed one at a time. ``w`` is fixed within a minibatch, so
  ``grad w = sum_j c_j sum_t softmax(z_j)_t x_jt / ||x_jt||`` (``c_j = dL_j/ds_j / B``)
  accumulates video by video, whatever the lengths.
* Compiled path (numba, the default when it is installed): one call per pool of videos runs
  every Adam step of the pool (forward, log-sum-exp, backward, update), with no Python per
  video. Each video's fp16 bytes are read once: every frame is converted (hardware fp16
  conversion where the CPU has it) into a 4 KB row that stays in L1, its logit and norm are
  computed, and its softmax-weighted contribution to the gradient is accumulated online
  (rescaled when the running max rises), so no (T, D) fp32 copy is ever written. Scoring
  passes compute logits straight from the fp16 bytes. Kernels are compiled on first use and
  cached on disk (``cache=True``: once per machine, a few seconds). ``AVDD_NO_NUMBA=1`` (or
  numba not installed) selects the NumPy path; ``engine_`` says which one a fit used.
* NumPy path (the reference): a video's fp16 frames are converted (by torch, ~10x faster
  than NumPy's cast) into an fp32 buffer that stays in the CPU cache, and both passes
  (logits, then gradient) run from there. Inverse frame norms are computed once and cached
  (4 bytes per frame). A NumPy port of torch's Adam update (same formulas, float32) takes
  ~10 us a step instead of ~40 us, which matters at one video per step. The two paths agree
  to float32 rounding (summation order); their Adam updates are bit-identical.
* Streaming: frames are read through read-only memory maps. Each epoch visits the videos in
  a fresh uniform permutation (the official ``DataLoader(shuffle=True)``), read in pools of
  about ``chunk_mb * pool_chunks`` MB: while one pool is computed the OS is asked to read the
  next (``madvise(WILLNEED)`` on its videos' byte ranges, sorted; skipped while pools come
  from the page cache, see :class:`avdd.heads.probe_order.Readahead`); one video's frames
  are contiguous, so even a random order reads runs of hundreds of KB. Sets larger than
  ``max_resident_mb`` are unmapped pool by pool, so the RSS stays small even for stores
  larger than RAM; smaller sets stay mapped, which saves re-mapping their pages every epoch
  (~0.09 s per GB measured here, a third of an epoch). ``shuffle="blocked"`` reads storage
  chunks instead, with a class-balanced order (:func:`avdd.heads.probe_order.plan_epoch`).
* One thread, with BLAS and torch pinned to one thread inside: these (T, D) pieces are too
  small to split. On the 2-vCPU machine measured, a converter thread pipelined with the
  compute lost more to GIL contention than it gained (the two vCPUs also slowed each other
  down as separate processes), and two-thread BLAS made a (225, 1024) gemv ~25x slower.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from avdd.features.featureset import FeatureSet
from avdd.features.threads import one_thread
from avdd.heads import probe_kernels as kernels
from avdd.heads.probe_order import SHUFFLES, Readahead, plan_epoch
from avdd.heads.scoring import NORM_EPS, probability, video_losses

__all__ = ["LinearProbe", "batch_gradient", "initial_weights"]

class _Frames:
    """Loads videos as fp32 into one reusable buffer, with cached inverse frame norms."""

    def __init__(self, fs: FeatureSet):
        self.fs = fs
        self.buf = np.empty((int(fs.lengths.max()), fs.dim), np.float32)
        self.tbuf = torch.from_numpy(self.buf)
        self.lengths = fs.lengths.tolist()  # Python ints: cheaper to index per video
        self.inv = [None] * len(fs)

    def __call__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(x (T, D) float32 view of the buffer, 1 / ||x_t|| (T,) float32) of video i."""
        n = self.lengths[i]
        self.tbuf[:n].copy_(self.fs.tensor(i))
        x = self.buf[:n]
        inv = self.inv[i]
        if inv is None:  # first visit: norms from the buffer (or the set's cache), then kept
            inv = self.inv[i] = 1.0 / np.maximum(self.fs.frame_norms(i, fp32_frames=x), NORM_EPS)
        return x, inv


def _logits(x: np.ndarray, inv: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, float]:
    """(z (T,), logsumexp z) with z_t = (x_t . w) / ||x_t||."""
    z = x @ w
    z *= inv
    m = float(z.max())
    return z, m + math.log(float(np.exp(z - m).sum()))


def _video_step(x, inv, w, b: float, label: int, scale: float, grad_w: np.ndarray,
                tmp: np.ndarray | None) -> tuple[float, float]:
    """(loss, scale * dL/db) of one video; adds ``scale * dL/dw`` to ``grad_w`` (D,), or
    writes it there when ``tmp`` (a (D,) scratch) is None."""
    z = x @ w
    z *= inv
    m = float(z.max())
    z -= m
    np.exp(z, out=z)  # z is now e_t = exp(z_t - max z)
    total = float(z.sum())
    v = 2.0 * (b + m + math.log(total)) * (-1.0 if label else 1.0)  # loss = softplus(v)
    sig = 1.0 / (1.0 + math.exp(-v)) if v >= 0 else math.exp(v) / (1.0 + math.exp(v))
    c = scale * (-2.0 if label else 2.0) * sig  # scale * dL/ds
    z *= inv  # dL/dw = c sum_t softmax_t x_t / ||x_t||
    z *= c / total
    if tmp is None:
        np.dot(z, x, out=grad_w)
    else:
        np.dot(z, x, out=tmp)
        grad_w += tmp
    return max(v, 0.0) + math.log1p(math.exp(-abs(v))), c


def batch_gradient(fs: FeatureSet, idx, w: np.ndarray, b: float, *,
                   compiled: bool | None = None) -> tuple[float, np.ndarray]:
    """Mean loss over videos ``idx`` and its gradient w.r.t. [w, b] (D + 1,), computed by the
    training code (used to test it against autograd): the compiled kernel if ``compiled``
    (default: when fit would use it, see LinearProbe), else the NumPy path."""
    if compiled and kernels.numba is None:
        raise ImportError("compiled=True needs numba (pip install numba)")
    if compiled or (compiled is None and kernels.use_numba()):
        src, idx = kernels.CompiledSet(fs), np.atleast_1d(np.asarray(idx, np.int64))
        theta = np.append(np.asarray(w, np.float32), np.float32(b))
        grad = np.empty_like(theta)
        loss = kernels.nb_batch(src.shards, src.shard_of, src.start, src.lengths, src.labels, idx, 0,
                         len(idx), theta, src.rows, src.u, grad)
        return loss / len(idx), grad
    idx, frames = np.atleast_1d(idx), _Frames(fs)
    grad, tmp, loss = np.zeros(fs.dim + 1, np.float32), np.empty(fs.dim, np.float32), 0.0
    for i in idx:
        x, inv = frames(i)
        v, c = _video_step(x, inv, np.asarray(w, np.float32), b, fs.labels[i], 1.0 / len(idx), grad[:-1], tmp)
        loss, grad[-1] = loss + v, grad[-1] + c
    return loss / len(idx), grad


def initial_weights(dim: int, seed: int) -> np.ndarray:
    """theta = [w; b] (D + 1,) float32: the official probe's initial weights, bit for bit.

    The official code builds ``nn.Linear(D, 1)`` right after ``torch.manual_seed(43)``
    (nothing draws from torch's RNG in between), so its weights are torch's default init
    (kaiming-uniform weight, then a uniform bias, both U(-1/sqrt(D), 1/sqrt(D))) from that
    seed; this builds the same layer inside ``fork_rng`` and copies it.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layer = torch.nn.Linear(dim, 1)
    with torch.no_grad():
        return torch.cat([layer.weight[0], layer.bias]).numpy().astype(np.float32)


class _Adam:
    """torch.optim.Adam's update (no weight decay, no amsgrad) on a float32 NumPy vector, in
    place and in torch's order of operations; tested against torch.optim.Adam."""

    def __init__(self, params: np.ndarray, lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params, self.lr, (self.b1, self.b2), self.eps = params, lr, betas, eps
        self.m, self.v, self.tmp = (np.zeros_like(params) for _ in range(3))
        self.t = 0

    def step(self, grad: np.ndarray) -> None:
        self.t += 1
        tmp = self.tmp
        np.subtract(grad, self.m, out=tmp)  # m.lerp_(g, 1 - b1)
        tmp *= np.float32(1 - self.b1)
        self.m += tmp
        self.v *= np.float32(self.b2)  # v.mul_(b2).addcmul_(g, g, value=1 - b2)
        np.multiply(grad, grad, out=tmp)
        tmp *= np.float32(1 - self.b2)
        self.v += tmp
        np.sqrt(self.v, out=tmp)  # denom = sqrt(v) / sqrt(1 - b2^t) + eps
        tmp /= np.float32(math.sqrt(1 - self.b2 ** self.t))
        tmp += np.float32(self.eps)
        np.divide(self.m, tmp, out=tmp)  # p.addcdiv_(m, denom, value=-lr / (1 - b1^t))
        tmp *= np.float32(-self.lr / (1 - self.b1 ** self.t))
        self.params += tmp


class LinearProbe(BaseEstimator):
    """Per-frame linear layer + log-sum-exp over time on L2-normalised frames (the paper's probe).

    Args:
        lr: Adam learning rate (paper: 1e-3; no weight decay).
        max_epochs: epoch cap (paper: 100).
        patience: stop after this many epochs without a lower validation loss (paper: 10).
        batch_size: videos per Adam step (paper: 1). Larger batches take fewer steps per
            epoch and, at lr 1e-3, need more epochs: on the planted benchmark
            (benchmarks/probe_speed.py, 1,400 training videos) batch 16 had test AUC 0.66
            after 100 epochs against 0.86 for batch 1. The cost per video is the same.
        random_state: seed of the initialisation and the shuffling (paper: 43). The initial
            weights are those of ``torch.nn.Linear(D, 1)`` built right after
            ``torch.manual_seed(random_state)``, as in the official code (the caller's torch
            RNG is left as it was).
        shuffle: order of the videos within an epoch (:mod:`avdd.heads.probe_order`):
            ``"uniform"`` (the official recipe: a fresh uniform permutation every epoch) or
            ``"blocked"`` (storage chunks shuffled in pools, interleaved by class; not a
            uniform permutation, an option for stores larger than RAM on disks slow at
            scattered reads).
        chunk_mb: "blocked": contiguous storage chunk read as one (MB).
        pool_chunks: read window of ``chunk_mb * pool_chunks`` MB ("uniform": prefetched and
            released as one; "blocked": chunks shuffled together).
        max_resident_mb: a set with more frame bytes than this is unmapped as it is read
            (bounded RSS); a smaller one stays mapped across epochs (faster; its pages count
            in the RSS, though they are the OS's page cache and reclaimable).
        verbose: print one line per epoch.

    Learned attributes: ``coef_`` (D,) float32, ``intercept_`` float, ``best_epoch_``
    (0-based epoch of the kept weights), ``history_`` (list of dicts: epoch, train_loss,
    val_loss, seconds), ``n_features_in_``, ``classes_`` = [0, 1], ``engine_`` ("numba":
    compiled kernels; "numpy": the reference path, taken when numba is not installed or the
    environment variable ``AVDD_NO_NUMBA=1`` is set; scoring checks the same at each call).
    """

    def __init__(self, *, lr: float = 1e-3, max_epochs: int = 100, patience: int = 10,
                 batch_size: int = 1, random_state: int = 43, shuffle: str = "uniform",
                 chunk_mb: int = 32, pool_chunks: int = 8, max_resident_mb: int = 2048,
                 verbose: bool = False):
        self.lr = lr
        self.max_epochs = max_epochs
        self.patience = patience
        self.batch_size = batch_size
        self.random_state = random_state
        self.shuffle = shuffle
        self.chunk_mb = chunk_mb
        self.pool_chunks = pool_chunks
        self.max_resident_mb = max_resident_mb
        self.verbose = verbose

    def fit(self, train: FeatureSet, val: FeatureSet | None = None, *,
            on_epoch: Callable[[dict], None] | None = None) -> LinearProbe:
        """Train on ``train``; early-stop on ``val`` (without it: ``max_epochs`` epochs, last
        weights kept). Labels must be 0 (real) / 1 (fake). ``on_epoch``: called with each
        epoch's ``history_`` record as it ends (progress bars; not a parameter of the model)."""
        for name, fs in (("train", train), ("val", val)):
            if fs is not None and (len(fs) == 0 or not np.isin(fs.labels, (0, 1)).all()):
                raise ValueError(f"{name} set must be non-empty with labels 0/1 (-1 = unlabelled)")
        if val is not None and val.dim != train.dim:
            raise ValueError(f"train has D={train.dim} but val has D={val.dim}")
        if self.shuffle not in SHUFFLES:
            raise ValueError(f"shuffle={self.shuffle!r}: expected one of {SHUFFLES}")
        dim = train.dim
        theta = initial_weights(dim, self.random_state)
        opt, rng = _Adam(theta, self.lr), np.random.default_rng(self.random_state)
        self.engine_ = "numba" if kernels.use_numba() else "numpy"
        compiled = self.engine_ == "numba"
        frames = (self._reader(train, compiled), None if val is None else self._reader(val, compiled))
        ahead = Readahead(train)
        self.history_, best = [], (np.inf, -1, theta.copy())
        with one_thread():
            for epoch in range(self.max_epochs):
                t0 = time.perf_counter()
                train_loss = self._train_epoch(frames[0], theta, opt, rng, ahead)
                val_loss = np.nan
                if val is not None:
                    lse, _ = self._scan(frames[1], theta[:-1])
                    val_loss = float(video_losses(lse + theta[-1], val.labels).mean())
                self.history_.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                                      "seconds": time.perf_counter() - t0})
                if self.verbose:
                    print(f"epoch {epoch:3d}  train {train_loss:.4f}  val {val_loss:.4f}  "
                          f"{self.history_[-1]['seconds']:.2f}s", flush=True)
                if on_epoch is not None:
                    on_epoch(self.history_[-1])
                if val is None or val_loss < best[0]:
                    best = (val_loss, epoch, theta.copy())
                elif epoch - best[1] >= self.patience:
                    break
        self.best_epoch_ = best[1]
        self.coef_, self.intercept_ = best[2][:-1].copy(), float(best[2][-1])
        self.n_features_in_ = dim
        self.classes_ = np.array([0, 1])
        return self

    @staticmethod
    def _reader(fs: FeatureSet, compiled: bool) -> _Frames | kernels.CompiledSet:
        """The compiled kernels' view of ``fs``, or the NumPy path's per-video reader."""
        return kernels.CompiledSet(fs) if compiled else _Frames(fs)

    def _train_epoch(self, frames: _Frames | kernels.CompiledSet, theta: np.ndarray, opt: _Adam, rng,
                     ahead: Readahead) -> float:
        fs = frames.fs
        plan = plan_epoch(fs, rng, batch_size=self.batch_size, shuffle=self.shuffle,
                          chunk_bytes=self.chunk_mb << 20, pool_chunks=self.pool_chunks)
        pools = [np.sort(np.concatenate(pool)) for pool in plan]
        pool_bytes = (self.chunk_mb << 20) * self.pool_chunks
        if isinstance(frames, kernels.CompiledSet):
            return self._train_epoch_compiled(frames, plan, pools, theta, opt, ahead, pool_bytes)
        w, labels = theta[:-1], fs.labels.tolist()
        grad, tmp, total = np.zeros_like(theta), np.empty_like(w), 0.0
        grad_w = grad[:-1]
        ahead(pools[0], pool_bytes)
        for p, pool in enumerate(plan):
            if p + 1 < len(plan):
                ahead(pools[p + 1], pool_bytes)  # the OS reads ahead while this pool is computed
            for batch in pool:
                b, scale, grad_b, first = float(theta[-1]), 1.0 / len(batch), 0.0, True
                for i in batch.tolist():
                    x, inv = frames(i)
                    loss, c = _video_step(x, inv, w, b, labels[i], scale, grad_w, None if first else tmp)
                    total, grad_b, first = total + loss, grad_b + c, False
                grad[-1] = grad_b
                opt.step(grad)
            if fs.nbytes > self.max_resident_mb << 20:
                fs.release(pools[p])
        return total / len(fs)

    def _train_epoch_compiled(self, src: kernels.CompiledSet, plan, pools, theta: np.ndarray, opt: _Adam,
                              ahead: Readahead, pool_bytes: int) -> float:
        """_train_epoch's loop with one compiled call per pool; Adam's state (opt.m, opt.v,
        opt.t) is shared with the NumPy path's optimiser object."""
        fs, grad, total = src.fs, np.empty_like(theta), 0.0
        ahead(pools[0], pool_bytes)
        for p, pool in enumerate(plan):
            if p + 1 < len(plan):
                ahead(pools[p + 1], pool_bytes)
            order = np.concatenate(pool).astype(np.int64, copy=False)
            bounds = np.zeros(len(pool) + 1, np.int64)
            np.cumsum([len(batch) for batch in pool], out=bounds[1:])
            loss, opt.t = kernels.nb_train_pool(src.shards, src.shard_of, src.start, src.lengths, src.labels,
                                         order, bounds, theta, opt.m, opt.v, opt.t, opt.lr, opt.b1,
                                         opt.b2, opt.eps, src.rows, src.u, grad)
            total += loss
            if fs.nbytes > self.max_resident_mb << 20:
                fs.release(pools[p])
        return total / len(fs)

    def _scan(self, frames: _Frames | kernels.CompiledSet, w: np.ndarray, logits: bool = False):
        """(logsumexp_t z_t (N,), [z (T,)] or None), reading chunk by chunk in storage order."""
        fs = frames.fs
        lse, out = np.empty(len(fs)), [None] * len(fs)
        order = fs.storage_order()
        cum = np.cumsum(fs.lengths[order]) * fs.dim * 2
        chunks = np.split(order, np.flatnonzero(np.diff(cum // (self.chunk_mb << 20))) + 1)
        compiled = isinstance(frames, kernels.CompiledSet)
        if compiled:  # logits land in one flat array, split per video at the end
            zoff = np.zeros(len(fs) + 1, np.int64)
            np.cumsum(fs.lengths, out=zoff[1:])
            zflat = np.empty(zoff[-1] if logits else 0, np.float32)
            w = np.ascontiguousarray(w, np.float32)
        for c, chunk in enumerate(chunks):
            if c + 1 < len(chunks):
                fs.prefetch(chunks[c + 1])
            if compiled:
                kernels.nb_scan(frames.shards, frames.shard_of, frames.start, frames.lengths,
                         chunk.astype(np.int64, copy=False), w, lse, zflat, zoff, logits, frames.z)
            else:
                for i in chunk.tolist():
                    z, lse[i] = _logits(*frames(i), w)
                    if logits:
                        out[i] = z
            if fs.nbytes > self.max_resident_mb << 20:
                fs.release(chunk)
        if compiled and logits:
            out = np.split(zflat, zoff[1:-1])
        return lse, (out if logits else None)

    def decision_function(self, X: FeatureSet) -> np.ndarray:
        """(N,) video scores s = b + logsumexp_t z_t (higher = more likely fake)."""
        check_is_fitted(self)
        with one_thread():
            lse, _ = self._scan(self._reader(X, kernels.use_numba()), self.coef_)
        return lse + self.intercept_

    def frame_logits(self, X: FeatureSet) -> list[np.ndarray]:
        """Per-frame logits z_t + b: a list of N float32 arrays of shape (T_i,)."""
        check_is_fitted(self)
        with one_thread():
            _, logits = self._scan(self._reader(X, kernels.use_numba()), self.coef_, logits=True)
        return [z + np.float32(self.intercept_) for z in logits]

    def predict_proba(self, X: FeatureSet) -> np.ndarray:
        """(N, 2) [P(real), P(fake)] with P(fake) = sigmoid(2 s)."""
        p = probability(self.decision_function(X))
        return np.stack([1.0 - p, p], axis=1)

    def predict(self, X: FeatureSet) -> np.ndarray:
        """(N,) 1 where P(fake) > 0.5, i.e. s > 0."""
        return (self.decision_function(X) > 0).astype(np.int64)
