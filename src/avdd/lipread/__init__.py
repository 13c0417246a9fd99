"""Shared mouth-ROI and input pipeline of the lip-reading backbones (AV-HuBERT, Auto-AVSR,
BRAVEn), following the AVH-Align recipe (BACKBONES.md, "Mouth-ROI preprocessing").

media (Clip) -> landmarks (:mod:`.landmarks`) -> aligned 96 x 96 mouth crops (:mod:`.align`,
cached per video by :mod:`.cache`) -> normalised video + audio inputs cut to a common length
(:mod:`.inputs`, audio features in :mod:`.audio`).

The names below are imported on first use (PEP 562), so the torch-only modules of this
package (model front-ends, checkpoint loading) do not pull in scikit-image.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {  # public name -> submodule defining it
    "AlignConfig": "align", "CropError": "align", "MouthRois": "align", "interpolate_landmarks": "align",
    "mouth_rois": "align", "smooth_landmarks": "align", "landmark_boxes": "align",
    "avhubert_audio": "audio", "leading_silence_seconds": "audio", "logfbank": "audio",
    "stack_frames": "audio", "trim_leading_silence": "audio", "utterance_norm": "audio",
    "RECIPE_VERSION": "cache", "RoiCache": "cache",
    "AUDIO_KINDS": "inputs", "LipInputs": "inputs", "compute_rois": "inputs", "lip_inputs": "inputs",
    "video_input": "inputs",
    "MEDIAPIPE_TO_DLIB68": "landmarks", "DlibLandmarks": "landmarks", "LandmarkSource": "landmarks",
    "MediaPipeLandmarks": "landmarks", "SyntheticLandmarks": "landmarks", "get_landmark_source": "landmarks",
    "mean_face": "landmarks", "template_landmarks": "landmarks",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:  # AttributeError lets "from avdd.lipread import <submodule>" fall through
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
