"""The probe's scoring maths, in one place: every head, analysis and the scorer use it.

A video score ``s`` is the logit of the probe's two-way softmax over ``[-s, s]``, so

    P(fake) = softmax([-s, s])[1] = σ(2 s),   loss(s, y) = CE([-s, s], y) = softplus(-2 y' s),

with ``y' = 2 y - 1``. Frames are L2-normalised with norms floored at :data:`NORM_EPS`.

The compiled kernels (:mod:`avdd.heads.probe_kernels`) and the probe's fused NumPy step
(``avdd.heads.probe``) restate the loss inside their per-video loops, where a call per video
is what they exist to avoid; tests pin both to :func:`video_losses`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["NORM_EPS", "probability", "video_losses"]

NORM_EPS = 1e-12  # floor on frame norms, as torch.nn.functional.normalize (all-zero frames)


def probability(scores):
    """P(fake) = σ(2 s) of video or frame scores (a float, a NumPy array or a torch tensor),
    computed as ``(1 + tanh s) / 2``, which cannot overflow."""
    try:
        import torch

        if isinstance(scores, torch.Tensor):
            return 0.5 * (1.0 + torch.tanh(scores))
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    p = 0.5 * (1.0 + np.tanh(np.asarray(scores, np.float64)))
    return float(p) if np.ndim(p) == 0 else p


def video_losses(scores, labels):
    """(N,) cross-entropy of logits ``[-s, s]`` against 0/1 labels, softplus(-2 y' s).

    NumPy in, float64 NumPy out; a torch tensor in gives a differentiable torch tensor (the
    Transformer head trains on it)."""
    try:
        import torch

        if isinstance(scores, torch.Tensor):
            return torch.nn.functional.softplus(-2.0 * (2.0 * labels - 1.0) * scores)
    except ImportError:  # pragma: no cover
        pass
    sign = 2.0 * np.asarray(labels, np.float64) - 1.0
    return np.logaddexp(0.0, -2.0 * sign * np.asarray(scores, np.float64))
