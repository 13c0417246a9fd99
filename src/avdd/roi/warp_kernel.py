"""The AV-HuBERT crop's warp, compiled (numba): scikit-image's bilinear ``warp`` on the crop only.

:func:`~avdd.roi.align.mouth_rois` warps each grey frame with ``skimage.transform.warp`` (order
1, constant 0 border) and keeps a 96 x 96 crop. skimage evaluates every output pixel up to the
crop's far corner (~half the 256 x 256 frame) with Python-level overhead per frame: ~1 ms per
frame, most of the recipe's time. This kernel evaluates the crop's pixels only, all frames in
one call, with skimage's arithmetic in skimage's order (``_warp_fast`` and
``bilinear_interpolation`` in float64, then ``_clip_warp_output``'s clip and the recipe's
truncation to uint8), so the crops are bit-identical (tests compare it with skimage on random
transforms, frames partly outside the image and frames without black pixels).

Why a loop and not NumPy: vectorised over ``(T, 96, 96)`` the same float64 arithmetic needs
~40 passes over 6 MB arrays and measured slower than skimage itself; OpenCV's ``warpAffine``
quantises sample positions to 1/32 px and weights to fixed point (several grey levels apart).

Kept apart from :mod:`avdd.roi.align` because numba's on-disk cache (``cache=True``) is keyed by
the source file. Strict IEEE float64 (``fastmath=False``: no FMA contraction, which would
change the last bit of a sample position and, through the truncation, a grey level).
"""

from __future__ import annotations

import numpy as np

try:
    import numba
except ImportError:  # numba is a dependency; without it align.py warps with skimage per frame
    numba = None

__all__ = ["COMPILED", "warp_crops"]

#: Whether :func:`warp_crops` can run (numba importable).
COMPILED = numba is not None

if numba is not None:

    @numba.njit(cache=True, nogil=True, fastmath=False)
    def _frame_range(frame):
        lo, hi = 255, 0
        for y in range(frame.shape[0]):
            for x in range(frame.shape[1]):
                v = int(frame[y, x])
                lo, hi = min(lo, v), max(hi, v)
        return lo, hi

    @numba.njit(cache=True, nogil=True, fastmath=False)
    def _region_leaves_image(m, x1, y1, rows, cols):
        """Whether any output pixel of [0, x1] x [0, y1] samples wholly outside the image
        (its value is then the border's 0). The computed coordinate is monotone in x and in y
        (each rounding step is), so its extremes over the grid lie at the corners."""
        for x in (0.0, x1):
            for y in (0.0, y1):
                c = m[0, 0] * x + m[0, 1] * y + m[0, 2]
                r = m[1, 0] * x + m[1, 1] * y + m[1, 2]
                if r <= -1.0 or r >= rows or c <= -1.0 or c >= cols:
                    return True
        return False

    @numba.njit(cache=True, nogil=True, fastmath=False)
    def _warp_crops(padded, lut, inverse, origins, crop, out):
        """``padded``: the frames with a 2-px border of 0 (``lut[0]`` is 0.0, skimage's cval):
        every neighbour is then read without a test, which keeps the loop ~5x faster."""
        rows, cols = padded.shape[1] - 4, padded.shape[2] - 4
        for f in range(padded.shape[0]):
            x0, y0 = origins[f, 0], origins[f, 1]
            lo, hi = _frame_range(padded[f, 2:-2, 2:-2])
            vmin, vmax = lut[lo], lut[hi]
            # _clip_warp_output clips to the input's range, widened to cval 0 when the input
            # has no 0 but the warped output (here: up to the crop's far corner) does.
            if vmin > 0.0 and _region_leaves_image(inverse[f], float(x0 + crop - 1),
                                                   float(y0 + crop - 1), rows, cols):
                vmin = 0.0
            a, b, e = inverse[f, 0, 0], inverse[f, 0, 1], inverse[f, 0, 2]  # c = a x + b y + e
            p, q, s = inverse[f, 1, 0], inverse[f, 1, 1], inverse[f, 1, 2]  # r = p x + q y + s
            for i in range(crop):
                y = float(y0 + i)
                for j in range(crop):
                    x = float(x0 + j)
                    c = a * x + b * y + e
                    r = p * x + q * y + s
                    fr, fc = np.floor(r), np.floor(c)
                    dr, dc = r - fr, c - fc
                    # Clamped into the border: a neighbour outside the frame reads a 0 there.
                    ir = int(min(max(fr, -2.0), rows)) + 2
                    ic = int(min(max(fc, -2.0), cols)) + 2
                    # skimage reads ceil(r) / ceil(c): the same pixel when dr / dc is 0, and
                    # then its weight is 0, so the pixel one further gives the same sum.
                    top = (1 - dc) * lut[padded[f, ir, ic]] + dc * lut[padded[f, ir, ic + 1]]
                    bottom = ((1 - dc) * lut[padded[f, ir + 1, ic]]
                              + dc * lut[padded[f, ir + 1, ic + 1]])
                    v = min(max((1 - dr) * top + dr * bottom, vmin), vmax)
                    out[f, i, j] = np.uint8(v * 255)  # truncation, as upstream's astype
        return out


def warp_crops(grey: np.ndarray, lut: np.ndarray, inverse: np.ndarray, origins: np.ndarray,
               crop: int) -> np.ndarray:
    """Crops of ``(warp(grey[f], inverse[f]) * 255).astype(uint8)`` for every frame ``f``.

    Args:
        grey: ``(T, H, W)`` uint8 frames.
        lut: ``(256,)`` float64: the value skimage's warp reads for each grey level
            (``img_as_float``).
        inverse: ``(T, 2, 3)`` float64: the top rows of the inverse (output -> input) affine
            matrices, as ``warp`` receives them (their third rows must be ``[0, 0, 1]``).
        origins: ``(T, 2)`` int: each crop's top-left (x0, y0) in the warped frame.
        crop: side of the crops (px).
    Returns:
        ``(T, crop, crop)`` uint8.
    """
    if not COMPILED:
        raise ImportError("warp_crops needs numba (a dependency of avdd): pip install numba")
    out = np.empty((len(grey), crop, crop), np.uint8)
    padded = np.pad(np.asarray(grey, np.uint8), ((0, 0), (2, 2), (2, 2)))
    return _warp_crops(padded, np.ascontiguousarray(lut, np.float64),
                       np.ascontiguousarray(inverse, np.float64),
                       np.ascontiguousarray(origins, np.int64), int(crop), out)
