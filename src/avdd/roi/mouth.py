"""On-disk cache of mouth ROIs: landmark detection + alignment run once per video and recipe.

Two crop recipes, as the paper's code used them: ``"avhubert"`` (:mod:`avdd.roi.align`, the
AVH-Align crop that AV-HuBERT and BRAVEn read) and ``"autoavsr"`` (:mod:`avdd.roi.autoavsr`,
the MediaPipe-based crop of the Auto-AVSR rows). Several lip backbones read the same crops, and
dlib costs ~0.1 s per frame, so the extraction runner computes the ROIs once per video, recipe
and landmark source (in its worker process) through :meth:`RoiCache.load_or_compute` and hands
the resulting :class:`~avdd.roi.regions.Roi` to every lip backbone of that recipe; each recipe
has its own cache folder.

Layout: ``root/<config hash>/<sanitised id>-<id hash>.npz`` (compressed), plus
``root/<config hash>/config.json`` naming what the hash stands for. Entries are written to a
temporary file in the same folder and renamed into place (``os.replace`` is atomic on POSIX),
so a reader never sees half a file and parallel writers of one id leave one complete entry.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import tempfile
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from avdd.media import Clip
from avdd.roi.align import AlignConfig, mouth_rois
from avdd.roi.autoavsr import (
    KEYPOINT_SOURCES,
    AutoAVSRCropConfig,
    autoavsr_rois,
    get_keypoint_source,
)
from avdd.roi.landmarks import SOURCES, get_landmark_source
from avdd.roi.regions import MouthRois, Roi

__all__ = ["RoiCache", "RECIPE_VERSION", "RECIPES", "compute_rois"]

#: Bump when a code change alters the crops: old entries are then not reused.
#: 2: always clamp the AV-HuBERT crop, centre-crop fallback of the full-resolution frame; the
#: Auto-AVSR recipe.
RECIPE_VERSION = 2
RECIPES = ("avhubert", "autoavsr")
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_STEM = 120  # characters of the readable part of a file name


def _digest(text: str, n: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def _check_recipe(recipe: str) -> None:
    if recipe not in RECIPES:
        raise ValueError(f"unknown mouth-ROI recipe {recipe!r}; expected one of {RECIPES}")


def compute_rois(clip: Clip, roi: Roi | None, landmarks: str = "auto",
                 recipe: str = "avhubert") -> MouthRois:
    """Mouth ROIs of ``clip`` by ``recipe``: ``roi.mouth`` when precomputed by the same recipe,
    else the recipe on ``roi.landmarks`` when given, else on the landmarks of the named source.

    ``landmarks``: for ``"avhubert"`` a :func:`~avdd.roi.landmarks.get_landmark_source` name;
    for ``"autoavsr"`` a :func:`~avdd.roi.autoavsr.get_keypoint_source` name (``"auto"``:
    synthetic annotations or MediaPipe FaceDetection), or ``"dlib"`` / ``"mediapipe"``
    (68 landmarks reduced to the 4 keypoints: not the official detector).
    """
    _check_recipe(recipe)
    if roi is not None and roi.mouth is not None and roi.mouth.recipe == recipe:
        return roi.mouth
    given = roi.landmarks if roi is not None else None
    if recipe == "autoavsr":
        if given is not None:
            return autoavsr_rois(clip.video, given, source="given")
        if landmarks in KEYPOINT_SOURCES:
            return autoavsr_rois(clip.video, get_keypoint_source(landmarks, roi))
        source = get_landmark_source(landmarks, roi)
        return autoavsr_rois(clip.video, source(clip.video), source=source.name)
    if given is not None:
        return mouth_rois(clip.video, given, source="given")
    if landmarks not in SOURCES:
        raise ValueError(f"unknown landmark source {landmarks!r} for the AV-HuBERT crop; "
                         f"expected one of {SOURCES}")
    return mouth_rois(clip.video, get_landmark_source(landmarks, roi))


def check_detector(landmarks: str = "auto", recipe: str = "avhubert") -> None:
    """Fail now, before any video is decoded, if ``compute_rois`` would need a detector for
    real clips (no synthetic annotations) that is not installed.

    Raises:
        ImportError: the message names the extra to install. ValueError: unknown names.
    """
    _check_recipe(recipe)
    if recipe == "autoavsr" and landmarks in KEYPOINT_SOURCES:
        if landmarks != "synthetic":
            get_keypoint_source(landmarks, None)
        return
    if landmarks != "synthetic":
        get_landmark_source(landmarks, None)


class RoiCache:
    """Mouth ROIs per video id, for one landmark-source / recipe configuration.

    Args:
        root: cache folder (created on first write).
        source_config: what produced the ROIs, e.g. ``{"landmarks": "auto"}`` or a
            source's :meth:`~avdd.roi.landmarks.LandmarkSource.config` (and the decode rate,
            when not 25 fps); hashed together with the recipe, its constants and
            :data:`RECIPE_VERSION`, so another configuration gets another folder.
        recipe: ``"avhubert"`` or ``"autoavsr"`` (:data:`RECIPES`).
        align: the AV-HuBERT recipe's constants (recipe ``"avhubert"`` only).
    """

    def __init__(self, root: str | Path, source_config: dict[str, Any], *,
                 align: AlignConfig = AlignConfig(), recipe: str = "avhubert"):
        _check_recipe(recipe)
        self.root = Path(root)
        self.recipe = recipe
        constants = align if recipe == "avhubert" else AutoAVSRCropConfig()
        self.config = {"source": source_config, "align": dataclasses.asdict(constants),
                       "recipe": RECIPE_VERSION, "crop": recipe}
        self.key = _digest(json.dumps(self.config, sort_keys=True, default=str), 16)
        self.dir = self.root / self.key

    def path(self, video_id: str) -> Path:
        """The entry's file: readable id + a hash of the exact id (``a/b`` and ``a_b`` differ)."""
        stem = _SAFE.sub("_", str(video_id)).strip("._")[:_MAX_STEM] or "clip"
        return self.dir / f"{stem}-{_digest(str(video_id), 12)}.npz"

    def get(self, video_id: str) -> MouthRois | None:
        """The cached ROIs of ``video_id``, or None if absent. An unreadable entry (e.g. a
        disk-full truncation) is reported with a warning and treated as absent."""
        path = self.path(video_id)
        try:
            with np.load(path, allow_pickle=False) as data:
                lms = data["landmarks"]
                return MouthRois(frames=data["frames"], face_boxes=data["face_boxes"],
                                 fallback=bool(data["fallback"]), landmark_source=str(data["source"]),
                                 landmarks=lms if lms.size else None, reason=str(data["reason"]),
                                 recipe=str(data["recipe"]))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
            warnings.warn(f"{path}: unreadable ROI cache entry ({err}); recomputing it", stacklevel=2)
            return None

    def put(self, video_id: str, rois: MouthRois) -> Path:
        """Store ``rois`` atomically (temporary file + ``os.replace``); returns the path."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        path = self.path(video_id)
        lms = rois.landmarks if rois.landmarks is not None else np.zeros((0, 68, 2), np.float32)
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".", suffix=".npz.tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez_compressed(fh, frames=np.asarray(rois.frames, np.uint8),
                                    face_boxes=np.asarray(rois.face_boxes, np.float32),
                                    fallback=np.bool_(rois.fallback), source=np.str_(rois.landmark_source),
                                    landmarks=np.asarray(lms, np.float32), reason=np.str_(rois.reason),
                                    recipe=np.str_(rois.recipe))
            os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; the cache may be shared
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def _write_config(self) -> None:
        target = self.dir / "config.json"
        if target.exists():
            return
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".", suffix=".json.tmp")
        with os.fdopen(fd, "w") as fh:
            json.dump(self.config, fh, indent=1, sort_keys=True, default=str)
        os.replace(tmp, target)

    def load_or_compute(self, video_id: str, clip: Clip, roi: Roi | None,
                        landmarks: str = "auto") -> Roi:
        """``roi`` (or an empty :class:`~avdd.roi.regions.Roi`) with ``mouth`` filled: from the cache
        when an entry with as many frames as ``clip`` exists, else computed (landmark source
        ``landmarks``, see :func:`compute_rois`) by this cache's recipe and stored.
        ``landmarks`` should be the source ``source_config`` describes."""
        rois = self.get(video_id)
        if rois is not None and (len(rois) != clip.num_frames or rois.recipe != self.recipe):
            rois = None  # the video changed since (or another decode): recompute
        if rois is None:
            rois = compute_rois(clip, roi, landmarks, self.recipe)
            self.put(video_id, rois)
        base = roi if roi is not None else Roi()
        return dataclasses.replace(base, mouth=rois)

    def load_or_stream(self, video_id: str, path: str | Path, roi: Roi | None,
                       landmarks: str = "auto", *, frames: Callable[[], int],
                       fps: float | None = 25.0) -> Roi:
        """:meth:`load_or_compute` for a clip that is not in memory: a cached entry is
        checked against ``frames()`` (the clip's frame count, e.g.
        :func:`avdd.media.count_frames`, called only when an entry exists), else the
        ROIs are computed a window at a time (:func:`~avdd.roi.stream.stream_rois`, the same
        crops) and stored."""
        from avdd.roi.stream import stream_rois

        rois = self.get(video_id)
        if rois is not None and (rois.recipe != self.recipe or len(rois) != frames()):
            rois = None
        if rois is None:
            rois = stream_rois(path, self.recipe, landmarks, roi, fps=fps)
            self.put(video_id, rois)
        return dataclasses.replace(roi if roi is not None else Roi(), mouth=rois)
