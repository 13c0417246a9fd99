"""Mouth regions of interest: the AV-HuBERT / AVH-Align recipe (BACKBONES.md, steps 3-5).

Given 68 landmarks per frame (NaN rows where no face was found):

1. fill missing frames by linear interpolation between detections; leading / trailing gaps
   copy the nearest detection; no detection at all -> fallback;
2. smooth with a *forward* window of 12 frames (frame i uses the mean of frames i..i+11);
3. per frame, a similarity transform (``skimage.transform.estimate_transform('similarity')``,
   computed for all frames at once with skimage's operations, :mod:`avdd.roi.similarity`)
   from the smoothed stable points [33, 36, 39, 42, 45] (nose base, eye corners) to the same
   points of the 256 x 256 mean face; the last 11 frames reuse the last transform;
4. warp the frame with it (bilinear, zero border, ``skimage.transform.warp``), transform the
   frame's *own* (unsmoothed) landmarks, and cut 96 x 96 centred on the mean of mouth points
   48-67, its centre clamped inside the 256 x 256 frame (always: upstream's "more than 5 px
   outside" test runs on the already clamped centre, so it never fires);
5. on any failure (no face in any frame, a degenerate transform) every crop is the centre
   96 x 96 of the *full-resolution* grey frame, as AVH-Align's fallback feeds AV-HuBERT: it
   writes the whole frame as the "ROI" video, whose loader then centre-crops 88 x 88 at
   ``floor((W - 88) / 2)``; the 96 x 96 crop at ``floor((W - 96) / 2)`` followed by
   :func:`~avdd.backbones.layers.lip_inputs.video_input`'s 4-px centre crop lands on exactly
   those 88 x 88 pixels (a frame smaller than 96 px is zero-padded around its centre).

Output: :class:`MouthRois` (grey uint8 crops) for the lip backbones, plus per-frame face boxes.

Differences from upstream, all below one grey level or documented here:

* the frame is converted to grey (OpenCV's integer formula) *before* warping, upstream after
  (it warps BGR, writes an mp4, and AV-HuBERT's loader converts to grey): warping one channel
  is 3x cheaper; the difference is the uint8 rounding order (and no lossy re-encode);
* only the crop's pixels are warped (all frames in one numba call, :mod:`avdd.roi.warp_kernel`,
  ~10x faster than skimage per frame), not the whole 256 x 256 frame: the same sampling
  positions, arithmetic and clip as skimage's warp, so the same pixels (tested); without numba,
  skimage warps each frame up to the crop's far corner;
* ``max_outside_px`` (default None = upstream: always clamp) can make a far-off crop fall
  back instead, as BACKBONES.md's wording of the rule would;
* the fallback frames are not re-encoded (upstream writes them to an mp4 at crf 20 first).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage.transform import estimate_transform, warp
from skimage.util import img_as_float

from avdd.roi.image import rgb_video, to_grey
from avdd.roi.landmarks import MEAN_FACE_SIZE, LandmarkSource, mean_face
from avdd.roi.regions import MouthRois
from avdd.roi.similarity import apply_similarities, similarities
from avdd.roi.warp_kernel import COMPILED, warp_crops

__all__ = ["AlignConfig", "CropError", "CropPlan", "mouth_rois", "interpolate_landmarks",
           "smooth_landmarks", "landmark_boxes", "centre_crops", "crop_plan", "planned_crops",
           "fallback_crops"]


@dataclass(frozen=True)
class AlignConfig:
    """The recipe's constants (AV-HuBERT ``align_mouth.py`` defaults, as AVH-Align calls it).

    Attributes:
        stable_points: landmark indices the similarity is fitted on (nose base, eye corners:
            they move least with speech).
        window: forward smoothing window (frames, 12 = 0.48 s at 25 fps).
        std_size: side of the aligned frame (px, the mean face's frame).
        crop: side of the mouth crop (px).
        mouth: first and one-past-last mouth landmark index (48-67).
        max_outside_px: how far (px) the crop may reach outside the aligned frame before the
            clip falls back; None (default): always clamp, upstream's effective behaviour
            (its threshold is tested after clamping, so it never fires).
    """

    stable_points: tuple[int, ...] = (33, 36, 39, 42, 45)
    window: int = 12
    std_size: int = MEAN_FACE_SIZE
    crop: int = 96
    mouth: tuple[int, int] = (48, 68)
    max_outside_px: float | None = None


#: The float each grey level becomes in skimage's warp (``img_as_float``), for the compiled warp.
_GREY_LEVELS = img_as_float(np.arange(256, dtype=np.uint8))


class CropError(ValueError):
    """The mouth crop lies too far outside the aligned frame (the clip falls back)."""


def interpolate_landmarks(landmarks: np.ndarray) -> np.ndarray | None:
    """Fill NaN frames of ``(T, K, 2)`` landmarks (68 points, or Auto-AVSR's 4 keypoints):
    linear interpolation between the detections around a gap, nearest detection before the
    first / after the last one. A frame counts as missing when any of its coordinates is NaN.
    Returns float64 ``(T, K, 2)``, or None when no frame has landmarks."""
    lms = np.asarray(landmarks, np.float64)
    if lms.ndim != 3 or lms.shape[2] != 2:
        raise ValueError(f"expected (T, K, 2) landmarks, got {lms.shape}")
    valid = ~np.isnan(lms).any(axis=(1, 2))
    if not valid.any():
        return None
    known = np.flatnonzero(valid)
    t = np.arange(len(lms))
    flat = lms[known].reshape(len(known), -1)
    # np.interp holds the end values outside [first, last]: exactly the edge-copy rule.
    filled = np.stack([np.interp(t, known, flat[:, j]) for j in range(flat.shape[1])], axis=1)
    return filled.reshape(lms.shape)


def smooth_landmarks(landmarks: np.ndarray, window: int = 12) -> np.ndarray:
    """Forward moving mean over ``min(window, T)`` frames: row i = mean of rows i..i+w-1 for
    i <= T - w; the last w - 1 rows repeat row T - w (upstream reuses the last transform
    there, which is the same thing). ``(T, ...)`` -> ``(T, ...)`` float64."""
    lms = np.asarray(landmarks, np.float64)
    n = len(lms)
    w = min(window, n)
    csum = np.concatenate([np.zeros((1,) + lms.shape[1:]), np.cumsum(lms, axis=0)])
    means = (csum[w:] - csum[:-w]) / w  # (n - w + 1, ...)
    return np.concatenate([means, np.repeat(means[-1:], w - 1, axis=0)])


def landmark_boxes(landmarks: np.ndarray) -> np.ndarray:
    """``(T, 68, 2)`` NaN-free landmarks -> ``(T, 4)`` float32 boxes (x0, y0, x1, y1)."""
    return np.concatenate([landmarks.min(axis=1), landmarks.max(axis=1)], axis=1).astype(np.float32)


def _crop_origin(centre: np.ndarray, cfg: AlignConfig) -> tuple[int, int]:
    """Top-left (x0, y0) of the crop centred on ``centre`` in the aligned frame, clamped
    inside it; :class:`CropError` if the centre asks for more than ``max_outside_px``
    outside. Rounds the centre half-to-even, like upstream's ``round``."""
    half, size = cfg.crop // 2, cfg.std_size
    origin = []
    for axis, c in (("x", float(centre[0])), ("y", float(centre[1]))):
        outside = max(half - c, c + half - size)
        if cfg.max_outside_px is not None and outside > cfg.max_outside_px:
            raise CropError(f"mouth crop {outside:.1f} px outside the aligned frame along {axis}")
        c = min(max(c, half), size - half)
        origin.append(int(round(c)) - half)
    return origin[0], origin[1]


def _warp_crop(grey: np.ndarray, inverse: np.ndarray, x0: int, y0: int, crop: int) -> np.ndarray:
    """Pixels [y0, y0 + crop) x [x0, x0 + crop) of ``warp(grey, inverse, (256, 256))``
    (``inverse``: the 3 x 3 output -> input matrix, ``tform.inverse.params``).

    skimage's path, used where the compiled warp (:mod:`avdd.roi.warp_kernel`) is not. Only
    the output up to the crop's far corner is warped (~half the frame): the same map and the
    same output positions, hence bit-identical pixels. (Warping just the crop with a shifted
    matrix moves sample positions by ~1e-13 px, which the uint8 truncation below turns into
    occasional 1-level differences.)"""
    out = warp(grey, inverse, output_shape=(y0 + crop, x0 + crop), order=1, mode="constant", cval=0.0)
    # Truncation, as upstream's (warped * 255).astype(uint8).
    return (out[y0:, x0:] * 255).astype(np.uint8)


def centre_crops(grey: np.ndarray, size: int, offset: tuple[int, int] | None = None) -> np.ndarray:
    """``(T, H, W)`` uint8 -> ``(T, size, size)``: the centre ``size`` x ``size`` pixels of each
    frame, top-left at ``offset`` (y, x) (default ``floor((H - size) / 2)``,
    ``floor((W - size) / 2)``); pixels beyond the frame are 0 (a frame smaller than ``size``)."""
    t, h, w = grey.shape
    oy, ox = offset if offset is not None else ((h - size) // 2, (w - size) // 2)
    out = np.zeros((t, size, size), np.uint8)
    # Source and destination windows of the overlap (negative offsets pad before the frame).
    sy, sx = max(oy, 0), max(ox, 0)
    ey, ex = min(oy + size, h), min(ox + size, w)
    if ey > sy and ex > sx:
        out[:, sy - oy:ey - oy, sx - ox:ex - ox] = grey[:, sy:ey, sx:ex]
    return out


def fallback_crops(grey: np.ndarray, cfg: AlignConfig = AlignConfig()) -> np.ndarray:
    """Step 5: ``(T, H, W)`` grey -> ``(T, 96, 96)``, the centre of each full-resolution frame."""
    return centre_crops(grey, cfg.crop)


def _frame_similarities(smoothed: np.ndarray, target: np.ndarray, cfg: AlignConfig) -> np.ndarray:
    """``(T, 3, 3)`` similarity per frame from the smoothed stable points to ``target``: all
    frames at once (:func:`~avdd.roi.similarity.similarities`, skimage's floats), or frame by
    frame with skimage when some frame is degenerate (raising ValueError as upstream fails)."""
    stable = list(cfg.stable_points)
    batched = similarities(smoothed[:, stable], target)
    if batched is not None and np.isfinite(batched).all():
        return batched
    params, tform = np.empty((len(smoothed), 3, 3)), None
    for i in range(len(smoothed)):
        # Rows past T - window repeat the last smoothed row: reuse its transform.
        if tform is None or not np.array_equal(smoothed[i], smoothed[i - 1]):
            tform = estimate_transform("similarity", smoothed[i][stable], target)
            if not np.isfinite(tform.params).all():
                raise ValueError(f"frame {i}: degenerate stable points, no similarity transform")
        params[i] = tform.params
    return params


@dataclass(frozen=True, eq=False)
class CropPlan:
    """Where each frame's crop comes from (steps 2-3, from landmarks only: no pixels).

    Attributes:
        inverse: ``(T, 3, 3)`` float64 output -> input matrices (``tform.inverse.params``).
        origins: ``(T, 2)`` int64 top-left (x0, y0) of each crop in the aligned frame.
        compiled: warp with :mod:`avdd.roi.warp_kernel` (decided once for the clip, so that
            the frames of one clip never mix the two warps).
    """

    inverse: np.ndarray
    origins: np.ndarray
    compiled: bool

    def __getitem__(self, frames: slice) -> CropPlan:
        """The plan of a run of frames (a decoded window of the clip)."""
        return CropPlan(self.inverse[frames], self.origins[frames], self.compiled)


def crop_plan(lms: np.ndarray, cfg: AlignConfig = AlignConfig()) -> CropPlan:
    """Steps 2-3 on ``(T, 68, 2)`` NaN-free landmarks; raises CropError / ValueError /
    LinAlgError on failure (the clip then falls back)."""
    target = mean_face()[list(cfg.stable_points)]
    params = _frame_similarities(smooth_landmarks(lms, cfg.window), target, cfg)
    lo, hi = cfg.mouth
    mouths = apply_similarities(params, lms[:, lo:hi]).mean(axis=1)  # (T, 2) in the 256 frame
    origins = np.array([_crop_origin(m, cfg) for m in mouths], np.int64).reshape(-1, 2)
    # What skimage's warp receives for tform.inverse: the float64 inverse matrix.
    inverse = np.linalg.inv(params)
    compiled = bool(COMPILED and (inverse[:, 2] == [0.0, 0.0, 1.0]).all())  # the kernel's case
    return CropPlan(inverse, origins, compiled)


def planned_crops(grey: np.ndarray, plan: CropPlan, cfg: AlignConfig = AlignConfig()
                  ) -> np.ndarray:
    """Step 4: ``(T, H, W)`` uint8 grey frames and their :class:`CropPlan` -> ``(T, 96, 96)``
    uint8 crops. Each frame's crop depends on that frame and its plan only, so the frames of
    a clip may be cropped a window at a time."""
    if plan.compiled:
        return warp_crops(grey, _GREY_LEVELS, plan.inverse[:, :2], plan.origins, cfg.crop)
    return np.stack([_warp_crop(g, m, x0, y0, cfg.crop)
                     for g, m, (x0, y0) in zip(grey, plan.inverse, plan.origins)])


def mouth_rois(video: np.ndarray, landmarks: np.ndarray | LandmarkSource, *,
               source: str | None = None, config: AlignConfig = AlignConfig()) -> MouthRois:
    """Mouth crops of a clip by the AVH-Align recipe (module docstring).

    Args:
        video: ``(T, H, W, 3)`` uint8 RGB frames (25 fps).
        landmarks: ``(T, 68, 2)`` float pixel landmarks with NaN rows for frames without a
            face, or a :class:`~avdd.roi.landmarks.LandmarkSource` to run on ``video``.
        source: name recorded in the result (default: the source's name, or ``"given"``).
        config: recipe constants.
    Returns:
        :class:`MouthRois` with ``(T, 96, 96)`` uint8 grey frames.
    """
    video = rgb_video(video)
    if isinstance(landmarks, LandmarkSource):
        source = source or landmarks.name
        landmarks = landmarks(video)
    raw = np.asarray(landmarks, np.float32)
    if raw.shape != (len(video), 68, 2):
        raise ValueError(f"landmarks {raw.shape} do not match the video's {len(video)} frames; "
                         "expected (T, 68, 2)")
    source = source or "given"
    grey = to_grey(video)
    t, h, w = grey.shape
    filled = interpolate_landmarks(raw)
    if filled is None:
        boxes = np.tile(np.array([[0, 0, w, h]], np.float32), (t, 1))
        return MouthRois(fallback_crops(grey, config), boxes, True, source, raw,
                         "no face in any frame")
    boxes = landmark_boxes(filled)
    try:
        frames = planned_crops(grey, crop_plan(filled, config), config)
    except (CropError, ValueError, np.linalg.LinAlgError) as err:
        return MouthRois(fallback_crops(grey, config), boxes, True, source, raw, str(err))
    return MouthRois(frames, boxes, False, source, raw)
