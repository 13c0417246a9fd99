"""2-D similarity transforms for every frame of a clip at once, as scikit-image computes them.

The AV-HuBERT crop (:mod:`avdd.roi.align`) fits one similarity per frame with
``skimage.transform.estimate_transform("similarity", src, dst)`` (Umeyama's least squares with
scale) and maps the mouth landmarks with it. Called per frame, skimage's ~25 small NumPy calls
cost ~0.3 ms each time, most of the crop's time once the warp is compiled. Here the same
operations run on ``(T, ...)`` stacks: the same NumPy/LAPACK routines per frame, in the same
order (``_umeyama`` of skimage 0.26 and ``_apply_homogeneous``), so the results are the same
floats (tested against skimage on random points; bit for bit on every frame of 50 demo
clips). Only the full-rank case is batched: a frame whose points are (nearly) collinear or
coincident makes :func:`similarities` return None, and the caller falls back to skimage.
"""

from __future__ import annotations

import numpy as np

__all__ = ["similarities", "apply_similarities"]


def similarities(src: np.ndarray, dst: np.ndarray) -> np.ndarray | None:
    """Least-squares similarity (rotation, uniform scale, translation) per frame.

    Args:
        src: ``(T, N, 2)`` float64 points of each frame.
        dst: ``(N, 2)`` float64 target points, shared by all frames.
        (Other dtypes are not converted first, as skimage does not.)
    Returns:
        ``(T, 3, 3)`` float64 homogeneous matrices mapping ``src[t]`` onto ``dst`` (those of
        skimage's ``SimilarityTransform``), or None when some frame's cross-covariance is not
        of full rank.
    """
    src, dst = np.asarray(src), np.asarray(dst)  # no conversion, as skimage
    t, num, dim = src.shape
    src_mean = src.mean(axis=1)
    dst_mean = dst.mean(axis=0)
    src_demean = src - src_mean[:, None]
    dst_demean = dst - dst_mean
    cov = dst_demean.T @ src_demean / num  # (T, 2, 2), Umeyama's eq. (38)
    d = np.ones((t, dim))
    d[np.linalg.det(cov) < 0, dim - 1] = -1  # eq. (39): no reflection
    u, s, v = np.linalg.svd(cov)
    tol = s.max(axis=1) * max(cov.shape[1:]) * np.finfo(float).eps  # skimage's rank test
    if (np.count_nonzero(s > tol[:, None], axis=1) != dim).any():
        return None
    rot = u @ (d[:, :, None] * np.eye(dim)) @ v  # U @ diag(d) @ V, eq. (40)
    scale = 1.0 / src_demean.var(axis=1).sum(axis=1) * np.einsum("ti,ti->t", s, d)  # (41-42)
    out = np.tile(np.eye(dim + 1), (t, 1, 1))
    out[:, :dim, :dim] = rot
    out[:, :dim, dim] = dst_mean - scale[:, None] * (rot @ src_mean[:, :, None])[:, :, 0]
    out[:, :dim, :dim] *= scale[:, None, None]
    return out


def apply_similarities(matrices: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``(T, 3, 3)`` homogeneous matrices applied to ``(T, N, 2)`` points -> ``(T, N, 2)``
    float64, as skimage's transform call (a last homogeneous coordinate of exactly 0 is
    replaced by machine epsilon before dividing)."""
    points = np.asarray(points, np.float64)
    homogeneous = np.concatenate([points, np.ones(points.shape[:2] + (1,))], axis=2)
    mapped = homogeneous @ np.asarray(matrices, np.float64).transpose(0, 2, 1)
    divs = mapped[:, :, -1]
    divs = np.where(divs == 0, np.finfo(float).eps, divs)
    return mapped[:, :, :-1] / divs[:, :, None]
