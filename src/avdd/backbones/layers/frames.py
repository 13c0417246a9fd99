"""Frame-rate conversions and frame preprocessing shared by backbone families."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def pair_frames(x: np.ndarray) -> np.ndarray:
    """``(T50, D)`` → ``(ceil(T50 / 2), 2D)``: concatenate consecutive frames; an odd last
    frame is duplicated (the paper's Wav2Vec2 recipe)."""
    if len(x) % 2:
        x = np.concatenate([x, x[-1:]])
    return x.reshape(len(x) // 2, 2 * x.shape[1])


def shortest_edge_resize(processor: Any) -> Callable[[np.ndarray], np.ndarray] | None:
    """The resize a transformers PIL image processor begins with (CLIP's and VideoMAE's:
    shortest edge → ``size["shortest_edge"]``, aspect ratio kept, PIL filter ``resample``), as
    a map of one ``(H, W, 3)`` uint8 frame, for the decoder to apply as frames arrive
    (:attr:`avdd.backbones.Backbone.frame_resize`).

    It only ever shrinks (a frame whose shortest edge is already at most the target is
    returned as it is: the processor upscales it later, as before). The processor's output is
    unchanged bit for bit: given a frame it resized itself, its own resize computes the same
    size and PIL returns a copy (``tests/test_media.py`` checks this on both processors).

    Returns None when the processor does not begin with such a resize (then frames must be
    decoded at their own size).
    """
    size = getattr(processor, "size", None)
    if (not getattr(processor, "do_resize", False) or size is None
            or not getattr(size, "shortest_edge", None) or getattr(size, "longest_edge", None)):
        return None
    edge, resample = int(size.shortest_edge), processor.resample

    def resize(frame: np.ndarray) -> np.ndarray:
        if min(frame.shape[:2]) <= edge:
            return frame
        chw = np.ascontiguousarray(frame.transpose(2, 0, 1))  # the processor's layout
        out = processor.resize(chw, size=size, resample=resample)
        return np.ascontiguousarray(np.asarray(out).transpose(1, 2, 0))

    return resize
