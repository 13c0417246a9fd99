"""The probe's scoring maths, in one place: every head, analysis and the scorer use it.

A video score ``s`` (a logit of the probe's two-way softmax over ``[-s, s]``) means
``P(fake) = σ(2 s)``; the loss of a video is the cross-entropy of that softmax.
"""

from __future__ import annotations

import numpy as np

NORM_EPS = 1e-12  # floor on frame norms, as torch.nn.functional.normalize (all-zero frames)


def video_losses(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(N,) cross-entropy of logits [-s, s] against labels, i.e. softplus(-2 y' s)."""
    sign = 2.0 * np.asarray(labels, np.float64) - 1.0
    return np.logaddexp(0.0, -2.0 * sign * np.asarray(scores, np.float64))
