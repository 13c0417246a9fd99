"""Mouth regions of interest for Auto-AVSR: the preprocessing behind the paper's Auto-AVSR rows.

The paper's Auto-AVSR features (``danoneata/veridiq``, ``feature_extractors_dirty/fe_VSR``: a
copy of the mediapipe pipeline of *Visual Speech Recognition for Multiple Languages* with local
edits; read, not copied) do not use the AV-HuBERT crop of :mod:`avdd.roi.align`. Per clip:

1. **keypoints**: MediaPipe FaceDetection (BlazeFace) on every frame, 4 of its keypoints (right
   eye, left eye, nose tip, mouth centre) at ``int(x * W), int(y * H)`` (truncation); the
   full-range model first, the short-range one only if the first found no face in any frame.
   Upstream hands the detector R/B-swapped frames (it converts BGR->RGB frames that already
   are RGB), and of several faces keeps the last one unless that one's odd "size" (right
   minus left plus bottom minus top, of a box whose right/bottom are widths/heights) is not
   positive, then the first: both reproduced (:class:`MediaPipeFaceKeypoints`);
2. frames without a face are filled by linear interpolation, the ends copy the nearest
   detection (as AV-HuBERT's recipe);
3. **smoothing**: a *centred* window of ``min(6, t, T - 1 - t)`` frames on each side, then
   shifted so its mean equals frame t's own keypoint mean (:func:`smooth_keypoints`);
4. **alignment**: ``cv2.estimateAffinePartial2D(method=LMEDS)`` from the smoothed keypoints to
   the mean face's group means (eyes 36-41 and 42-47, nose 31-35, mouth 48-67), and
   ``cv2.warpAffine`` of the **colour** frame (bilinear, zero border) to 256 x 256;
5. **crop**: 96 x 96 around the transformed (smoothed) mouth keypoint; when that keypoint lies
   more than 48 + 5 px from the aligned frame's centre along either axis, the whole aligned
   frame is ``cv2.resize``d to 96 x 96 instead, frame by frame (upstream's edit; its
   ``np.clip`` of the crop bounds can then never act, so every crop is 96 x 96);
6. grey (OpenCV ``RGB2GRAY``) of the colour crop, as the feature extractor reads the saved
   crop video;
7. **no face** in any frame with either model: upstream's preprocessing fails, the original
   video stands in for the crop, and the extractor's loader passes its frames unaltered in
   grey through torchvision's ``CenterCrop(88)`` (offset ``round((W - 88) / 2)``, half to
   even): kept as the 96 x 96 crop 4 px further out, so that
   :func:`~avdd.backbones.layers.lip_inputs.video_input` lands on the same 88 x 88 pixels.

Known differences, documented: the crop is not written to an mp4 and read back (upstream
re-encodes it with libx264 before grey conversion); upstream's extractor runs the face
detector *again* on the crop video and would re-align it if BlazeFace found a face in a mouth
crop (assumed not: then its frames pass unaltered, as here); a degenerate transform (LMEDS
finds none) falls back as in step 7 (upstream's preprocessing fails there too and its
extractor re-runs the whole recipe in grey on the original video); frames are decoded with
PyAV instead of ``torchvision.io.read_video`` (the same FFmpeg decoders).

Keypoint sources: :class:`MediaPipeFaceKeypoints` (the official detector; ``pip install
"avdd[mediapipe]"``, which also brings OpenCV), :class:`SyntheticKeypoints` (the synthetic
benchmark's annotations, via the 68-point template), or 68 given landmarks reduced to the same
four group means. The recipe itself needs OpenCV (``cv2``) for the LMEDS fit and the warp.

Why one module: the keypoint sources, the per-frame plan (steps 2-5, from keypoints alone, so
that a long clip can be cropped a window at a time, :mod:`avdd.roi.stream`) and the crops are
one upstream recipe whose numbered steps and constants this docstring describes together.
"""

from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from avdd.roi.align import centre_crops, interpolate_landmarks
from avdd.roi.image import rgb_video, to_grey
from avdd.roi.landmarks import (
    MEAN_FACE_SIZE,
    MEDIAPIPE_EXTRA,
    SyntheticLandmarks,
    mean_face,
)
from avdd.roi.regions import MouthRois, Roi

__all__ = ["AutoAVSRCropConfig", "KeypointSource", "SyntheticKeypoints", "MediaPipeFaceKeypoints",
           "KEYPOINT_SOURCES", "RECIPE", "autoavsr_rois", "get_keypoint_source", "keypoints_of",
           "reference_keypoints", "smooth_keypoints", "fallback_offset", "AffinePlan",
           "autoavsr_plan", "autoavsr_crops", "autoavsr_fallback"]

RECIPE = "autoavsr"  # MouthRois.recipe of these crops (AV-HuBERT's: "avhubert")
#: The 68-point groups whose means are the 4 keypoints, in BlazeFace's keypoint order.
GROUPS: tuple[tuple[int, int], ...] = ((36, 42), (42, 48), (31, 36), (48, 68))
MOUTH_KEYPOINT = 3
KEYPOINT_SOURCES = ("auto", "synthetic", "mediapipe-face")


@dataclass(frozen=True)
class AutoAVSRCropConfig:
    """The recipe's constants (upstream ``VideoProcess`` defaults).

    Attributes:
        window: smoothing window; frame t averages ``window // 2`` frames on each side.
        std_size: side of the aligned frame (px).
        crop: side of the mouth crop (px).
        threshold: extra px beyond ``crop / 2`` the mouth keypoint may lie from the aligned
            frame's centre before the whole aligned frame is resized instead.
        loader_crop: the feature extractor's centre crop (torchvision ``CenterCrop(88)``),
            which places the no-face fallback.
    """

    window: int = 12
    std_size: int = MEAN_FACE_SIZE
    crop: int = 96
    threshold: int = 5
    loader_crop: int = 88


def _cv2():
    try:
        import cv2
    except ImportError as err:
        raise ImportError(f"the Auto-AVSR mouth crop needs OpenCV (cv2): {MEDIAPIPE_EXTRA} "
                          "installs it with the official face detector") from err
    return cv2


def keypoints_of(landmarks: np.ndarray) -> np.ndarray:
    """``(T, 68, 2)`` landmarks -> ``(T, 4, 2)`` float64 keypoints: the group means of
    :data:`GROUPS` (NaN rows stay NaN)."""
    lms = np.asarray(landmarks, np.float64)
    return np.stack([lms[:, a:b].mean(axis=1) for a, b in GROUPS], axis=1)


def reference_keypoints() -> np.ndarray:
    """The alignment target ``(4, 2)`` float64: the mean face's group means (256 x 256)."""
    return keypoints_of(mean_face()[None])[0]


# -- keypoint sources ---------------------------------------------------------------------------
class KeypointSource(ABC):
    """Maps frames to Auto-AVSR's 4 keypoints per frame.

    Class attributes:
        name: registry name, recorded with the ROIs it produced.
        reads_pixels: False for a source that needs only the number of frames.
    """

    name: ClassVar[str]
    reads_pixels: ClassVar[bool] = True

    @abstractmethod
    def config(self) -> dict[str, Any]:
        """Everything that changes the keypoints (part of the ROI cache key)."""

    @abstractmethod
    def __call__(self, video: np.ndarray) -> np.ndarray:
        """``(T, H, W, 3)`` uint8 RGB -> ``(T, 4, 2)`` float32 (x, y) pixels, NaN rows where
        no face was found."""

    def stream(self, windows: Callable[[], Iterable[np.ndarray]]) -> np.ndarray:
        """The keypoints of a clip given as consecutive windows of frames (``windows()``
        yields them in order; it may be called more than once): exactly ``self(all
        frames)``, one window in memory at a time."""
        parts = [self(w) for w in windows()]
        return np.concatenate(parts) if parts else np.zeros((0, 4, 2), np.float32)


class SyntheticKeypoints(KeypointSource):
    """The synthetic benchmark's annotations (face box, mouth centre) through the 68-point
    template (:func:`~avdd.roi.landmarks.template_landmarks`), reduced to the 4 group means."""

    name = "synthetic"
    reads_pixels = False

    def __init__(self, roi: Roi):
        if roi is None or roi.mouth_centre is None or roi.face_box is None:
            raise ValueError("SyntheticKeypoints needs a Roi with both mouth_centre and face_box "
                             "(a synthetic-benchmark annotation); use landmarks='mediapipe-face' "
                             "for other clips")
        self.roi = roi

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "template": "20words_mean_face", "groups": list(GROUPS)}

    def __call__(self, video: np.ndarray) -> np.ndarray:
        return keypoints_of(SyntheticLandmarks(self.roi).rows(0, len(video))).astype(np.float32)

    def stream(self, windows: Callable[[], Iterable[np.ndarray]]) -> np.ndarray:
        return keypoints_of(SyntheticLandmarks(self.roi).stream(windows)).astype(np.float32)


class MediaPipeFaceKeypoints(KeypointSource):
    """MediaPipe FaceDetection (legacy solution, one independent detection per frame) as the
    paper's Auto-AVSR preprocessing ran it (module docstring, step 1).

    Args:
        min_detection_confidence: detector threshold (0.5 upstream).
        swap_rb: hand the detector R/B-swapped frames, as upstream does (True).
    """

    name = "mediapipe-face"

    def __init__(self, *, min_detection_confidence: float = 0.5, swap_rb: bool = True):
        self.min_detection_confidence = float(min_detection_confidence)
        self.swap_rb = bool(swap_rb)
        self._module()  # fail now if mediapipe is missing

    @staticmethod
    def _module():
        try:
            from mediapipe.python.solutions import face_detection
        except ImportError as err:
            raise ImportError("Auto-AVSR's mouth crop uses MediaPipe FaceDetection, which is not "
                              f"installed: {MEDIAPIPE_EXTRA}") from err
        return face_detection

    def config(self) -> dict[str, Any]:
        import mediapipe

        return {"name": self.name, "mediapipe": mediapipe.__version__, "models": ["full", "short"],
                "min_detection_confidence": self.min_detection_confidence,
                "swap_rb": self.swap_rb, "face": "last-if-positive-size-else-first"}

    def _detect(self, windows: Callable[[], Iterable[np.ndarray]], model_selection: int
                ) -> np.ndarray:
        fd = self._module()
        parts = []
        with fd.FaceDetection(min_detection_confidence=self.min_detection_confidence,
                              model_selection=model_selection) as detector:
            for video in windows():
                parts.append(self._detect_window(detector, np.asarray(video)))
        return np.concatenate(parts) if parts else np.zeros((0, 4, 2), np.float32)

    def _detect_window(self, detector, video: np.ndarray) -> np.ndarray:
        t, h, w, _ = video.shape
        out = np.full((t, 4, 2), np.nan, np.float32)
        for i, frame in enumerate(video):
            image = np.ascontiguousarray(frame[..., ::-1] if self.swap_rb else frame)
            found = detector.process(image).detections
            if not found:
                continue
            chosen = 0
            for idx, det in enumerate(found):
                # Upstream resets its running maximum inside the loop: the last face wins
                # when its (odd) size is positive, else the first.
                b = det.location_data.relative_bounding_box
                size = (int(b.width * w) - int(b.xmin * w)) + (int(b.height * h) - int(b.ymin * h))
                chosen = idx if size > 0 else 0
            kps = found[chosen].location_data.relative_keypoints
            out[i] = [(int(kps[k].x * w), int(kps[k].y * h)) for k in range(4)]
        return out

    def __call__(self, video: np.ndarray) -> np.ndarray:
        return self.stream(lambda: [video])

    def stream(self, windows: Callable[[], Iterable[np.ndarray]]) -> np.ndarray:
        full = self._detect(windows, 1)  # full-range model first
        if not np.isnan(full).all():
            return full
        return self._detect(windows, 0)  # short-range only when the full range found nothing


def get_keypoint_source(name: str = "auto", roi: Roi | None = None) -> KeypointSource:
    """A keypoint source by name: ``"synthetic"``, ``"mediapipe-face"``, or ``"auto"``
    (synthetic when ``roi`` carries annotations, else MediaPipe FaceDetection; never another
    detector).

    Raises:
        ValueError: unknown name, or ``"synthetic"`` without annotations.
        ImportError: mediapipe is not installed (the message says how to install it).
    """
    if name not in KEYPOINT_SOURCES:
        raise ValueError(f"unknown Auto-AVSR keypoint source {name!r}; expected one of "
                         f"{KEYPOINT_SOURCES}")
    annotated = roi is not None and roi.mouth_centre is not None and roi.face_box is not None
    if name == "synthetic" or (name == "auto" and annotated):
        return SyntheticKeypoints(roi)
    if name == "auto" and importlib.util.find_spec("mediapipe") is None:
        raise ImportError("landmarks='auto' for Auto-AVSR on a clip without synthetic annotations "
                          f"uses MediaPipe FaceDetection, the official detector: {MEDIAPIPE_EXTRA}")
    return MediaPipeFaceKeypoints()


# -- the recipe ---------------------------------------------------------------------------------
def smooth_keypoints(keypoints: np.ndarray, window: int = 12) -> np.ndarray:
    """Centred smoothing of ``(T, K, 2)`` NaN-free keypoints: frame t = the mean of frames
    ``t - m .. t + m`` with ``m = min(window // 2, t, T - 1 - t)``, shifted so that its mean
    over the K points equals frame t's own. Returns float64 ``(T, K, 2)``."""
    kps = np.asarray(keypoints, np.float64)
    n = len(kps)
    csum = np.concatenate([np.zeros((1,) + kps.shape[1:]), np.cumsum(kps, axis=0)])
    t = np.arange(n)
    m = np.minimum(np.minimum(window // 2, t), n - 1 - t)  # half-width per frame
    mean = (csum[t + m + 1] - csum[t - m]) / (2 * m + 1)[:, None, None]
    return mean + (kps.mean(axis=1) - mean.mean(axis=1))[:, None, :]


def fallback_offset(size: int, cfg: AutoAVSRCropConfig = AutoAVSRCropConfig()) -> int:
    """Where the no-face fallback's 96-px crop starts along a side of ``size`` px: torchvision's
    ``CenterCrop(88)`` offset ``round((size - 88) / 2)`` (half to even; a side shorter than 88
    is zero-padded by ``(88 - size) // 2`` first), minus the 4 px that
    :func:`~avdd.backbones.layers.lip_inputs.video_input` crops again."""
    c = cfg.loader_crop
    start = int(round((size - c) / 2.0)) if size >= c else -((c - size) // 2)
    return start - (cfg.crop - c) // 2


def _crop_box(centre: np.ndarray, cfg: AutoAVSRCropConfig) -> tuple[int, int, int, int] | None:
    """Upstream ``cut_patch``'s bounds (x0, y0, x1, y1) of the 96 x 96 crop around ``centre`` in
    the aligned frame, or None when the centre is more than ``crop / 2 + threshold`` px from
    its middle (the whole frame is then resized instead)."""
    half, size = cfg.crop // 2, cfg.std_size
    cx, cy = float(centre[0]), float(centre[1])
    if abs(cy - size / 2) > half + cfg.threshold or abs(cx - size / 2) > half + cfg.threshold:
        return None
    # np.clip then round (half to even), as upstream; Python's min/max give the same floats.
    x0, x1 = (int(round(min(max(v, 0.0), size))) for v in (cx - half, cx + half))
    y0, y1 = (int(round(min(max(v, 0.0), size))) for v in (cy - half, cy + half))
    return x0, y0, x1, y1


@dataclass(frozen=True, eq=False)
class AffinePlan:
    """Steps 3-5 of every frame, from keypoints only (no pixels).

    Attributes:
        matrices: ``(T, 2, 3)`` float64 LMEDS partial affine maps into the 256 x 256 frame.
        boxes: ``(T, 4)`` int64 (x0, y0, x1, y1) of each crop in the aligned frame; a row of
            ``-1`` where the whole aligned frame is resized instead (step 5).
    """

    matrices: np.ndarray
    boxes: np.ndarray

    def __getitem__(self, frames: slice) -> AffinePlan:
        """The plan of a run of frames (a decoded window of the clip)."""
        return AffinePlan(self.matrices[frames], self.boxes[frames])


def autoavsr_plan(kps: np.ndarray, cfg: AutoAVSRCropConfig = AutoAVSRCropConfig()) -> AffinePlan:
    """Steps 3-5 on ``(T, 4, 2)`` NaN-free keypoints; ValueError on a failed fit. LMEDS's
    sampling is seeded per call, so fitting all frames first gives the same maps as fitting
    each just before its warp."""
    cv2 = _cv2()
    target = reference_keypoints()
    smoothed = smooth_keypoints(kps, cfg.window)
    matrices = np.empty((len(kps), 2, 3), np.float64)
    boxes = np.full((len(kps), 4), -1, np.int64)
    for i in range(len(kps)):
        matrix = cv2.estimateAffinePartial2D(smoothed[i], target, method=cv2.LMEDS)[0]
        if matrix is None or not np.isfinite(matrix).all():
            raise ValueError(f"frame {i}: no partial affine transform fits the keypoints")
        mouth = smoothed[i] @ matrix[:, :2].T + matrix[:, 2]
        box = _crop_box(mouth[MOUTH_KEYPOINT], cfg)
        matrices[i] = matrix
        if box is not None:
            boxes[i] = box
    return AffinePlan(matrices, boxes)


def autoavsr_crops(video: np.ndarray, plan: AffinePlan,
                   cfg: AutoAVSRCropConfig = AutoAVSRCropConfig()) -> np.ndarray:
    """Step 5-6: ``(T, H, W, 3)`` uint8 RGB frames and their plan -> ``(T, 96, 96)`` grey.
    Each frame's crop depends on that frame and its plan only (a clip may be cropped a window
    at a time).

    A crop warps the aligned frame only up to its far corner: OpenCV computes each output
    pixel from its own position (the output size does not enter), so the pixels are those of
    the full 256 x 256 warp (tested), at ~half the cost."""
    cv2 = _cv2()
    patches = np.empty((len(video), cfg.crop, cfg.crop, 3), np.uint8)
    for i, frame in enumerate(video):
        resized = plan.boxes[i, 0] < 0
        x0, y0, x1, y1 = ((0, 0, cfg.std_size, cfg.std_size) if resized
                          else (int(v) for v in plan.boxes[i]))
        aligned = cv2.warpAffine(np.ascontiguousarray(frame), plan.matrices[i], (x1, y1),
                                 flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                 borderValue=0)
        patches[i] = cv2.resize(aligned, (cfg.crop, cfg.crop)) if resized else aligned[y0:, x0:]
    return to_grey(patches)  # per pixel: the same as frame by frame


def autoavsr_fallback(video: np.ndarray, cfg: AutoAVSRCropConfig = AutoAVSRCropConfig()
                      ) -> np.ndarray:
    """Step 7: ``(T, H, W, 3)`` RGB -> ``(T, 96, 96)`` grey, where the loader's centre crop
    of the original frames lands."""
    grey = to_grey(video)
    _, h, w = grey.shape
    return centre_crops(grey, cfg.crop, (fallback_offset(h, cfg), fallback_offset(w, cfg)))


def autoavsr_rois(video: np.ndarray, keypoints: np.ndarray | KeypointSource, *,
                  source: str | None = None,
                  config: AutoAVSRCropConfig = AutoAVSRCropConfig()) -> MouthRois:
    """Mouth crops of a clip by the paper's Auto-AVSR recipe (module docstring).

    Args:
        video: ``(T, H, W, 3)`` uint8 RGB frames.
        keypoints: ``(T, 4, 2)`` float pixel keypoints (right eye, left eye, nose tip, mouth
            centre) with NaN rows for frames without a face, ``(T, 68, 2)`` landmarks (reduced
            by :func:`keypoints_of`), or a :class:`KeypointSource` to run on ``video``.
        source: name recorded in the result (default: the source's name, or ``"given"``).
        config: recipe constants.
    Returns:
        :class:`~avdd.roi.regions.MouthRois` with ``(T, 96, 96)`` uint8 grey frames,
        ``recipe="autoavsr"`` and the raw ``(T, 4, 2)`` keypoints as ``landmarks``.
    """
    video = rgb_video(video)
    if isinstance(keypoints, KeypointSource):
        source = source or keypoints.name
        keypoints = keypoints(video)
    raw = np.asarray(keypoints, np.float64)
    if raw.ndim == 3 and raw.shape[1:] == (68, 2):
        raw = keypoints_of(raw)
    if raw.shape != (len(video), 4, 2):
        raise ValueError(f"keypoints {raw.shape} do not match the video's {len(video)} frames; "
                         "expected (T, 4, 2) or (T, 68, 2)")
    raw = raw.astype(np.float32)
    source = source or "given"
    t, h, w, _ = video.shape
    filled = interpolate_landmarks(raw)
    whole = np.tile(np.array([[0, 0, w, h]], np.float32), (t, 1))
    if filled is None:
        return MouthRois(autoavsr_fallback(video, config), whole, True, source, raw,
                         "no face in any frame", recipe=RECIPE)
    boxes = np.concatenate([filled.min(axis=1), filled.max(axis=1)], axis=1).astype(np.float32)
    try:
        frames = autoavsr_crops(video, autoavsr_plan(filled, config), config)
    except ValueError as err:
        return MouthRois(autoavsr_fallback(video, config), boxes, True, source, raw, str(err),
                         recipe=RECIPE)
    return MouthRois(frames, boxes, False, source, raw, recipe=RECIPE)
