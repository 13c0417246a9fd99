"""CLIP image features of every full frame (the paper's CLIP ViT-L/14 row), 25 Hz.

Each frame goes through CLIP's own preprocessing (``CLIPImageProcessor``, PIL backend: shortest
side → 224 bicubic, centre crop 224, CLIP mean/std) and the vision tower; the feature is the
post-projection image embedding (``image_embeds``, 768-d for ViT-L/14), what the authors' code
takes (``get_image_features``). :meth:`Clip.patch_grid` maps the patch tokens through the same
``post_layernorm`` + ``visual_projection`` so a probe trained on frame embeddings can be applied
to every patch (spatial explanations).

Registry names: ``clip`` (pretrained, ``model=`` hub name or directory), ``clip-random``
(config only, seeded), ``clip-tiny-random`` (32-d, 2 layers, 56² images, 16-d embedding).
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

DEFAULT_MODEL = "openai/clip-vit-large-patch14"
BATCH_FRAMES = 32  # frames per forward pass: bounds memory on long clips, not the result


def tiny_config() -> Any:
    """The tiny config of BACKBONES.md (hidden 32, 2 layers, patch 14 on 56², 16-d output)."""
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                            num_attention_heads=4, image_size=56, patch_size=14,
                            projection_dim=16)


def processor_for(image_size: int) -> Any:
    """CLIP's preprocessing at ``image_size`` (its defaults are for 224)."""
    from transformers import CLIPImageProcessorPil

    return CLIPImageProcessorPil(size={"shortest_edge": image_size},
                                 crop_size={"height": image_size, "width": image_size})


@register("clip")
class CLIPFrames(Backbone):
    """CLIP vision tower → one ``projection_dim`` vector per frame: ``(T, 768)`` at 25 Hz."""

    modality = "visual"
    weights = "pretrained"

    def __init__(self, model: str = DEFAULT_MODEL, *, fps: float = 25.0,
                 batch_frames: int = BATCH_FRAMES, name: str = "clip") -> None:
        from transformers import CLIPImageProcessorPil, CLIPVisionModelWithProjection

        self.source = str(model)
        self.name = name
        net = from_pretrained(CLIPVisionModelWithProjection.from_pretrained, self.source,
                              "CLIP vision model")
        proc = from_pretrained(CLIPImageProcessorPil.from_pretrained, self.source,
                               "CLIP image processor")
        self._setup(net, proc, fps, batch_frames)

    @classmethod
    def unbuilt(cls, model: str = DEFAULT_MODEL, *, fps: float = 25.0,
                batch_frames: int = BATCH_FRAMES, name: str = "clip") -> CLIPFrames:
        """What ``cls(model, ...)`` describes itself by, from the vision config only (no
        network, no weights, no processor): for :func:`avdd.backbones.describe`."""
        from transformers import CLIPVisionConfig

        self = cls._shell()
        self.source = str(model)
        self.name = name
        # The config class CLIPVisionModelWithProjection.from_pretrained reads it with.
        config = from_pretrained(CLIPVisionConfig.from_pretrained, self.source, "CLIP config")
        self._describe(config, fps, batch_frames)
        return self

    def _setup(self, net: torch.nn.Module, processor: Any, fps: float,
               batch_frames: int) -> None:
        self.net = frozen(net)
        self.processor = processor
        self._describe(net.config, fps, batch_frames)

    def _describe(self, config: Any, fps: float, batch_frames: int) -> None:
        """Every attribute :meth:`config` and the description read, from the vision config."""
        self.fps = fps
        self.batch_frames = batch_frames
        self.dim = int(config.projection_dim)
        self.image_size = int(config.image_size)
        self.grid = self.image_size // int(config.patch_size)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version,
                "model": self.source, "weights": self.weights,
                "dim": self.dim, "fps": self.fps, "input": "full-frame",
                "image_size": self.image_size,
                "feature": "image_embeds"}

    def feature_rate(self, clip: Clip) -> float:
        # One row per decoded frame: a natively decoded clip's features are at its own rate.
        return float(clip.fps) if clip.native else self.fps

    @property
    def stream_frames(self) -> int:
        # Frames are independent and go through the model batch_frames at a time: pieces of
        # multiples of batch_frames make the very forward passes of the whole clip.
        return self.batch_frames

    @property
    def frame_resize(self):
        # CLIP's own shortest-edge resize, done as frames are decoded (same bits).
        return shortest_edge_resize(self.processor)

    def forward_batches(self, video: np.ndarray) -> Any:
        """Yield the model outputs (``CLIPVisionModelWithProjection`` outputs: ``image_embeds``
        ``(B, dim)``, ``last_hidden_state`` ``(B, 1 + g², width)``) of ``(T, H, W, 3)`` uint8
        frames through CLIP's own preprocessing, ``batch_frames`` frames at a time (B); the
        caller decides on gradients (Grad-CAM needs them)."""
        for i in range(0, len(video), self.batch_frames):
            # channels_last stated: inferring it fails on frames only 3 pixels wide or high
            pixels = self.processor(images=list(video[i:i + self.batch_frames]),
                                    input_data_format="channels_last",
                                    return_tensors="pt")["pixel_values"]
            yield self.net(pixel_values=pixels.float().to(self.device))

    def __call__(self, clip: Clip, roi: Roi | None = None) -> np.ndarray:
        """``(T, H, W, 3)`` frames → ``(T, dim)`` float32 image embeddings."""
        if clip.num_frames == 0:
            return np.zeros((0, self.dim), np.float32)
        with torch.inference_mode():
            out = [o.image_embeds for o in self.forward_batches(clip.video)]
        return torch.cat(out).float().cpu().numpy()

    def patch_grid(self, clip: Clip, roi: Roi | None = None) -> np.ndarray:
        """Patch tokens in the embedding space: ``(T, g, g, dim)`` float32, g = 224 / 14 = 16.

        ``last_hidden_state[:, 1:]`` (the CLS token dropped) → ``post_layernorm`` →
        ``visual_projection``, the same maps the CLS token goes through to ``image_embeds``.
        """
        vision = self.net.vision_model
        grids = []
        with torch.inference_mode():
            for o in self.forward_batches(clip.video):
                patches = vision.post_layernorm(o.last_hidden_state[:, 1:])
                tokens = self.net.visual_projection(patches)
                grids.append(tokens.reshape(len(tokens), self.grid, self.grid, self.dim))
        if not grids:
            return np.zeros((0, self.grid, self.grid, self.dim), np.float32)
        return torch.cat(grids).float().cpu().numpy()


@register("clip-random")
class CLIPFramesRandom(RandomInit, CLIPFrames):
    """The vision architecture of ``model`` (config only) with weights seeded by ``seed``."""

    weights = "random"

    def __init__(self, model: str = DEFAULT_MODEL, *, seed: int = 0, config: Any = None,
                 fps: float = 25.0, batch_frames: int = BATCH_FRAMES,
                 name: str = "clip-random") -> None:
        from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

        config, net = self._random_net(model, config, seed, name,
                                       CLIPVisionConfig.from_pretrained,
                                       CLIPVisionModelWithProjection, "CLIP config")
        self._setup(net, processor_for(int(config.image_size)), fps, batch_frames)

    @classmethod
    def unbuilt(cls, model: str = DEFAULT_MODEL, *, seed: int = 0, config: Any = None,
                fps: float = 25.0, batch_frames: int = BATCH_FRAMES,
                name: str = "clip-random") -> CLIPFramesRandom:
        """``cls(...)`` without its network (the config is resolved as the build resolves it)."""
        from transformers import CLIPVisionConfig

        self = cls._shell()
        config = self._random_arch(model, config, seed, name, CLIPVisionConfig.from_pretrained,
                                   "CLIP config")
        self._describe(config, fps, batch_frames)
        return self


def _tiny_unbuilt(*, seed: int = 0, fps: float = 25.0) -> CLIPFramesRandom:
    return CLIPFramesRandom.unbuilt(config=tiny_config(), seed=seed, fps=fps,
                                    name="clip-tiny-random")


@register("clip-tiny-random", unbuilt=_tiny_unbuilt)
def clip_tiny_random(*, seed: int = 0, fps: float = 25.0) -> CLIPFramesRandom:
    """Tiny random CLIP vision tower (56² input, 4×4 patch grid, 16-d embedding)."""
    return CLIPFramesRandom(config=tiny_config(), seed=seed, fps=fps, name="clip-tiny-random")
