"""Is a feature store a representation at all? The geometry of its L2-normalised frames.

The linear probe (:mod:`avdd.heads.probe`) L2-normalises every frame before scoring it, so
only a frame's *direction* reaches it. A store whose frames all point one way gives the probe
nothing but the clip's length (the log-sum-exp pooling over T frames adds log T): its rows
measure no representation. This module measures that, on a bounded, deterministic sample of
frames (a store of any size costs the same), and flags it.

Measures (``u_t = x_t / ‖x_t‖``, the probe's view of frame ``t``):

- ``mean_cosine``: mean over frames of ``cos(u_t, ū / ‖ū‖)``, the cosine to the mean
  direction: 1 when every frame points the same way, ~0 for isotropic frames.
- ``spread``: RMS distance of the ``u_t`` from their centroid, ``√(mean ‖u_t − ū‖²)``, in
  [0, 1]; the scale of what the probe can see move.
- ``effective_rank``: ``exp`` of the entropy of the normalised singular values of the centred
  ``u_t`` (Roy & Vetterli 2007): how many directions the frames vary along (1 … D).
- ``identical_fraction``: the fraction of sampled consecutive frame pairs of one video with
  cosine above :attr:`HealthThresholds.identical_cosine`.

The flag (:attr:`FeatureHealth.degenerate`) and why its thresholds are where they are: see
:class:`HealthThresholds`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from avdd.features.featureset import FeatureSet

__all__ = ["FeatureHealth", "HealthThresholds", "MAX_FRAMES", "THRESHOLDS", "feature_health",
           "frame_health", "sample_frames"]

#: Frames sampled per store: enough for stable statistics of a D ≤ 1024 representation (the
#: SVD of a 4096 × D matrix takes milliseconds), while a store of any size costs the same.
MAX_FRAMES = 4096


@dataclass(frozen=True)
class HealthThresholds:
    """When a store is flagged degenerate, and what counts as two identical frames.

    Attributes:
        max_mean_cosine: flag above this mean cosine to the mean direction. 0.9999 is an RMS
            angle of √(2·(1 − 0.9999)) ≈ 0.8° around one direction. Measured on every
            store of the tiny benchmark (scale 0.05, default init, before the fix of issue
            13): the two representations whose rows measured clip length only sat at
            1 − cos ≤ 3.3·10⁻⁵ in every store (BRAVEn-V 1.5·10⁻⁷ … 5·10⁻⁶, Auto-AVSR-VSR
            2.4 … 3.3·10⁻⁵; per-dimension spread one to ten fp16 steps), every other store
            at 1 − cos ≥ 3.3·10⁻⁴ (CLIP tiny's worst store, the closest; then 3.8·10⁻³).
            10⁻⁴ lies between the two groups, a factor of three from each: a margin, not a
            gulf, so CLIP tiny is watched in Table 1.
        min_effective_rank: flag below this many directions of variation. Under 1.5 the
            frames move along one line: the probe sees one number per frame (a brightness
            or a length cue), not a representation. The effective rank is not enough alone:
            centred, a collapsed store's residual is fp16 rounding noise, which is
            full-rank; hence the cosine test.
        identical_cosine: two consecutive frames with a cosine above this are "near
            identical" (0.9999: 0.8°, as above). Reported, not flagged: a still shot may
            legitimately repeat its features, and a per-video constant can still separate
            videos.
    """

    max_mean_cosine: float = 0.9999
    min_effective_rank: float = 1.5
    identical_cosine: float = 0.9999


#: The thresholds every page uses.
THRESHOLDS = HealthThresholds()


@dataclass(frozen=True)
class FeatureHealth:
    """The health of one set of frames (see the module docstring for each measure).

    Attributes:
        frames: frames measured (after sampling).
        dim: features per frame ``D``.
        mean_cosine, spread, effective_rank, identical_fraction: the measures (NaN for
            ``identical_fraction`` when no consecutive pair was sampled).
        degenerate: flagged by :class:`HealthThresholds`.
        reason: why it is flagged ("" when it is not).
    """

    frames: int
    dim: int
    mean_cosine: float
    spread: float
    effective_rank: float
    identical_fraction: float
    degenerate: bool
    reason: str


def unit_rows(x: np.ndarray) -> np.ndarray:
    """``(N, D)`` → ``(N, D)`` float64 rows of norm 1; an all-zero row stays zero (as the
    probe's normalisation with its epsilon leaves it)."""
    x = np.asarray(x, np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def effective_rank(centred: np.ndarray) -> float:
    """``exp(H(p))`` with ``p`` the singular values of centred unit rows ``(N, D)`` over their
    sum; 0 when every singular value is 0 (all frames equal).

    Singular values under float64 rounding of the rows (``√N · max(N, D) · eps``, the rows
    having norm ≤ 1, as ``numpy.linalg.matrix_rank``'s tolerance) count as 0: equal frames
    centred leave ~1e-16 residues that would otherwise look like many directions.
    """
    s = np.linalg.svd(centred, compute_uv=False)
    n, d = centred.shape
    s = s[s > math.sqrt(n) * max(n, d) * np.finfo(np.float64).eps]
    if len(s) == 0:
        return 0.0
    p = s / s.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


def frame_health(frames: np.ndarray, pairs: np.ndarray | None = None, *,
                 thresholds: HealthThresholds = THRESHOLDS) -> FeatureHealth:
    """Health of ``frames (N, D)`` (N ≥ 1, any float dtype), with ``pairs (P, 2, D)`` of
    consecutive frames for ``identical_fraction`` (None or P = 0: NaN)."""
    frames = np.asarray(frames)
    if frames.ndim != 2 or len(frames) == 0:
        raise ValueError(f"frames must be (N >= 1, D), got shape {frames.shape}")
    u = unit_rows(frames)
    centroid = u.mean(0)
    direction = centroid / max(np.linalg.norm(centroid), 1e-300)
    mean_cosine = float((u @ direction).mean())
    centred = u - centroid
    spread = float(np.sqrt((centred ** 2).sum(1).mean()))
    rank = effective_rank(centred)
    identical = float("nan")
    if pairs is not None and len(pairs):
        a, b = unit_rows(pairs[:, 0]), unit_rows(pairs[:, 1])
        identical = float(((a * b).sum(1) > thresholds.identical_cosine).mean())
    reasons = []
    if mean_cosine > thresholds.max_mean_cosine:
        reasons.append(f"mean cosine {mean_cosine:.5f} > {thresholds.max_mean_cosine:g}: "
                       "every frame points the same way")
    if rank < thresholds.min_effective_rank:
        reasons.append(f"effective rank {rank:.2f} < {thresholds.min_effective_rank:g}: "
                       "the frames vary along one line at most")
    return FeatureHealth(frames=len(frames), dim=frames.shape[1], mean_cosine=mean_cosine,
                         spread=spread, effective_rank=rank, identical_fraction=identical,
                         degenerate=bool(reasons), reason="; ".join(reasons))


def sample_frames(fs: FeatureSet, max_frames: int = MAX_FRAMES) -> tuple[np.ndarray, np.ndarray]:
    """A deterministic sample of a set's frames and of its consecutive pairs.

    Frames at evenly spaced positions of the concatenation of all videos (every frame when
    there are at most ``max_frames``), and for each sampled frame that has a successor in its
    video, the pair (frame, next frame).

    Returns:
        ``frames (N, D)`` float32 and ``pairs (P, 2, D)`` float32, N ≤ max_frames, P ≤ N.
    """
    lengths = np.asarray(fs.lengths, np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros((0, fs.dim), np.float32), np.zeros((0, 2, fs.dim), np.float32)
    flat = np.unique(np.linspace(0, total - 1, min(total, max_frames)).round().astype(np.int64))
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    video = np.searchsorted(starts, flat, side="right") - 1
    frames, pairs = [], []
    for v in np.unique(video):
        x = np.asarray(fs[int(v)], np.float32)
        t = flat[video == v] - starts[v]
        frames.append(x[t])
        t = t[t + 1 < len(x)]
        pairs.append(np.stack([x[t], x[t + 1]], axis=1))
    return np.concatenate(frames), np.concatenate(pairs)


def feature_health(fs: FeatureSet, *, max_frames: int = MAX_FRAMES,
                   thresholds: HealthThresholds = THRESHOLDS) -> FeatureHealth:
    """:func:`frame_health` of a :class:`FeatureSet` (a store: ``FeatureSet.open(root)``), on
    :func:`sample_frames`. Raises ValueError for a set without frames."""
    frames, pairs = sample_frames(fs, max_frames)
    if len(frames) == 0:
        raise ValueError(f"{fs!r} holds no frame: nothing to measure")
    return frame_health(frames, pairs, thresholds=thresholds)
