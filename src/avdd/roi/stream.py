"""Mouth ROIs of a long clip, with memory bounded by a window of decoded frames.

:func:`~avdd.roi.mouth.compute_rois` takes the whole clip's full-size RGB frames: a 300 s
640 x 360 clip is 5 GB. Both crop recipes need the whole clip only through its *landmarks*
(gaps are interpolated between detections, the landmarks smoothed over neighbouring frames,
and a fit failing on any frame makes every frame fall back), which are small (68 x 2 floats a
frame); every crop is then made from its own frame and its own transform. So
:func:`stream_rois` makes two passes over :func:`avdd.media.stream_video` windows:

1. **landmarks**: the recipe's landmark / keypoint source on each window
   (:meth:`~avdd.roi.landmarks.LandmarkSource.stream`: dlib frame by frame, MediaPipe with
   one tracker across windows); synthetic annotations (by frame index) and given landmarks
   need only the frame count, a decode without RGB conversion;
2. the per-frame plan from all landmarks (:func:`~avdd.roi.align.crop_plan`,
   :func:`~avdd.roi.autoavsr.autoavsr_plan`), or the decision to fall back;
3. **crops**: each window's frames warped by their part of the plan (or the fallback's centre
   crops), kept as ``(n, 96, 96)`` grey.

The functions are the recipes' own, so the crops equal ``compute_rois`` on the whole clip, bit
for bit (tested). Only the decoded window, the landmarks and the crops are in memory; the
cost is a second decode. A clip whose RGB frames fit in :data:`avdd.media.STREAM_BYTES` (64
MiB; ~4 times a window's size is in memory while it is converted to grey and warped) is read
whole instead (:func:`fits_whole`: one decode, as before).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from avdd import media
from avdd.media import MediaError, VideoHeader, count_frames, read_header, stream_video
from avdd.roi.align import (
    AlignConfig,
    CropError,
    crop_plan,
    fallback_crops,
    interpolate_landmarks,
    landmark_boxes,
    planned_crops,
)
from avdd.roi.autoavsr import (
    KEYPOINT_SOURCES,
    RECIPE,
    AutoAVSRCropConfig,
    autoavsr_crops,
    autoavsr_fallback,
    autoavsr_plan,
    get_keypoint_source,
    keypoints_of,
)
from avdd.roi.image import to_grey
from avdd.roi.landmarks import SOURCES, get_landmark_source
from avdd.roi.regions import MouthRois, Roi

__all__ = ["fits_whole", "is_long", "stream_rois", "window_frames"]

_CLIP_FPS = 25.0  # frames per second a native-rate read is sized at (the lip models' rate)

Windows = Callable[[], Iterator[np.ndarray]]


def window_frames(header: VideoHeader, budget: int | None = None) -> int:
    """Frames per window so that one window's RGB frames fit in ``budget`` bytes (default
    :data:`avdd.media.STREAM_BYTES`, read when called), at least 1."""
    return max(1, (budget or media.STREAM_BYTES) // max(1, header.frame_bytes()))


def fits_whole(header: VideoHeader, fps: float | None = 25.0, budget: int | None = None) -> bool:
    """Whether the clip's decoded RGB frames fit in ``budget`` bytes (default
    :data:`avdd.media.STREAM_BYTES`) by its header; a clip that declares no duration does
    not (it is streamed)."""
    frames = header.seconds * (fps or max(header.rate, _CLIP_FPS))
    return 0 < frames * header.frame_bytes() <= (budget or media.STREAM_BYTES)


def is_long(path: Path, fps: float | None = 25.0) -> bool:
    """Whether the clip at ``path`` is read in windows: its full-size RGB frames at ``fps``
    exceed the budget by its header (:func:`fits_whole`). An unreadable header is left to
    the whole decode, which says what is wrong with the file."""
    try:
        return not fits_whole(read_header(path), fps)
    except MediaError:
        return False


def _windows(path: Path, fps: float | None, budget: int | None, shape: list[int]) -> Windows:
    """A re-callable source of the clip's ``(n, H, W, 3)`` windows; ``shape`` holds ``[H,
    W]``: the header's, then the decoded frames'."""
    header = read_header(path)
    shape[:] = header.height, header.width
    window = window_frames(header, budget)

    def windows() -> Iterator[np.ndarray]:
        for piece in stream_video(path, window=window, fps=fps):
            shape[:] = piece.video.shape[1:3]
            yield piece.video

    return windows


def _frameless(path: Path, fps: float | None) -> Windows:
    """The clip as one window of ``(T, 0, 0, 3)`` frames (a count, no pixels), for the
    sources that do not look at pixels
    (:attr:`~avdd.roi.landmarks.LandmarkSource.reads_pixels`)."""
    return lambda: iter([np.zeros((count_frames(path, fps=fps), 0, 0, 3), np.uint8)])


def _crops(windows: Windows, crop: Callable[[np.ndarray, slice], np.ndarray]) -> np.ndarray:
    """The crop pass: ``crop(window, its frames' slice of the clip)`` over every window."""
    parts, start = [], 0
    for w in windows():
        parts.append(crop(w, slice(start, start + len(w))))
        start += len(w)
    return np.concatenate(parts)


def _given(path: Path, fps: float | None, given: np.ndarray, kind: str) -> np.ndarray:
    """Given landmarks, checked against the clip's length (a counting pass)."""
    t = count_frames(path, fps=fps)
    if len(given) != t:
        raise ValueError(f"landmarks {np.shape(given)} do not match the video's {t} frames; "
                         f"expected (T, {kind})")
    return given


def stream_rois(path: str | Path, recipe: str = "avhubert", landmarks: str = "auto",
                roi: Roi | None = None, *, fps: float | None = 25.0,
                budget: int | None = None) -> MouthRois:
    """``compute_rois(read_clip(path, fps=fps, audio=False), roi, landmarks, recipe)``, with
    one window of at most ``budget`` bytes (default :data:`avdd.media.STREAM_BYTES`) of decoded frames
    in memory (module docstring).

    ``roi.mouth`` is not consulted (the caller has no ROI yet); ``roi.landmarks`` (given 68
    points) and synthetic annotations are used as :func:`~avdd.roi.mouth.compute_rois` uses
    them.

    Raises:
        MediaError: the file cannot be decoded (as :func:`avdd.media.stream_video`).
        ValueError, ImportError: as :func:`~avdd.roi.mouth.compute_rois`.
    """
    if recipe not in ("avhubert", RECIPE):
        raise ValueError(f"unknown mouth-ROI recipe {recipe!r}; expected 'avhubert' or {RECIPE!r}")
    path = Path(path)
    shape: list[int] = []
    windows = _windows(path, fps, budget, shape)
    given = roi.landmarks if roi is not None else None
    if recipe == RECIPE:
        if given is not None:
            raw, name = _given(path, fps, np.asarray(given, np.float64), "68, 2"), "given"
        else:
            source = (get_keypoint_source(landmarks, roi) if landmarks in KEYPOINT_SOURCES
                      else get_landmark_source(landmarks, roi))
            raw = source.stream(windows if source.reads_pixels else _frameless(path, fps))
            name = source.name
        return _autoavsr(windows, raw, name, shape)
    if given is not None:
        return _avhubert(windows, _given(path, fps, given, "68, 2"), "given", shape)
    if landmarks not in SOURCES:
        raise ValueError(f"unknown landmark source {landmarks!r} for the AV-HuBERT crop; "
                         f"expected one of {SOURCES}")
    source = get_landmark_source(landmarks, roi)
    raw = source.stream(windows if source.reads_pixels else _frameless(path, fps))
    return _avhubert(windows, raw, source.name, shape)


def _avhubert(windows: Windows, landmarks: np.ndarray, source: str, shape: list[int],
              cfg: AlignConfig = AlignConfig()) -> MouthRois:
    """:func:`~avdd.roi.align.mouth_rois` from streamed landmarks."""
    raw = np.asarray(landmarks, np.float32)
    if raw.ndim != 3 or raw.shape[1:] != (68, 2):
        raise ValueError(f"landmarks {raw.shape} do not match the video; expected (T, 68, 2)")
    h, w = shape

    def fallback(reason: str, boxes: np.ndarray) -> MouthRois:
        frames = _crops(windows, lambda v, _: fallback_crops(to_grey(v), cfg))
        return MouthRois(frames, boxes, True, source, raw, reason)

    filled = interpolate_landmarks(raw)
    if filled is None:
        return fallback("no face in any frame",
                        np.tile(np.array([[0, 0, w, h]], np.float32), (len(raw), 1)))
    boxes = landmark_boxes(filled)
    try:
        plan = crop_plan(filled, cfg)
        frames = _crops(windows, lambda v, s: planned_crops(to_grey(v), plan[s], cfg))
    except (CropError, ValueError, np.linalg.LinAlgError) as err:
        if isinstance(err, MediaError):  # the file, not the fit: not a fallback
            raise
        return fallback(str(err), boxes)
    return MouthRois(frames, boxes, False, source, raw)


def _autoavsr(windows: Windows, keypoints: np.ndarray, source: str, shape: list[int],
              cfg: AutoAVSRCropConfig = AutoAVSRCropConfig()) -> MouthRois:
    """:func:`~avdd.roi.autoavsr.autoavsr_rois` from streamed keypoints (or 68 landmarks)."""
    raw = np.asarray(keypoints, np.float64)
    if raw.ndim == 3 and raw.shape[1:] == (68, 2):
        raw = keypoints_of(raw)
    if raw.ndim != 3 or raw.shape[1:] != (4, 2):
        raise ValueError(f"keypoints {raw.shape} do not match the video; expected (T, 4, 2) "
                         "or (T, 68, 2)")
    raw = raw.astype(np.float32)
    h, w = shape
    whole = np.tile(np.array([[0, 0, w, h]], np.float32), (len(raw), 1))

    def fallback(reason: str, boxes: np.ndarray) -> MouthRois:
        frames = _crops(windows, lambda v, _: autoavsr_fallback(v, cfg))
        return MouthRois(frames, boxes, True, source, raw, reason, recipe=RECIPE)

    filled = interpolate_landmarks(raw)
    if filled is None:
        return fallback("no face in any frame", whole)
    boxes = np.concatenate([filled.min(axis=1), filled.max(axis=1)], axis=1).astype(np.float32)
    try:
        plan = autoavsr_plan(filled, cfg)
        frames = _crops(windows, lambda v, s: autoavsr_crops(v, plan[s], cfg))
    except ValueError as err:
        if isinstance(err, MediaError):
            raise
        return fallback(str(err), boxes)
    return MouthRois(frames, boxes, False, source, raw, recipe=RECIPE)
