"""Face and mouth regions of a clip.

The synthetic benchmark knows where its faces and mouths are (``synth_annotations.jsonl``);
real data gets them from a landmark detector (the lip-reading backbones' mouth-ROI recipe,
BACKBONES.md, in :mod:`avdd.lipread`, which can cache its result on the :class:`Roi`). Without
either, :func:`mouth_crops` falls back to the lower centre of the frame, where the mouth of a
centred single-face track usually is.

This module stays free of heavy imports (no scikit-image, no detectors): every backbone and
the extraction runner import it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True, eq=False)
class MouthRois:
    """Mouth crops of one clip.

    Attributes:
        frames: ``(T, 96, 96)`` uint8 grey mouth crops (on fallback: the centre of the
            full-resolution frame, as the recipe's upstream loader would crop it).
        face_boxes: ``(T, 4)`` float32 (x0, y0, x1, y1) pixels of the input frames: the box of
            the (interpolated) landmarks, not enlarged (x1); without any landmark, the whole
            frame (0, 0, W, H). NaN-free.
        fallback: True if the crop could not be made (no face found, or the fit failed).
        landmark_source: name of the landmark source (``"synthetic"``, ``"dlib"``, ...).
        landmarks: ``(T, K, 2)`` float32 raw landmarks the crops came from (68 points for the
            AV-HuBERT recipe, 4 keypoints for Auto-AVSR's; NaN rows where the source found no
            face), or None.
        reason: why the clip fell back ("" when it did not).
        recipe: which crop recipe made them: ``"avhubert"`` (:mod:`avdd.roi.align`, AV-HuBERT
            and BRAVEn) or ``"autoavsr"`` (:mod:`avdd.roi.autoavsr`).
    """

    frames: np.ndarray
    face_boxes: np.ndarray
    fallback: bool
    landmark_source: str
    landmarks: np.ndarray | None = None
    reason: str = field(default="")
    recipe: str = "avhubert"

    def __len__(self) -> int:
        return int(self.frames.shape[0])


@dataclass(frozen=True)
class Roi:
    """Per-frame regions in pixels of the decoded frames.

    Attributes:
        mouth_centre: ``(T, 2)`` float (x, y), or ``None`` if unknown.
        face_box: ``(T, 4)`` float (x0, y0, x1, y1), or ``None`` if unknown.
        landmarks: ``(T, 68, 2)`` float (x, y) 68-point landmarks with NaN rows for frames
            without a face, or ``None``; when given, the lip pipeline aligns on them instead of
            running a detector.
        mouth: the clip's precomputed mouth ROIs (:class:`avdd.roi.regions.MouthRois`:
            ``(T, 96, 96)`` uint8 grey crops + face boxes + provenance), or ``None``; filled by
            :meth:`avdd.roi.mouth.RoiCache.load_or_compute` and used as is by
            :func:`avdd.backbones.layers.lip_inputs.lip_inputs`.
    """

    mouth_centre: np.ndarray | None = None
    face_box: np.ndarray | None = None
    landmarks: np.ndarray | None = None
    mouth: MouthRois | None = None

    @property
    def mouth_frames(self) -> np.ndarray | None:
        """``(T, 96, 96)`` uint8 grey mouth crops of :attr:`mouth`, or ``None``."""
        return None if self.mouth is None else self.mouth.frames

    @classmethod
    def from_annotation(cls, note: dict[str, Any] | None) -> Roi | None:
        """Build from a synthetic-benchmark annotation record (``None`` if it has no regions)."""
        if not note or not note.get("mouth_centre"):
            return None
        face = note.get("face_box")
        return cls(
            mouth_centre=np.asarray(note["mouth_centre"], dtype=np.float32),
            face_box=np.asarray(face, dtype=np.float32) if face else None,
        )


def per_frame(a: np.ndarray, t: int) -> np.ndarray:
    """Stretch/trim a per-frame array to ``t`` rows (annotation and decode lengths can differ
    by a frame at clip ends)."""
    if len(a) >= t:
        return a[:t]
    return np.concatenate([a, np.repeat(a[-1:], t - len(a), axis=0)])


def window_roi(roi: Roi | None, start: int, n: int) -> Roi | None:
    """The regions of frames ``start .. start + n - 1`` of a clip (a window of it), as
    :func:`per_frame` would stretch them to the whole clip: row i is the annotation's row
    ``min(i, len - 1)``. Per-frame landmarks and a clip's mouth ROI are not sliced (the
    lip models never read windows): None for them."""
    if roi is None:
        return None

    def rows(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else per_frame(np.asarray(a), start + n)[start:]

    return Roi(mouth_centre=rows(roi.mouth_centre), face_box=rows(roi.face_box))


def mouth_side(roi: Roi | None, frames: int | Callable[[], int], width: int, *,
               grid: int = 12, rel_size: float = 0.6) -> int:
    """Pixels per grid cell ``k`` of a clip's mouth crops (their side is ``k * grid``): the
    median face-box width over the clip's frames (the boxes stretched or trimmed to
    ``frames`` rows, :func:`per_frame`) times ``rel_size``, or 35 % of the frame ``width``
    without a face box (or without a mouth centre). One side for every frame of a clip,
    known from its regions and length alone: a clip read in windows needs no pixel for it.

    ``frames``: the clip's frame count, or a function giving it (called only when a face box
    needs it: a count may cost a decode, :func:`avdd.media.count_frames`)."""
    if roi is not None and roi.mouth_centre is not None and roi.face_box is not None:
        boxes = per_frame(roi.face_box, frames() if callable(frames) else frames)
        side = float(np.median(boxes[:, 2] - boxes[:, 0])) * rel_size
    else:
        side = 0.35 * width
    # A side that is a multiple of the grid lets area averaging be a reshape-mean.
    return max(1, int(round(side / grid)))


def mouth_crops(video: np.ndarray, roi: Roi | None, *, grid: int = 12,
                rel_size: float = 0.6, k: int | None = None) -> np.ndarray:
    """Square crops around the mouth, area-averaged to a ``grid × grid`` image.

    Args:
        video: ``(T, H, W, 3)`` uint8 frames.
        roi: regions of these frames (row i for frame i, stretched or trimmed to T by
            :func:`per_frame`); ``None`` (or no mouth centre) uses the fallback box (centre x,
            70 % height, 35 % of the width).
        grid: output side in pixels.
        rel_size: crop side as a fraction of the face-box width (when the box is known).
        k: pixels per grid cell (:func:`mouth_side`); None: that of these frames and
            ``roi``. A window of a longer clip passes the whole clip's (and
            :func:`window_roi`'s rows): its crops are then those of the whole clip.
    Returns:
        ``(T, grid, grid, 3)`` float32 in [0, 1]. A crop reaching past the frame's edge
        repeats the edge pixels (as ``np.pad(mode="edge")`` would, without padding a copy
        of the video: 3.8 times its size at 640 × 360).
    """
    t, h, w, _ = video.shape
    if roi is not None and roi.mouth_centre is not None:
        centres = per_frame(roi.mouth_centre, t)
    else:
        centres = np.tile(np.array([[w / 2, 0.7 * h]], dtype=np.float32), (t, 1))
    k = mouth_side(roi, t, w, grid=grid, rel_size=rel_size) if k is None else k
    s = k * grid
    # The top-left corner as on a video padded by s on every side (its range clipped to the
    # padded frame), then each row and column index clamped to the frame: the edge pixel.
    x0 = np.clip(np.round(centres[:, 0] - s / 2).astype(int), -s, w)
    y0 = np.clip(np.round(centres[:, 1] - s / 2).astype(int), -s, h)
    cells = np.arange(s)
    crops = np.stack([video[i][np.clip(y0[i] + cells, 0, h - 1)[:, None],
                               np.clip(x0[i] + cells, 0, w - 1)[None, :]] for i in range(t)])
    crops = crops.reshape(t, grid, k, grid, k, 3).mean(axis=(2, 4), dtype=np.float32)
    return crops / 255.0
