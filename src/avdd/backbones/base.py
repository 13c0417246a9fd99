"""The backbone interface and registry.

A backbone turns one decoded clip into per-frame features ``(T, D)`` at a declared frame rate.
It is frozen: no training happens here. Real backbones (Wav2Vec2, CLIP, VideoMAE, FSFM,
AV-HuBERT, BRAVEn, Auto-AVSR) plug in through the same interface, one family per file.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Sequence
from typing import Any, ClassVar

import numpy as np

from avdd.media import Clip
from avdd.roi.regions import Roi


class Backbone(ABC):
    """A frozen feature extractor.

    Class attributes:
        modality: ``"audio"``, ``"visual"`` or ``"audio-visual"`` (decides what is decoded).
        weights: ``"handcrafted"``, ``"random"`` or ``"pretrained"`` (recorded as provenance).
        version: bump when a code change alters the features; :meth:`config` includes it, so
            cached features of the old code are never reused.
    Instance attributes:
        name: registry name; dim: feature size D; fps: output frame rate in Hz.
    """

    modality: ClassVar[str]
    weights: ClassVar[str]
    version: ClassVar[int] = 1
    name: str
    dim: int
    fps: float
    device: str = "cpu"  # where the model runs; set by :meth:`to`
    #: Lip-reading backbones (AV-HuBERT, BRAVEn, Auto-AVSR) read the shared 96×96 mouth ROI
    #: (:mod:`avdd.lipread`): the runner computes it once per video with landmark source
    #: ``landmarks``, caches it and passes it in ``Roi.mouth`` to every such backbone.
    uses_mouth_roi: ClassVar[bool] = False
    landmarks: str = "auto"

    @property
    def needs_audio(self) -> bool:
        return self.modality in ("audio", "audio-visual")

    @property
    def needs_video(self) -> bool:
        return self.modality in ("visual", "audio-visual")

    @abstractmethod
    def config(self) -> dict[str, Any]:
        """Everything that changes the features: stored with them, part of the cache key."""

    @abstractmethod
    def __call__(self, clip: Clip, roi: Roi | None = None) -> np.ndarray:
        """Features of one clip: ``(T, dim)`` float32 at ``fps`` Hz."""

    def to(self, device: str) -> Backbone:
        """Move the backbone's torch modules to ``device`` (``"cuda:0"``, ``"cpu"``); inputs
        follow :attr:`device`. Handcrafted backbones have none and stay on the CPU."""
        import torch

        dev = torch.device(device)
        for value in vars(self).values():
            if isinstance(value, torch.nn.Module):
                value.to(dev)
        self.device = str(dev)
        return self

    def batch_key(self, clip: Clip) -> Hashable | None:
        """Clips with the same key can go through :meth:`batch` as one forward pass (e.g. the
        audio length); ``None`` (the default) means the backbone gains nothing from batching
        across clips (per-frame models already batch the frames of one clip)."""
        return None

    def batch(self, clips: Sequence[Clip], rois: Sequence[Roi | None]) -> list[np.ndarray]:
        """Features of clips sharing one :meth:`batch_key`: a list of ``(T, dim)`` float32.
        The default runs them one by one."""
        return [self(c, r) for c, r in zip(clips, rois, strict=True)]


_REGISTRY: dict[str, Callable[..., Backbone]] = {}


def register(name: str) -> Callable[[Callable[..., Backbone]], Callable[..., Backbone]]:
    """Class/function decorator adding a backbone factory under ``name``."""

    def deco(factory: Callable[..., Backbone]) -> Callable[..., Backbone]:
        if name in _REGISTRY:
            raise ValueError(f"backbone {name!r} registered twice")
        _REGISTRY[name] = factory
        return factory

    return deco


def _parse_value(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"NAME"`` or ``"NAME:key=value,key=value"`` → ``(NAME, {key: value})``.

    A spec string lets a notebook parameter or a CLI flag name a backbone *with* its
    arguments, e.g. ``"wav2vec2:model=/ckpt/xls-r-2b"`` (numbers are parsed as int/float).
    """
    name, _, rest = spec.partition(":")
    kwargs = {}
    for part in filter(None, rest.split(",")):
        key, eq, value = part.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"backbone spec {spec!r}: expected NAME:key=value[,key=value]")
        kwargs[key.strip()] = _parse_value(value.strip())
    return name.strip(), kwargs


def get_backbone(name: str, **kwargs: Any) -> Backbone:
    """Instantiate the backbone registered as ``name`` (a :func:`parse_spec` string)."""
    name, spec_kwargs = parse_spec(name)
    kwargs = {**spec_kwargs, **kwargs}
    if name not in _REGISTRY:
        raise KeyError(f"unknown backbone {name!r}; available: {', '.join(available())}")
    return _REGISTRY[name](**kwargs)


def available() -> list[str]:
    return sorted(_REGISTRY)
