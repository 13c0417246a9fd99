"""Face crops for FSFM: the detector box x 1.3, as the paper's FSFM features were cropped.

Upstream (``danoneata/veridiq``, ``feature_extractors_dirty/fe_FSFM_cropping.py`` with
``align=False``; read, not copied): per frame, dlib's HOG frontal face detector on the **RGB**
frame with one upsampling; the *first* detection (a comment says "biggest", the code takes
``faces[0]``); FaceForensics++'s ``get_boundingbox``, all in integers::

    side = int(max(right - left, bottom - top) * 1.3)
    cx, cy = (left + right) // 2, (top + bottom) // 2
    x0, y0 = max(cx - side // 2, 0), max(cy - side // 2, 0)
    side = min(W - x0, H - y0, side)              # shrunk to fit, never padded

and the crop ``rgb[y0:y0 + side, x0:x0 + side]``; a frame without a face is kept whole. The
feature extractor then resizes to 224 x 224 (torchvision ``Resize`` on a PIL image: PIL
bilinear, the aspect ratio not kept).

Boxes come from :class:`DlibFaceBoxes` (``pip install "avdd[dlib]"``), or from a dataset's own
face boxes (the synthetic benchmark annotates them), which go through the same integer rule.
:func:`face_locations` gives every detection of a frame, clipped as ``face_recognition`` clips
them (Fig. 4's face baseline).
"""

from __future__ import annotations

import importlib.util
import math
from typing import Any

import numpy as np

from avdd.roi.landmarks import DLIB_EXTRA

__all__ = ["DlibFaceBoxes", "ffpp_box", "face_crop", "face_locations", "BOX_SCALE",
           "FACE_SOURCES", "get_face_boxes"]

BOX_SCALE = 1.3  # FaceForensics++'s enlargement of the detector box
FACE_SOURCES = ("auto", "annotation", "dlib")


def ffpp_box(box: np.ndarray, width: int, height: int, scale: float = BOX_SCALE
             ) -> tuple[int, int, int]:
    """FaceForensics++'s square around a detector box: ``(x0, y0, side)`` in pixels.

    Args:
        box: ``(left, top, right, bottom)`` of the detection (dlib's integer rectangle; float
            annotations are truncated to integers as a detector's pixel box would be).
        width, height: the frame's size.
    Returns:
        Top-left corner and side of the crop, inside the frame (shifted at the top/left
        border, shrunk at the bottom/right one); the side may be 0 for a box outside it.
    """
    left, top, right, bottom = (math.floor(float(v)) for v in box)
    side = int(max(right - left, bottom - top) * scale)
    cx, cy = (left + right) // 2, (top + bottom) // 2
    x0, y0 = max(int(cx - side // 2), 0), max(int(cy - side // 2), 0)
    side = max(0, min(width - x0, height - y0, side))
    return x0, y0, side


def face_crop(frame: np.ndarray, box: np.ndarray | None, size: int,
              scale: float = BOX_SCALE) -> np.ndarray:
    """One ``(H, W, 3)`` uint8 frame -> ``(size, size, 3)`` uint8: the :func:`ffpp_box` crop
    of ``box`` (the whole frame when ``box`` is None, has NaNs or an empty crop), resized with
    PIL bilinear (the aspect ratio is not kept, as upstream's ``Resize((224, 224))``)."""
    from PIL import Image

    h, w = frame.shape[:2]
    if box is not None and np.isfinite(np.asarray(box, float)).all():
        x0, y0, side = ffpp_box(box, w, h, scale)
        if side > 0:
            frame = frame[y0:y0 + side, x0:x0 + side]
    img = Image.fromarray(np.ascontiguousarray(frame))
    return np.asarray(img.resize((size, size), Image.Resampling.BILINEAR))


class DlibFaceBoxes:
    """dlib's HOG frontal face detector as the FSFM crops ran it: RGB frame, ``upsample``
    pyramid levels (1), the first detection, its integer rectangle.

    ``__call__``: ``(T, H, W, 3)`` uint8 RGB -> ``(T, 4)`` float32 (left, top, right,
    bottom), a NaN row where no face was found.
    """

    name = "dlib"

    def __init__(self, *, upsample: int = 1):
        self.upsample = int(upsample)
        self._detector()  # fail now, not in a worker, if dlib is missing

    @staticmethod
    def _detector():
        try:
            import dlib
        except ImportError as err:
            raise ImportError("FSFM's face crops and Fig. 4's face baseline come from dlib's face "
                              f"detector: {DLIB_EXTRA}") from err
        return dlib.get_frontal_face_detector()

    def config(self) -> dict[str, Any]:
        import dlib

        return {"name": self.name, "detector": "hog-frontal", "input": "rgb",
                "upsample": self.upsample, "face": "first", "dlib": dlib.__version__}

    def detections(self, frame: np.ndarray, detector=None) -> np.ndarray:
        """Every face dlib finds in one ``(H, W, 3)`` uint8 RGB frame, in dlib's order:
        ``(n, 4)`` float32 (left, top, right, bottom) integer rectangles, ``(0, 4)`` if none."""
        detector = self._detector() if detector is None else detector
        faces = detector(np.ascontiguousarray(frame), self.upsample)
        return np.array([(r.left(), r.top(), r.right(), r.bottom()) for r in faces],
                        np.float32).reshape(-1, 4)

    def __call__(self, video: np.ndarray) -> np.ndarray:
        detector = self._detector()
        out = np.full((len(video), 4), np.nan, np.float32)
        for t, frame in enumerate(np.asarray(video)):
            found = self.detections(frame, detector)
            if len(found):
                out[t] = found[0]
        return out


def face_locations(video: np.ndarray, *, upsample: int = 1) -> list[np.ndarray]:
    """What ``face_recognition.face_locations(frame)`` (its default HOG model) returns for
    each frame, as boxes: every dlib detection on the RGB frame with ``upsample`` pyramid
    levels, in dlib's order, clipped to the frame as that library clips them (left and top
    at 0, right at W, bottom at H; not W − 1, H − 1).

    Args:
        video: ``(T, H, W, 3)`` uint8 RGB frames.
    Returns:
        ``T`` arrays ``(n_t, 4)`` float32 (left, top, right, bottom) pixels; ``(0, 4)`` for a
        frame without a face. (The Fig. 4 face baseline of the paper's code, github
        ``danoneata/veridiq`` ``scripts/exddv/extract_faces.py``, ran that function.)
    """
    source = DlibFaceBoxes(upsample=upsample)
    detector = source._detector()
    out = []
    for frame in np.asarray(video):
        h, w = frame.shape[:2]
        boxes = source.detections(frame, detector)
        boxes[:, 0:2] = np.maximum(boxes[:, 0:2], 0)
        boxes[:, 2] = np.minimum(boxes[:, 2], w)
        boxes[:, 3] = np.minimum(boxes[:, 3], h)
        out.append(boxes)
    return out


def get_face_boxes(name: str, video: np.ndarray, annotation: np.ndarray | None) -> np.ndarray:
    """``(T, 4)`` face boxes of ``video`` from the named source: ``"annotation"`` (the
    dataset's boxes, required), ``"dlib"`` (:class:`DlibFaceBoxes`) or ``"auto"`` (the
    annotation when there is one, else dlib; without dlib an ImportError says how to install
    it). Annotations shorter than the video repeat their last row."""
    if name not in FACE_SOURCES:
        raise ValueError(f"unknown face-box source {name!r}; expected one of {FACE_SOURCES}")
    if annotation is not None and name in ("auto", "annotation"):
        from avdd.roi.regions import per_frame

        return per_frame(np.asarray(annotation, np.float32), len(video))
    if name == "annotation":
        raise ValueError("faces='annotation' needs face boxes in the dataset's annotations; "
                         "use faces='dlib' for other clips")
    if importlib.util.find_spec("dlib") is None:
        raise ImportError(f"FSFM on a clip without annotated face boxes uses dlib's face "
                          f"detector (the official crop), which is not installed: {DLIB_EXTRA}")
    return DlibFaceBoxes()(video)
