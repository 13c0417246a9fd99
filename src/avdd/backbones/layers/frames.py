"""Frame-rate conversions shared by backbone families."""

from __future__ import annotations

import numpy as np


def pair_frames(x: np.ndarray) -> np.ndarray:
    """``(T50, D)`` → ``(ceil(T50 / 2), 2D)``: concatenate consecutive frames; an odd last
    frame is duplicated (the paper's Wav2Vec2 recipe)."""
    if len(x) % 2:
        x = np.concatenate([x, x[-1:]])
    return x.reshape(len(x) // 2, 2 * x.shape[1])
