"""The backbone interface, the registry, and descriptions of backbones without their networks.

A backbone turns one decoded clip into per-frame features ``(T, D)`` at a declared frame rate.
It is frozen: no training happens here. Real backbones (Wav2Vec2, CLIP, VideoMAE, FSFM,
AV-HuBERT, BRAVEn, Auto-AVSR) plug in through the same interface, one family per file.

Most code needs only what a backbone *is* (its name, modality, frame rate, feature size,
weights kind and :meth:`Backbone.config`, the key of its feature stores), not its network:
:func:`describe` gives that as a :class:`BackboneInfo` without building anything (building
XLS-R 2B allocates 2 billion parameters; VideoMAE-large takes ~16 s on a CPU).
:func:`get_backbone` builds the network, for extracting features.

Why one module: the interface (what a backbone declares: modality, rate, windows and how it
reads them, decode-time resize), the registry that builds backbones from spec strings and the
descriptions made without building them must agree on every attribute; apart, a new
declaration would have to be added in three places.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import inspect
import math
import types
import typing
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from avdd.media import Clip
from avdd.roi.regions import Roi, window_roi

#: Modalities whose features read the audio stream, and those that read the video stream.
HEARS: tuple[str, ...] = ("audio", "audio-visual")
SEES: tuple[str, ...] = ("visual", "audio-visual")
#: Seconds of video per decoded window for backbones that read long clips in windows
#: (:attr:`Backbone.stream_frames`): 250 frames at 25 fps, ~67 MB at CLIP's 224 × 398.
STREAM_SECONDS = 10.0


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
    #: Lip-reading backbones (AV-HuBERT, BRAVEn, Auto-AVSR) read a 96×96 mouth ROI
    #: (:mod:`avdd.roi.mouth`): the runner computes it once per video with crop recipe
    #: ``roi_recipe`` (``"avhubert"`` or ``"autoavsr"``) and landmark source ``landmarks``,
    #: caches it and passes it in ``Roi.mouth`` to every backbone of that recipe and source.
    uses_mouth_roi: ClassVar[bool] = False
    landmarks: str = "auto"
    roi_recipe: str = "avhubert"

    @property
    def needs_audio(self) -> bool:
        return self.modality in HEARS

    @property
    def needs_video(self) -> bool:
        return self.modality in SEES

    @property
    def decodes(self) -> tuple[bool, bool]:
        """``(video, audio)``: the streams the runner decodes for this backbone. Its
        modality's, by default; a backbone that reads the other stream only for its length
        (AV-HuBERT cuts every input to the shorter of both streams) asks for both."""
        return self.needs_video, self.needs_audio

    @property
    def min_frames(self) -> int:
        """Fewest video frames a clip needs for a meaningful feature (the model's temporal
        context): 1 by default, a windowed model's window. ``avdd score`` refuses shorter
        clips instead of scoring padding."""
        return 1

    @property
    def stream_frames(self) -> int | None:
        """Whether clips may be fed in windows: None (the default) when the features of
        a frame depend on the whole clip (transformers over the sequence, lip models, whose
        mouth ROIs are smoothed over the clip) or on other streams; else a frame count k such
        that the features of a video-only clip split into consecutive pieces whose lengths
        are multiples of k (but the last) are the whole clip's features, bit for bit (k covers
        the model's own batching as well as its windows). ``avdd score`` and the extraction
        runner then decode such clips in windows (:meth:`stream_window`), whatever their
        length, each window's features from :meth:`__call__` (:class:`WindowReader`), so
        memory is bounded by the window instead of the clip. The last piece has at least
        :attr:`min_frames` frames unless the clip has fewer."""
        return None

    #: Whether a *long* clip (full-size RGB frames over :data:`avdd.media.STREAM_BYTES`,
    #: :func:`avdd.roi.stream.fits_whole`) may be fed a window at a time, of any length, to
    #: this backbone's own :meth:`window_reader`: for video-only features that cross windows
    #: (a statistic of the whole clip's regions, a difference with the previous frame), so
    #: that :attr:`stream_frames` cannot cut them into windows' features, but a reader that
    #: keeps what it needs between windows can make the whole clip's features. A short clip
    #: is decoded whole and goes to :meth:`__call__`, sharing the decode with the job's other
    #: backbones (the path, and speed, of clips that fit).
    streams_long_clips: ClassVar[bool] = False

    def reads_windows(self, long: bool) -> bool:
        """Whether the extraction runner and ``avdd score`` feed a clip to this backbone in
        windows (:meth:`window_reader`); ``long``: whether the clip's full-size frames exceed
        :data:`avdd.media.STREAM_BYTES`. Only video-only backbones without a mouth ROI: every
        clip when :attr:`stream_frames` is set, a long one when :attr:`streams_long_clips`."""
        if self.decodes != (True, False) or self.uses_mouth_roi:
            return False
        return self.stream_frames is not None or (long and self.streams_long_clips)

    def window_reader(self, roi: Roi | None, frames: Callable[[], int]) -> WindowReader:
        """A reader of one clip fed in consecutive windows (:class:`WindowReader`), whose
        features are ``self(whole clip, roi)``'s, bit for bit.

        Args:
            roi: the whole clip's regions (each window gets its rows,
                :func:`avdd.roi.regions.window_roi`).
            frames: the clip's frame count at the decode rate, for a reader that needs it
                before the first window (a counting decode, :func:`avdd.media.count_frames`:
                call it only when needed; callers cache it).
        The default (for :attr:`stream_frames`): each window's features by :meth:`__call__`,
        concatenated. A backbone that :attr:`streams_long_clips` returns its own reader."""
        return WindowReader(self, roi)

    def stream_window(self, fps: float | None, frame_bytes: int | None = None) -> int | None:
        """Frames per decoded window at video rate ``fps`` (None: native, taken as 25): the
        multiple of :attr:`stream_frames` (1 for a backbone that :attr:`streams_long_clips`)
        nearest above :data:`STREAM_SECONDS`, and, for frames of ``frame_bytes`` each
        (full-size frames, no :attr:`frame_resize`), at most :data:`avdd.media.STREAM_BYTES`
        of them (but one multiple); None when the backbone reads whole clips."""
        from avdd import media

        step = self.stream_frames
        if step is None and self.streams_long_clips:
            step = 1  # its reader keeps its state across windows: any split will do
        if step is None:
            return None
        frames = step * max(1, math.ceil(STREAM_SECONDS * (fps or 25.0) / step))
        if frame_bytes:
            frames = min(frames, step * max(1, media.STREAM_BYTES // (frame_bytes * step)))
        return frames

    @property
    def frame_resize(self) -> Callable[[np.ndarray], np.ndarray] | None:
        """A map of one decoded ``(H, W, 3)`` uint8 frame that the backbone's own
        preprocessing begins with and then leaves unchanged, for the decoder to apply as
        frames arrive (:func:`avdd.media.read_clip` ``resize``): a 4K clip is then never held
        at 4K. It must not change the features, bit for bit. None (the default): frames at
        their decoded size."""
        return None

    def feature_rate(self, clip: Clip) -> float:
        """Feature rows per second of ``clip``'s features: :attr:`fps` by default. Backbones
        whose rows follow the video frames report the clip's own rate for a clip decoded at
        its native rate (``read_clip(fps=None)``), which the runner then stores with the
        video's features."""
        return self.fps

    @abstractmethod
    def config(self) -> dict[str, Any]:
        """Everything that changes the features: stored with them, part of the cache key."""

    @abstractmethod
    def __call__(self, clip: Clip, roi: Roi | None = None) -> np.ndarray:
        """Features of one clip: ``(T, dim)`` float32 at ``fps`` Hz."""

    @classmethod
    def _shell(cls) -> Self:
        """An instance on which ``__init__`` has not run, for a family's ``unbuilt``
        constructor to set the describing attributes on (and nothing else: no network)."""
        return cls.__new__(cls)

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


class WindowReader:
    """Features of one clip whose video arrives in consecutive windows
    (:meth:`Backbone.window_reader`): :meth:`add` every window in order, then
    :meth:`features` once.

    This base runs the backbone on each window with that window's rows of the regions and
    concatenates the features: the whole clip's when its :attr:`Backbone.stream_frames` is
    set. A backbone whose features cross windows (:attr:`Backbone.streams_long_clips`)
    subclasses it: :meth:`read` keeps what the features need between windows (small
    per-frame inputs, a state carried to the next window), :meth:`features` makes them.
    """

    def __init__(self, backbone: Backbone, roi: Roi | None) -> None:
        self.backbone = backbone
        self.roi = roi  # the whole clip's regions
        self.start = 0  # frames read so far: the index of the next window's first frame
        self._parts: list[np.ndarray] = []

    def add(self, window: Clip) -> None:
        """Read the clip's next window (``(n, H, W, 3)`` frames, as decoded for the
        backbone: :func:`avdd.media.stream_video`)."""
        self.read(window, window_roi(self.roi, self.start, window.num_frames))
        self.start += window.num_frames

    def read(self, window: Clip, roi: Roi | None) -> None:
        """One window with its own rows of the regions (``roi``: n rows)."""
        self._parts.append(np.asarray(self.backbone(window, roi), np.float32))

    def features(self) -> np.ndarray:
        """``(T, dim)`` float32 features of every frame read, ``T`` the clip's frames."""
        return np.concatenate(self._parts)


@dataclass(frozen=True)
class BackboneInfo:
    """What :func:`get_backbone` would build, read without building it (see :func:`describe`).

    Attributes:
        spec: the spec string it describes (``"wav2vec2-tiny-random:seed=1"``).
        name: registry name, as :attr:`Backbone.name`.
        family: the class ``get_backbone(spec)`` returns an instance of (e.g. to ask whether
            it can batch clips, or whether it is a CLIP backbone).
        modality: ``"audio"``, ``"visual"`` or ``"audio-visual"``.
        weights: ``"handcrafted"``, ``"random"`` or ``"pretrained"``.
        version: :attr:`Backbone.version`.
        dim: feature size D. fps: output frame rate in Hz.
        config: exactly ``get_backbone(spec).config()``: feature stores are keyed by a hash of
            it, so it must never differ from the built backbone's.
        uses_mouth_roi, landmarks, roi_recipe: whether the runner passes the cached mouth
            ROI, from which landmark source and by which crop recipe
            (:attr:`Backbone.uses_mouth_roi`).
    """

    spec: str
    name: str
    family: type[Backbone]
    modality: str
    weights: str
    version: int
    dim: int
    fps: float
    config: dict[str, Any]
    uses_mouth_roi: bool
    landmarks: str
    roi_recipe: str = "avhubert"

    @property
    def needs_audio(self) -> bool:
        return self.modality in HEARS

    @property
    def needs_video(self) -> bool:
        return self.modality in SEES

    @classmethod
    def of(cls, backbone: Backbone, spec: str | None = None) -> BackboneInfo:
        """The description of a built (or unbuilt) backbone; ``spec`` defaults to its name.

        The config of a backbone registered from an entry point (:mod:`avdd.backbones.plugins`)
        also holds ``plugin``: its distribution's name and version and a hash of its code, so
        that a changed plugin never reads the features of its older self (the package's own
        backbones are keyed by :attr:`Backbone.version` alone)."""
        config = backbone.config()
        origin = plugin_origin(backbone)
        if origin is not None:
            config = {**config, "plugin": origin.key()}
        return cls(spec=backbone.name if spec is None else spec, name=backbone.name,
                   family=type(backbone), modality=backbone.modality, weights=backbone.weights,
                   version=backbone.version, dim=backbone.dim, fps=backbone.fps,
                   config=config, uses_mouth_roi=backbone.uses_mouth_roi,
                   landmarks=backbone.landmarks, roi_recipe=backbone.roi_recipe)


@dataclass(frozen=True)
class PluginOrigin:
    """Where a backbone registered from the ``avdd.backbones`` entry-point group comes from.

    Attributes:
        distribution, version: the installed distribution that declares the entry point.
        entry_point: its declaration, ``"NAME = module:Class"``.
        code: hash of the entry point's module and of the modules of its own top-level package
            that it imports (:func:`avdd.provenance.code_fingerprints`: docstrings and comments
            excluded); None when the module has no Python source.
    """

    distribution: str
    version: str
    entry_point: str
    code: str | None

    def key(self) -> dict[str, Any]:
        """What enters the backbone's config, hence its feature stores' key."""
        return {"distribution": self.distribution, "version": self.version, "code": self.code}

    def __str__(self) -> str:
        return f"{self.distribution} {self.version}"


@dataclass(frozen=True)
class _Entry:
    """A registered backbone: how to build it, and how to describe it without building."""

    build: Callable[..., Backbone]
    unbuilt: Callable[..., Backbone]
    origin: PluginOrigin | None = None  # None: a backbone of avdd itself


_REGISTRY: dict[str, _Entry] = {}


def _where(name: str) -> str:
    """Who registered ``name``, for a clash message: a plugin's distribution or avdd's class."""
    entry = _REGISTRY[name]
    if entry.origin is not None:
        return f"backbone {name!r} of plugin {entry.origin} ({entry.origin.entry_point})"
    build = entry.build
    where = f"{build.__module__}.{build.__qualname__}"
    if build.__module__.split(".")[0] != "avdd":  # register() called by the plugin itself
        return f"backbone {name!r} registered directly (not by an entry point) by {where}"
    return f"the built-in backbone {name!r} ({where})"


def register(name: str, *, unbuilt: Callable[..., Backbone] | None = None,
             origin: PluginOrigin | None = None
             ) -> Callable[[Callable[..., Backbone]], Callable[..., Backbone]]:
    """Class/function decorator adding a backbone factory under ``name``.

    Args:
        unbuilt: takes the factory's arguments and returns an instance carrying every
            attribute :class:`BackboneInfo` reads (``config()`` included) but no network and no
            weights: what :func:`describe` uses. Defaults to the decorated class's own
            ``unbuilt`` classmethod; a function factory must pass one.
        origin: set by the entry-point loader (:func:`avdd.backbones.plugins.load_plugins`)
            for a backbone from another distribution; it becomes part of the config.
    Raises:
        ValueError: ``name`` is taken (naming both registrations). TypeError: no ``unbuilt``
            for this factory.
    """

    def deco(factory: Callable[..., Backbone]) -> Callable[..., Backbone]:
        if name in _REGISTRY:
            if origin is None:
                raise ValueError(f"backbone {name!r} registered twice")
            raise ValueError(f"backbone {name!r} of plugin {origin} ({origin.entry_point}) "
                             f"clashes with {_where(name)}: give the entry point another name")
        how = unbuilt
        # Only a classmethod of the class itself: one inherited from the parent family would
        # describe the parent (another signature, other weights).
        if how is None and isinstance(factory, type) and "unbuilt" in vars(factory):
            how = factory.unbuilt
        if how is None:
            raise TypeError(f"backbone {name!r}: give register(..., unbuilt=FN) or define a "
                            "classmethod `unbuilt` on the class, so that describe() can "
                            "describe it without building its network")
        # describe() must accept exactly the specs get_backbone() accepts.
        if _parameters(how) != _parameters(factory):
            raise TypeError(f"backbone {name!r}: unbuilt{inspect.signature(how)} and the "
                            f"factory{inspect.signature(factory)} must take the same arguments")
        _REGISTRY[name] = _Entry(factory, how, origin)
        return factory

    return deco


def _parameters(fn: Callable[..., Any]) -> list[tuple[str, Any, Any]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


def _parse_value(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _spec_parts(spec: str) -> tuple[str, dict[str, str]]:
    """``"NAME:key=value,..."`` → ``(NAME, {key: raw text})``."""
    if not isinstance(spec, str):
        raise ValueError(f"a backbone spec is a string such as 'logmel' or "
                         f"'wav2vec2:model=DIR', not {type(spec).__name__} {spec!r}")
    name, _, rest = spec.partition(":")
    kwargs = {}
    for part in filter(None, rest.split(",")):
        key, eq, value = part.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"backbone spec {spec!r}: expected NAME:key=value[,key=value]")
        kwargs[key.strip()] = value.strip()
    return name.strip(), kwargs


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"NAME"`` or ``"NAME:key=value,key=value"`` → ``(NAME, {key: value})``.

    A spec string lets a notebook parameter or a CLI flag name a backbone *with* its
    arguments, e.g. ``"wav2vec2:model=/ckpt/xls-r-2b"`` (numbers are parsed as int/float;
    :func:`get_backbone` and :func:`describe` then check every value against the backbone's
    typed arguments).
    """
    name, raw = _spec_parts(spec)
    return name, {k: _parse_value(v) for k, v in raw.items()}


_TRUE, _FALSE = ("true", "yes", "1"), ("false", "no", "0")


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _scalar(hint: Any) -> type | None:
    """The spec-settable type of an annotation: ``bool``, ``int``, ``float`` or ``str`` (the
    first of them in a union such as ``int | None`` or ``str | Path``); None for anything a
    spec string cannot express (config objects, tuples, ``Any``)."""
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union,
                                                                    types.UnionType) else (hint,)
    for t in (bool, int, float, str):
        if t in options:
            return t
    return str if Path in options else None


def _cast(where: str, key: str, text: str, hint: Any) -> Any:
    """One spec value (raw text) as its argument's type, or a ValueError naming the key, its
    type and what to give."""
    kind = _scalar(hint)
    if kind is None:
        raise ValueError(f"{where}: {key} ({_type_name(hint)}) cannot be set in a spec string; "
                         f"pass it from Python, get_backbone(name, {key}=...)")
    if text == "":
        raise ValueError(f"{where}: {key}= is empty; give a {kind.__name__} value")
    if kind is bool:
        if text.lower() not in _TRUE + _FALSE:
            raise ValueError(f"{where}: {key}={text!r} is not a boolean; give true or false")
        return text.lower() in _TRUE
    if kind is int:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{where}: {key}={text!r} is not an integer (int)") from None
    if kind is float:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{where}: {key}={text!r} is not a number (float)") from None
        if not math.isfinite(value):
            raise ValueError(f"{where}: {key}={text!r} must be a finite number")
        return value
    return text


def _arguments(name: str, spec: str, raw: dict[str, str],
               given: dict[str, Any]) -> dict[str, Any]:
    """The factory's keyword arguments from a spec's raw values (checked and cast against its
    typed signature) and ``given`` Python values (passed as they are). Unknown keys, values of
    the wrong type, empty values and missing required arguments are ValueErrors naming the
    spec, the key, its type and what the backbone takes."""
    factory = _entry(name).build
    params = {p.name: p for p in inspect.signature(factory).parameters.values()
              if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    hints = typing.get_type_hints(factory.__init__ if isinstance(factory, type) else factory)
    takes = ", ".join(f"{k} ({_type_name(hints.get(k, Any))})" for k in params
                      if _scalar(hints.get(k, Any)) is not None) or "no arguments"
    where = f"backbone spec {spec!r}"
    out: dict[str, Any] = {}
    for key, text in raw.items():
        if key not in params:
            raise ValueError(f"{where}: {name} has no argument {key!r}; it takes {takes}")
        out[key] = _cast(where, key, text, hints.get(key, Any))
    for key, value in given.items():
        if key not in params:
            raise ValueError(f"{where}: {name} has no argument {key!r}; it takes {takes}")
        out[key] = value
    missing = [k for k, p in params.items() if p.default is p.empty and k not in out]
    if missing:
        k = missing[0]
        raise ValueError(f"{where}: {name} needs {k}=... ({_type_name(hints.get(k, Any))}), "
                         f"e.g. '{name}:{k}=/path/to/{k}'")
    return out


#: Entry points of the ``avdd.backbones`` group that could not be registered: name -> why
#: (:func:`note_unloaded`), so that asking for one says why it is missing.
_UNLOADED: dict[str, str] = {}


def note_unloaded(name: str, why: str) -> None:
    """Record that the plugin backbone ``name`` was not registered, and why (one line)."""
    _UNLOADED[name] = why


def _entry(name: str) -> _Entry:
    if name not in _REGISTRY:
        if name in _UNLOADED:
            raise KeyError(f"backbone {name!r} is not available: {_UNLOADED[name]}")
        raise KeyError(f"unknown backbone {name!r}; available: {', '.join(available())}")
    return _REGISTRY[name]


def plugin_origin(backbone: Backbone | str) -> PluginOrigin | None:
    """The entry point a backbone (built, or a registry name) was registered from; None for
    avdd's own backbones."""
    name = backbone if isinstance(backbone, str) else backbone.name
    entry = _REGISTRY.get(name)
    return None if entry is None else entry.origin


def _named(name: str, built: Backbone) -> Backbone:
    """A plugin's backbone must call itself by its entry point's name: its stores, results and
    :func:`plugin_origin` go by ``Backbone.name``."""
    origin = _REGISTRY[name].origin
    if origin is not None and getattr(built, "name", None) != name:
        raise ValueError(f"backbone {name!r} of plugin {origin}: its instance is named "
                         f"{getattr(built, 'name', None)!r}; set self.name = {name!r} in "
                         "__init__ and unbuilt (the name of its entry point)")
    return built


def get_backbone(name: str, **kwargs: Any) -> Backbone:
    """Instantiate the backbone registered as ``name`` (a :func:`parse_spec` string)."""
    spec = name
    name, raw = _spec_parts(spec)
    return _named(name, _entry(name).build(**_arguments(name, spec, raw, kwargs)))


def describe(spec: str) -> BackboneInfo:
    """What ``get_backbone(spec)`` would build, without building any network or loading weights.

    Reads at most configuration files (a transformers ``config.json`` and preprocessor
    config, from a directory, the hub cache or the shipped copies) and, for backbones whose
    architecture is inferred from a checkpoint (FSFM, BRAVEn, Auto-AVSR, AV-HuBERT), the tensor
    *shapes* of that checkpoint (memory-mapped or from the safetensors header; the weights are
    not read). A hub name that is not cached fails as :func:`get_backbone` does
    (:class:`~avdd.backbones.hub.WeightsNotFound`, at once when ``HF_HUB_OFFLINE=1``).

    Cached per spec string for the life of the process (a checkpoint file replaced under the
    same path afterwards is not re-read; :func:`clear_descriptions` forgets). Each call returns
    its own copy of ``config``, so a caller editing it cannot change what others get.

    Raises:
        KeyError: unknown name (the message of :func:`get_backbone`). ValueError: a malformed
            spec, an argument the backbone does not take, a value of the wrong type or empty,
            a missing required one (such as ``checkpoint``), each named with its type.
            WeightsNotFound / CheckpointError: as :func:`get_backbone`.
    """
    info = _described(spec)
    return dataclasses.replace(info, config=copy.deepcopy(info.config))


@functools.lru_cache(maxsize=None)
def _described(spec: str) -> BackboneInfo:
    name, raw = _spec_parts(spec)
    unbuilt = _named(name, _entry(name).unbuilt(**_arguments(name, spec, raw, {})))
    return BackboneInfo.of(unbuilt, spec)


def clear_descriptions() -> None:
    """Forget every cached :func:`describe` (e.g. after replacing a checkpoint file)."""
    _described.cache_clear()


def available() -> list[str]:
    return sorted(_REGISTRY)
