"""The linear probe's compiled kernels (numba): training and scoring straight from fp16 bytes.

Kept apart from :mod:`avdd.heads.probe` because numba's on-disk cache (``cache=True``) is keyed
by the source file: an edit of the estimator must not recompile these (~6 s per process). Why
one module of ~220 lines: every kernel below is part of one compiled call graph.

The same maths as ``_video_step``/``_Adam``/``_logits`` of :mod:`avdd.heads.probe`, with the
loop over the videos of a whole pool (forward, log-sum-exp, backward, Adam) in one
numba-compiled call: the NumPy path spends ~30 us of Python per video, a third of its time at
one video per Adam step. The NumPy path stays the reference (``batch_gradient``, tests) and
runs when numba is missing or ``AVDD_NO_NUMBA=1``. The two agree to float32 rounding, not bit
for bit: dot products and sums are added in another order than BLAS's, and the softmax is
accumulated online (below). The Adam update itself is bit-identical.
"""

from __future__ import annotations

import math
import os

import numpy as np

from avdd.features.featureset import FeatureSet
from avdd.heads.scoring import NORM_EPS

try:
    import numba
    from llvmlite import binding as _llvm_binding
    from llvmlite import ir as _llvm_ir
    from numba.core import types as _nb_types
    from numba.extending import intrinsic as _nb_intrinsic
except ImportError:  # optional dependency: the NumPy path is used instead
    numba = None


def use_numba() -> bool:
    """Whether fit/scoring take the compiled path (numba importable and AVDD_NO_NUMBA unset)."""
    return numba is not None and os.environ.get("AVDD_NO_NUMBA", "").strip().lower() not in ("1", "true", "yes")


if numba is not None:
    # Reassociation lets LLVM vectorise the (D,) dot products and sums of squares (several
    # partial sums); contraction allows FMAs. No nnan/ninf: inf and NaN propagate as in NumPy.
    # cache=True: compiled once per machine (and again when this file changes), then loaded.
    _jit = numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})

    # fp16 -> fp32 in the kernels (numba has no float16 arithmetic on the CPU; the bytes are
    # read as uint16). A hardware conversion (x86 F16C, aarch64) makes a dot product over
    # the fp16 bytes memory-bound: 18 us per 225x1024 video against 25 us with the bit
    # arithmetic below, which is what other CPUs (and NUMBA_CPU_NAME builds, whose target
    # may lack F16C) get. Both are exact (tests check all 65,536 values).
    F16_HARDWARE = "NUMBA_CPU_NAME" not in os.environ and (
        _llvm_binding.get_host_cpu_features().get("f16c", False)
        or _llvm_binding.get_process_triple().startswith(("aarch64", "arm64")))

    @_nb_intrinsic
    def _bits_to_float32(typingctx, bits):
        """Reinterpret a uint32's bits as a float32 (no conversion)."""
        if bits != _nb_types.uint32:
            return None

        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], _llvm_ir.FloatType())

        return _nb_types.float32(_nb_types.uint32), codegen

    @_nb_intrinsic
    def half_hardware(typingctx, bits):
        """float32 of fp16 bits (uint16) by LLVM's fpext (vcvtph2ps with F16C)."""
        if bits != _nb_types.uint16:
            return None

        def codegen(context, builder, signature, args):
            return builder.fpext(builder.bitcast(args[0], _llvm_ir.HalfType()), _llvm_ir.FloatType())

        return _nb_types.float32(_nb_types.uint16), codegen

    @numba.njit(inline="always")
    def half_arith(h):
        """float32 of fp16 bits ``h`` (uint16) by integer arithmetic, branch-free so that it
        vectorises: exponent and mantissa move into the float32 fields and a multiply by
        2^112 re-biases the exponent (subnormals included); inf/NaN (exponent 31) get the
        float32 all-ones exponent."""
        bits = np.uint32(np.uint32(h & 0x7FFF) << np.uint32(13))
        f = _bits_to_float32(bits) * np.float32(5.192296858534828e33)  # 2^112
        if h & 0x7C00 == 0x7C00:
            f = _bits_to_float32(np.uint32(bits | np.uint32(0x7F800000)))
        return -f if h & 0x8000 else f

    _half = half_hardware if F16_HARDWARE else half_arith

    @_jit
    def _nb_logits(src, row0, n, w, z):
        """z[t] = (x_t . w) / ||x_t|| for the frames x = src[row0:row0 + n] ((n, D) fp16 bits,
        norms floored at NORM_EPS). One pass over the fp16 bytes; the norms are recomputed,
        which costs nothing next to reading the bytes."""
        dim = w.shape[0]
        for t in range(n):
            row = src[row0 + t]
            acc = np.float32(0.0)
            ss = np.float32(0.0)
            for d in range(dim):
                x = _half(row[d])
                acc += x * w[d]
                ss += x * x
            z[t] = acc * (np.float32(1.0) / max(np.float32(np.sqrt(ss)), np.float32(NORM_EPS)))

    @_jit
    def _nb_video(src, row0, n, w, rows, u):
        """One video in one pass over its fp16 bytes: returns (m, total) and sets
        u (D,) = sum_t exp(z_t - m) x_t / ||x_t||, where m = max_t z_t and
        total = sum_t exp(z_t - m); so logsumexp z = m + log(total) and
        d logsumexp / dw = u / total.

        The softmax is accumulated online (u and total are rescaled when the running max
        rises, as in flash attention), so each frame is converted once into a 4 KB row of
        ``rows`` ((2, D) float32 scratch) that stays in L1; the add of frame t-1 into u runs
        in the same loop as frame t's dot product (its weight needs frame t-1's logit)."""
        dim = w.shape[0]
        m = -np.inf
        total = 0.0
        u[:] = 0.0
        rows[1, :] = 0.0  # "frame -1" (weight 0): never stale inf/NaN times 0
        a = np.float32(0.0)  # weight exp(z_{t-1} - m) / ||x_{t-1}|| of the previous frame
        cur = 0
        for t in range(n):
            row, new, prev = src[row0 + t], rows[cur], rows[1 - cur]
            acc = np.float32(0.0)
            ss = np.float32(0.0)
            for d in range(dim):
                x = _half(row[d])
                new[d] = x
                acc += x * w[d]
                ss += x * x
                u[d] += a * prev[d]
            inv = np.float32(1.0) / max(np.float32(np.sqrt(ss)), np.float32(NORM_EPS))
            z = acc * inv
            if z > m:  # new running max: rescale what was accumulated relative to the old one
                if t > 0:
                    s = np.float32(np.exp(m - z))
                    total *= s
                    for d in range(dim):
                        u[d] *= s
                m = z
            e = np.float32(np.exp(z - m))
            total += e
            a = e * inv
            cur = 1 - cur
        prev = rows[1 - cur]
        for d in range(dim):
            u[d] += a * prev[d]
        return m, total

    # Strict IEEE float32 (no FMA), so that it equals _Adam.step bit for bit. fastmath=False
    # must be explicit: a callee that leaves it unset inherits its caller's fastmath flags.
    @numba.njit(cache=True, nogil=True, fastmath=False)
    def nb_adam(p, g, m, v, t, lr, b1, b2, eps):
        """torch's Adam step on float32 (D,) vectors in place, in _Adam.step's order."""
        one_b1, b2f, one_b2 = np.float32(1 - b1), np.float32(b2), np.float32(1 - b2)
        # math.pow is C's pow, as Python's float ** int (numba's ** multiplies repeatedly)
        bc2 = np.float32(math.sqrt(1 - math.pow(b2, t)))
        epsf = np.float32(eps)
        step = np.float32(-lr / (1 - math.pow(b1, t)))
        for d in range(p.shape[0]):
            m[d] += (g[d] - m[d]) * one_b1
            v[d] = v[d] * b2f + (g[d] * g[d]) * one_b2
            p[d] += (m[d] / (np.float32(np.sqrt(v[d])) / bc2 + epsf)) * step

    @_jit
    def nb_batch(shards, shard_of, start, lengths, labels, order, lo, hi, theta, rows, u, grad):
        """Sets grad (D + 1,) to the gradient w.r.t. theta = [w; b] of the mean loss of the
        videos ``order[lo:hi]``; returns the sum of their losses (_video_step's maths).

        shards: tuple of (F_s, D) uint16 arrays (fp16 bits); shard_of, start, lengths, labels:
        (N,) int64 per video; rows (2, D), u (D,): float32 scratch."""
        dim = theta.shape[0] - 1
        w = theta[:dim]
        b = np.float64(theta[dim])
        scale = 1.0 / (hi - lo)
        grad[:] = 0.0
        loss = grad_b = 0.0
        for j in range(lo, hi):
            i = order[j]
            mx, total = _nb_video(shards[shard_of[i]], start[i], lengths[i], w, rows, u)
            y = labels[i]
            v = 2.0 * (b + mx + math.log(total)) * (-1.0 if y else 1.0)  # loss = softplus(v)
            sig = 1.0 / (1.0 + math.exp(-v)) if v >= 0 else math.exp(v) / (1.0 + math.exp(v))
            c = scale * (-2.0 if y else 2.0) * sig  # scale * dL/ds
            loss += max(v, 0.0) + math.log1p(math.exp(-abs(v)))
            grad_b += c
            coef = np.float32(c / total)  # dL/dw = c * u / total
            for d in range(dim):
                grad[d] += coef * u[d]
        grad[dim] = grad_b
        return loss

    @_jit
    def nb_train_pool(shards, shard_of, start, lengths, labels, order, bounds, theta, m, v,
                       t, lr, b1, b2, eps, rows, u, grad):
        """Adam steps on the batches ``order[bounds[k]:bounds[k + 1]]`` (video positions).

        theta (D + 1,) = [w; b] and the Adam moments m, v (D + 1,) float32 are updated in
        place; t: Adam steps taken so far; grad (D + 1,) float32 scratch; the rest as
        nb_batch. Returns (sum of the video losses, t)."""
        loss = 0.0
        for k in range(bounds.shape[0] - 1):
            loss += nb_batch(shards, shard_of, start, lengths, labels, order, bounds[k],
                              bounds[k + 1], theta, rows, u, grad)
            t += 1
            nb_adam(theta, grad, m, v, t, lr, b1, b2, eps)
        return loss, t

    @_jit
    def nb_scan(shards, shard_of, start, lengths, idx, w, lse, zflat, zoff, keep, z):
        """lse[i] = logsumexp_t z_t for the videos ``idx``; if ``keep``, their logits go to
        zflat[zoff[i]:zoff[i] + lengths[i]]. z: (T_max,) float32 scratch."""
        for j in range(idx.shape[0]):
            i = idx[j]
            n = lengths[i]
            _nb_logits(shards[shard_of[i]], start[i], n, w, z)
            if keep:
                zflat[zoff[i]:zoff[i] + n] = z[:n]
            mx = z[0]
            for tt in range(1, n):
                mx = max(mx, z[tt])
            total = 0.0
            for tt in range(n):
                total += np.float32(np.exp(z[tt] - mx))
            lse[i] = mx + math.log(total)


class CompiledSet:
    """What the compiled kernels read of a FeatureSet: its shards as (F_s, D) uint16 arrays
    (the fp16 bits; memory maps are not copied), per-video shard, first frame, length and
    label (N,) int64, and float32 scratch (:meth:`FeatureSet.flat_layout`: the kernels need
    the flat sources, not per-video views, since one Python call per video is what they
    remove)."""

    def __init__(self, fs: FeatureSet):
        self.fs = fs
        shards, shard_of, start = fs.flat_layout()
        # A tuple, not a numba.typed.List: creating the first typed list in a process compiles
        # its methods (~1-2 s, not cached). The kernels are compiled once per tuple length.
        self.shards = tuple(shard.view(np.uint16) for shard in shards)
        for a in self.shards:
            a.flags.writeable = False  # one array type for mapped and in-memory shards
        self.shard_of = np.ascontiguousarray(shard_of, np.int64)
        self.start = np.ascontiguousarray(start, np.int64)
        self.lengths = np.ascontiguousarray(fs.lengths, np.int64)
        self.labels = np.ascontiguousarray(fs.labels, np.int64)
        self.z = np.empty(int(fs.lengths.max()), np.float32)
        self.rows, self.u = np.zeros((2, fs.dim), np.float32), np.empty(fs.dim, np.float32)


if numba is None:  # the names exist but are unusable: callers check use_numba() first
    nb_adam = nb_batch = nb_train_pool = nb_scan = None
