"""The backbone interface and registry.

A backbone turns one decoded clip into per-frame features ``(T, D)`` at a declared frame rate.
It is frozen: no training happens here. Real backbones (Wav2Vec2, CLIP, VideoMAE, FSFM,
AV-HuBERT, BRAVEn, Auto-AVSR) plug in through the same interface, one family per file.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from ..media import Clip
from ..roi import Roi


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
