"""Small image helpers shared by the landmark sources and the mouth-ROI recipes.

Grey conversion reproduces OpenCV's ``COLOR_RGB2GRAY`` on uint8 (the conversion every upstream
lip pipeline uses: dlib detection and AV-HuBERT's video loader) without importing OpenCV.
"""

from __future__ import annotations

import numpy as np

# OpenCV's fixed-point BT.601 luma weights for 8-bit images (coefficients scaled by 2**14,
# rounded): Y = (4899 R + 9617 G + 1868 B + 2**13) >> 14. Same integers => same grey levels.
_GREY_WEIGHTS = np.array([4899, 9617, 1868], dtype=np.uint32)
_GREY_SHIFT = 14


def rgb_video(video) -> np.ndarray:
    """``video`` as a non-empty ``(T, H, W, 3)`` uint8 RGB array, or a ValueError saying what
    it is instead."""
    video = np.asarray(video)
    if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8 or len(video) == 0:
        raise ValueError(f"expected a non-empty (T, H, W, 3) uint8 RGB video, got {video.dtype} "
                         f"{video.shape}")
    return video


def to_grey(rgb: np.ndarray) -> np.ndarray:
    """RGB uint8 ``(..., H, W, 3)`` -> grey uint8 ``(..., H, W)``, bit-exact with
    ``cv2.cvtColor(x, cv2.COLOR_RGB2GRAY)``."""
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.shape[-1] != 3:
        raise ValueError(f"expected (..., H, W, 3) uint8 RGB frames, got {rgb.dtype} {rgb.shape}")
    # One widening multiply per channel, accumulated in place: ~2x faster than a uint32
    # matmul (NumPy has no BLAS for integers), the same integers.
    acc = np.multiply(rgb[..., 0], _GREY_WEIGHTS[0], dtype=np.uint32)
    acc += np.multiply(rgb[..., 1], _GREY_WEIGHTS[1], dtype=np.uint32)
    acc += np.multiply(rgb[..., 2], _GREY_WEIGHTS[2], dtype=np.uint32)
    acc += 1 << (_GREY_SHIFT - 1)
    acc >>= _GREY_SHIFT
    return acc.astype(np.uint8)
