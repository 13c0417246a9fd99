"""VideoMAE features of full frames in non-overlapping 16-frame windows (the paper's
VideoMAE-large row), **12.5 Hz**.

A window of ``num_frames`` (16) frames goes through ``VideoMAEImageProcessor`` (PIL backend:
shortest side 224, centre crop 224, ImageNet mean/std) and ``VideoMAEModel``; its tokens
``(num_frames / tubelet, 14·14, 1024)`` = (8, 196, 1024) are averaged over space → 8 vectors
per 16 frames, one per 2-frame tubelet, hence 25 / 2 = 12.5 Hz.

Trailing partial window (``trailing``):
- ``"drop"`` (default): the partial window is dropped, as the paper's code does
  (``danoneata/veridiq`` ``fe_video_mae.py``: windows start at 0, 16, ... while a whole window
  fits), so T = 8 · ⌊T_frames / 16⌋; a clip shorter than one window has no feature, and
  :meth:`VideoMAE.__call__` says so (the runner records it as a failed video; upstream
  would have stored an empty array);
- ``"pad"``: the last real frame is repeated up to a full window and only the output steps
  whose tubelets contain a real frame are kept, so T = ceil(T_frames / tubelet) and every
  video frame is covered (the last step may mix a real frame with its copy).

Frames are taken as decoded: a clip read at its native rate (``read_clip(fps=None)``, as the
paper's decord reader did) gives features at half that rate (:meth:`VideoMAE.feature_rate`).

Registry names: ``videomae`` (pretrained, ``model=`` hub name or directory), ``videomae-random``
(config only, seeded), ``videomae-tiny-random`` (32² input, 4-frame windows, 32-d).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from avdd.backbones.base import Backbone, register
from avdd.backbones.hub import RandomInit, from_pretrained, frozen
from avdd.backbones.layers.frames import shortest_edge_resize
from avdd.media import Clip
from avdd.roi.regions import Roi

DEFAULT_MODEL = "MCG-NJU/videomae-large"
BATCH_WINDOWS = 4  # windows per forward pass: bounds memory (16 × 224² frames each)


def tiny_config() -> Any:
    """The tiny config of BACKBONES.md (32² input, 4-frame windows, tubelet 2, hidden 32)."""
    from transformers import VideoMAEConfig

    return VideoMAEConfig(image_size=32, patch_size=16, num_frames=4, tubelet_size=2,
                          hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                          intermediate_size=64)


def processor_for(image_size: int) -> Any:
    """VideoMAE's preprocessing at ``image_size`` (its defaults are for 224)."""
    from transformers import VideoMAEImageProcessorPil

    return VideoMAEImageProcessorPil(size={"shortest_edge": image_size},
                                     crop_size={"height": image_size, "width": image_size})


def windows(n_frames: int, window: int, tubelet: int,
            trailing: str = "drop") -> list[tuple[np.ndarray, int]]:
    """Frame indices of each window and how many of its output steps to keep.

    Returns:
        ``[(idx, keep), ...]``: ``idx`` ``(window,)`` int frame indices (the last real frame
        repeated in a padded window), ``keep`` the number of tubelet steps covering real frames.
    """
    if trailing not in ("pad", "drop"):
        raise ValueError(f"trailing must be 'pad' or 'drop', got {trailing!r}")
    out = []
    for start in range(0, n_frames, window):
        real = min(window, n_frames - start)
        if real < window and trailing == "drop":
            break
        idx = np.minimum(np.arange(start, start + window), n_frames - 1)
        out.append((idx, -(-real // tubelet)))
    return out


@register("videomae")
class VideoMAE(Backbone):
    """VideoMAE encoder → ``(8 · ⌊T / 16⌋, hidden)`` at 12.5 Hz (1024-d for large)."""

    modality = "visual"
    weights = "pretrained"
    version = 2  # 2: the trailing partial window is dropped by default (the paper's code)

    def __init__(self, model: str = DEFAULT_MODEL, *, trailing: str = "drop",
                 video_fps: float = 25.0, name: str = "videomae") -> None:
        from transformers import VideoMAEImageProcessorPil, VideoMAEModel

        self.source = str(model)
        self.name = name
        net = from_pretrained(VideoMAEModel.from_pretrained, self.source, "VideoMAE model")
        proc = from_pretrained(VideoMAEImageProcessorPil.from_pretrained, self.source,
                               "VideoMAE image processor")
        self._setup(net, proc, trailing, video_fps)

    @classmethod
    def unbuilt(cls, model: str = DEFAULT_MODEL, *, trailing: str = "drop",
                video_fps: float = 25.0, name: str = "videomae") -> VideoMAE:
        """What ``cls(model, ...)`` describes itself by, from ``config.json`` only (no
        network, no weights, no processor): for :func:`avdd.backbones.describe`."""
        from transformers import VideoMAEConfig

        self = cls._shell()
        self.source = str(model)
        self.name = name
        config = from_pretrained(VideoMAEConfig.from_pretrained, self.source, "VideoMAE config")
        self._describe(config, trailing, video_fps)
        return self

    def _setup(self, net: torch.nn.Module, processor: Any, trailing: str,
               video_fps: float) -> None:
        self.net = frozen(net)
        self.processor = processor
        self._describe(net.config, trailing, video_fps)

    def _describe(self, cfg: Any, trailing: str, video_fps: float) -> None:
        """Every attribute :meth:`config` and the description read, from the model config."""
        self.trailing = trailing
        self.window = int(cfg.num_frames)
        self.tubelet = int(cfg.tubelet_size)
        self.steps = self.window // self.tubelet
        self.dim = int(cfg.hidden_size)
        self.image_size = int(cfg.image_size)
        self.video_fps = video_fps
        self.fps = video_fps / self.tubelet  # 12.5 Hz for 25 fps video and 2-frame tubelets
        windows(0, self.window, self.tubelet, trailing)  # validates ``trailing`` early

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version,
                "model": self.source, "weights": self.weights,
                "dim": self.dim, "fps": self.fps, "window": self.window,
                "tubelet": self.tubelet, "trailing": self.trailing,
                "image_size": self.image_size, "pool": "spatial-mean"}

    def _embed(self, clips: list[np.ndarray]) -> torch.Tensor:
        """``n`` windows of ``(window, H, W, 3)`` uint8 → ``(n, steps, hidden)``."""
        pixels = self.processor(clips, input_data_format="channels_last",
                                return_tensors="pt")["pixel_values"].float().to(self.device)
        tokens = self.net(pixel_values=pixels).last_hidden_state  # (n, steps·g·g, hidden)
        return tokens.reshape(len(clips), self.steps, -1, self.dim).mean(dim=2)

    @property
    def min_frames(self) -> int:
        # One whole window: under "pad" a shorter clip would be scored on repeated frames.
        return self.window

    @property
    def stream_frames(self) -> int:
        # Windows start at multiples of `window` and go through the model BATCH_WINDOWS at a
        # time: pieces of multiples of both make the very forward passes of the whole clip
        # (a tail shorter than min_frames is merged into the piece before it).
        return self.window * BATCH_WINDOWS

    @property
    def frame_resize(self):
        # VideoMAE's own shortest-edge resize, done as frames are decoded (same bits).
        return shortest_edge_resize(self.processor)

    def feature_rate(self, clip: Clip) -> float:
        # One row per tubelet of the frames as decoded (native or resampled).
        return float(clip.fps) / self.tubelet if clip.native else self.fps

    def __call__(self, clip: Clip, roi: Roi | None = None) -> np.ndarray:
        """``(T, H, W, 3)`` frames → ``(window / tubelet · ⌊T / window⌋, hidden)`` float32
        (``"drop"``; ``"pad"``: ``(ceil(T / tubelet), hidden)``).

        Raises:
            ValueError: a resampled clip at another rate than ``video_fps``; with ``"drop"``,
                a clip shorter than one window (no feature at all).
        """
        if clip.fps != self.video_fps and not clip.native:
            raise ValueError(f"{self.name} expects {self.video_fps} fps video, got {clip.fps}")
        if self.trailing == "drop" and clip.num_frames < self.window:
            raise ValueError(f"{clip.path or 'clip'}: {clip.num_frames} frames, fewer than one "
                             f"{self.window}-frame window: no VideoMAE feature (the paper's code "
                             "drops partial windows; trailing='pad' keeps them)")
        plan = windows(clip.num_frames, self.window, self.tubelet, self.trailing)
        feats = []
        with torch.inference_mode():
            for i in range(0, len(plan), BATCH_WINDOWS):
                batch = plan[i:i + BATCH_WINDOWS]
                emb = self._embed([clip.video[idx] for idx, _ in batch])
                feats += [e[:keep] for e, (_, keep) in zip(emb, batch, strict=True)]
        if not feats:
            return np.zeros((0, self.dim), np.float32)
        return torch.cat(feats).float().cpu().numpy()


@register("videomae-random")
class VideoMAERandom(RandomInit, VideoMAE):
    """The architecture of ``model`` (config only) with weights seeded by ``seed``."""

    weights = "random"

    def __init__(self, model: str = DEFAULT_MODEL, *, seed: int = 0, config: Any = None,
                 trailing: str = "drop", video_fps: float = 25.0,
                 name: str = "videomae-random") -> None:
        from transformers import VideoMAEConfig, VideoMAEModel

        config, net = self._random_net(model, config, seed, name, VideoMAEConfig.from_pretrained,
                                       VideoMAEModel, "VideoMAE config")
        self._setup(net, processor_for(int(config.image_size)), trailing, video_fps)

    @classmethod
    def unbuilt(cls, model: str = DEFAULT_MODEL, *, seed: int = 0, config: Any = None,
                trailing: str = "drop", video_fps: float = 25.0,
                name: str = "videomae-random") -> VideoMAERandom:
        """``cls(...)`` without its network (the config is resolved as the build resolves it)."""
        from transformers import VideoMAEConfig

        self = cls._shell()
        config = self._random_arch(model, config, seed, name, VideoMAEConfig.from_pretrained,
                                   "VideoMAE config")
        self._describe(config, trailing, video_fps)
        return self


def _tiny_unbuilt(*, seed: int = 0, trailing: str = "drop") -> VideoMAERandom:
    return VideoMAERandom.unbuilt(config=tiny_config(), seed=seed, trailing=trailing,
                                  name="videomae-tiny-random")


@register("videomae-tiny-random", unbuilt=_tiny_unbuilt)
def videomae_tiny_random(*, seed: int = 0, trailing: str = "drop") -> VideoMAERandom:
    """Tiny random VideoMAE (4-frame windows of 32² frames, 32-d, 12.5 Hz)."""
    return VideoMAERandom(config=tiny_config(), seed=seed, trailing=trailing,
                          name="videomae-tiny-random")
