"""FSFM face features (the paper's FSFM ViT-B/16 row), one vector per frame, 25 Hz.

Input (as the paper's crops, :mod:`avdd.roi.faces`): per frame, the first face of dlib's HOG
detector on the RGB frame, FaceForensics++'s integer square of 1.3 × the longer box side
(shifted and shrunk to fit the frame, never padded), resized to 224² (PIL bilinear, aspect not
kept), ImageNet mean/std; a frame without a face is resized whole. ``faces="auto"`` takes a
dataset's own face boxes when it has them (the synthetic benchmark), through the same rule.

Weights: a local checkpoint in the FSFM release layout, ``{'model': state_dict, 'args':
Namespace, ...}`` with timm ViT key names, converted into a transformers ``ViTModel`` (no timm
or torchvision here): ``blocks.N.attn.qkv`` is split into q/k/v. The file is read with
``torch.load(weights_only=True)``; only ``argparse.Namespace`` is allow-listed, so a file that
pickles anything else is refused instead of executed. ``.safetensors`` files work too.

Feature (MAE-style global pool, which FSFM fine-tuning inherits [inferred]): with ``fc_norm``
in the checkpoint, ``fc_norm(mean of patch tokens)`` of the last block; with only ``norm``
(pretraining file), ``mean of norm(patch tokens)``. 768-d for ViT-B.

Registry names: ``fsfm`` (``checkpoint=`` path), ``fsfm-random`` (ViT-B/16, seeded),
``fsfm-tiny-random`` (32² input, 32-d, 2 layers).
"""

from __future__ import annotations

import argparse
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avdd.backbones.base import Backbone, register
from avdd.backbones.checkpoints import CheckpointError, load_weights_only, safetensors_shapes
from avdd.backbones.hub import arch_dict, frozen, seeded
from avdd.media import Clip
from avdd.roi.faces import BOX_SCALE, FACE_SOURCES
from avdd.roi.regions import Roi

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: What the crop rule is, recorded in the config (the store key): detector box, FF++ integer
#: square, no padding, PIL bilinear.
FACE_CROP = "ffpp-int-square-no-pad/bilinear"
BATCH_FRAMES = 32
SAFE_GLOBALS = [argparse.Namespace]  # what the FSFM release pickles besides tensors


def vit_config(dim: int = 768, depth: int = 12, heads: int = 12, image_size: int = 224,
               patch_size: int = 16) -> Any:
    """A timm-equivalent ViT config (LayerNorm eps 1e-6, exact GELU, qkv bias)."""
    from transformers import ViTConfig

    return ViTConfig(hidden_size=dim, num_hidden_layers=depth, num_attention_heads=heads,
                     intermediate_size=4 * dim, image_size=image_size, patch_size=patch_size,
                     layer_norm_eps=1e-6, hidden_act="gelu", qkv_bias=True)


def load_release_state(path: str | Path, *, lazy: bool = False) -> dict[str, torch.Tensor]:
    """The encoder state dict (timm names) of an FSFM release file, read without executing
    arbitrary pickled code.

    ``lazy``: for a caller that reads only the tensors' shapes (:func:`avdd.backbones.describe`):
    a ``.safetensors`` file gives meta tensors, a zip-format file is memory-mapped, so the
    weights themselves are not read.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file. Download the FSFM weights "
                              "(e.g. from the Wolowolo/fsfm-3c release) and pass the file path.")
    if path.suffix == ".safetensors":
        if lazy:
            return safetensors_shapes(path)
        from safetensors.torch import load_file

        return load_file(str(path))
    obj = load_weights_only(
        path, mmap=lazy and zipfile.is_zipfile(path), allow=SAFE_GLOBALS,
        advice="(only tensors and argparse.Namespace are read). If you trust the file, convert "
               "it once in a separate environment: torch.save({'model': torch.load(p, "
               "weights_only=False)['model']}, 'fsfm_clean.pth'), then pass the clean file.")
    state = obj.get("model", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or "patch_embed.proj.weight" not in state:
        raise CheckpointError(f"{path}: not an FSFM/timm ViT checkpoint (expected "
                              "{'model': state_dict} with 'patch_embed.proj.weight').")
    return {k.removeprefix("module."): v for k, v in state.items()}


_BLOCK = {"norm1": "layernorm_before", "norm2": "layernorm_after", "attn.proj": "attention.o_proj",
          "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2"}


def timm_to_vit(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """timm ViT names → transformers ``ViTModel`` names (5.x layout); decoder, projector,
    predictor and head keys are dropped. ``norm`` and ``fc_norm`` both go to ``layernorm``."""
    out = {"embeddings.cls_token": state["cls_token"],
           "embeddings.position_embeddings": state["pos_embed"],
           "embeddings.patch_embeddings.projection.weight": state["patch_embed.proj.weight"],
           "embeddings.patch_embeddings.projection.bias": state["patch_embed.proj.bias"]}
    final = "fc_norm" if "fc_norm.weight" in state else "norm"
    for p in ("weight", "bias"):
        out[f"layernorm.{p}"] = state[f"{final}.{p}"]
    for key, value in state.items():
        m = re.fullmatch(r"blocks\.(\d+)\.(.+)\.(weight|bias)", key)
        if not m:
            continue
        i, part, p = m.groups()
        if part == "attn.qkv":  # fused (3·D, D) → q, k, v in that order
            for name, chunk in zip("qkv", value.chunk(3, dim=0), strict=True):
                out[f"layers.{i}.attention.{name}_proj.{p}"] = chunk
        elif part in _BLOCK:
            out[f"layers.{i}.{_BLOCK[part]}.{p}"] = value
    return out


def infer_config(state: dict[str, torch.Tensor], heads: int | None = None) -> Any:
    """ViT config from the tensor shapes; heads are not stored, default dim / 64 (ViT-B: 12)."""
    dim, _, patch, _ = state["patch_embed.proj.weight"].shape
    side = int(round((state["pos_embed"].shape[1] - 1) ** 0.5))
    depth = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("blocks."))
    return vit_config(dim, depth, heads or max(1, dim // 64), side * patch, patch)


def _pool_of(state: dict[str, torch.Tensor]) -> str:
    """The feature's final norm: ``fc_norm`` when the file has one (fine-tuned), else ``norm``."""
    return "fc_norm" if "fc_norm.weight" in state else "norm"


def face_crops(video: np.ndarray, roi: Roi | None, size: int, scale: float = BOX_SCALE,
               faces: str = "auto") -> np.ndarray:
    """``(T, H, W, 3)`` uint8 → ``(T, size, size, 3)`` uint8 face crops (module docstring).

    Boxes: ``faces="auto"``: ``roi.face_box`` when the dataset annotates it (the synthetic
    benchmark), else dlib's detector; ``"annotation"`` or ``"dlib"`` force one
    (:func:`avdd.roi.faces.get_face_boxes`). A frame without a box is resized whole.
    """
    from avdd.roi.faces import face_crop, get_face_boxes

    boxes = get_face_boxes(faces, video, roi.face_box if roi is not None else None)
    out = np.empty((len(video), size, size, 3), np.uint8)
    for i, frame in enumerate(video):
        out[i] = face_crop(frame, boxes[i], size, scale)
    return out


@register("fsfm")
class FSFM(Backbone):
    """ViT on face crops → ``(T, dim)`` average-pooled tokens (768-d for ViT-B/16), 25 Hz."""

    modality = "visual"
    weights = "pretrained"
    version = 2  # 2: detector box (dlib, first face), FF++ integer square, bilinear

    def __init__(self, checkpoint: str | Path, *, heads: int | None = None,
                 mean: tuple[float, ...] = IMAGENET_MEAN, std: tuple[float, ...] = IMAGENET_STD,
                 fps: float = 25.0, faces: str = "auto", name: str = "fsfm") -> None:
        from transformers import ViTModel

        self.source = str(checkpoint)
        self.name = name
        state = load_release_state(checkpoint)
        config = infer_config(state, heads)
        net = ViTModel(config, add_pooling_layer=False)
        missing, unexpected = net.load_state_dict(timm_to_vit(state), strict=False)
        if missing or unexpected:
            raise CheckpointError(f"{checkpoint}: weights do not fit a ViT (missing {missing}, "
                                  f"unexpected {unexpected})")
        self._setup(net, _pool_of(state), mean, std, fps, faces)

    @classmethod
    def unbuilt(cls, checkpoint: str | Path, *, heads: int | None = None,
                mean: tuple[float, ...] = IMAGENET_MEAN, std: tuple[float, ...] = IMAGENET_STD,
                fps: float = 25.0, faces: str = "auto", name: str = "fsfm") -> FSFM:
        """What ``cls(checkpoint, ...)`` describes itself by, from the checkpoint's tensor
        *shapes* (the file is memory-mapped or its safetensors header read; no network is
        built, no weight read): for :func:`avdd.backbones.describe`."""
        self = cls._shell()
        self.source = str(checkpoint)
        self.name = name
        state = load_release_state(checkpoint, lazy=True)
        self._describe(infer_config(state, heads), _pool_of(state), mean, std, fps, faces)
        return self

    def _setup(self, net: torch.nn.Module, pool: str, mean: tuple[float, ...],
               std: tuple[float, ...], fps: float, faces: str) -> None:
        self._describe(net.config, pool, mean, std, fps, faces)
        self.net = frozen(net)

    def _describe(self, config: Any, pool: str, mean: tuple[float, ...],
                  std: tuple[float, ...], fps: float, faces: str) -> None:
        """Every attribute :meth:`config` and the description read, from the ViT config."""
        if pool not in ("fc_norm", "norm"):
            raise ValueError(f"pool must be 'fc_norm' or 'norm', got {pool!r}")
        if faces not in FACE_SOURCES:
            raise ValueError(f"faces must be one of {FACE_SOURCES}, got {faces!r}")
        self.faces = faces
        self.pool = pool
        self.mean, self.std = tuple(mean), tuple(std)
        self.fps = fps
        self.dim = int(config.hidden_size)
        self.image_size = int(config.image_size)
        self.heads = int(config.num_attention_heads)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version,
                "checkpoint": self.source, "weights": self.weights,
                "dim": self.dim, "fps": self.fps, "image_size": self.image_size,
                "heads": self.heads, "pool": self.pool,
                "box_scale": BOX_SCALE, "faces": self.faces, "face_crop": FACE_CROP,
                "mean": self.mean, "std": self.std}

    def feature_rate(self, clip: Clip) -> float:
        # One row per decoded frame: a natively decoded clip's features are at its own rate.
        return float(clip.fps) if clip.native else self.fps

    @property
    def stream_frames(self) -> int:
        # Each frame's box and crop are its own (dlib per frame, or its annotation row), and
        # frames go through the ViT BATCH_FRAMES at a time: pieces of multiples of
        # BATCH_FRAMES make the very forward passes of the whole clip. A piece's Roi must be
        # its own rows (avdd.roi.regions.window_roi).
        return BATCH_FRAMES

    def embed(self, pixels: torch.Tensor) -> torch.Tensor:
        """``(B, 3, S, S)`` normalised images → ``(B, dim)`` pooled features."""
        out = self.net(pixel_values=pixels, output_hidden_states=True)
        tokens = out.hidden_states[-1][:, 1:]  # last block, before the final norm; no CLS
        if self.pool == "fc_norm":
            return self.net.layernorm(tokens.mean(dim=1))
        return self.net.layernorm(tokens).mean(dim=1)

    def __call__(self, clip: Clip, roi: Roi | None = None) -> np.ndarray:
        crops = face_crops(clip.video, roi, self.image_size, faces=self.faces)
        mean = torch.tensor(self.mean, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=self.device).view(1, 3, 1, 1)
        feats = [torch.zeros(0, self.dim, device=self.device)]
        with torch.inference_mode():
            for i in range(0, len(crops), BATCH_FRAMES):
                x = torch.from_numpy(crops[i:i + BATCH_FRAMES]).to(self.device).permute(0, 3, 1, 2).float()
                feats.append(self.embed((x / 255.0 - mean) / std))
        return torch.cat(feats).float().cpu().numpy()


@register("fsfm-random")
class FSFMRandom(FSFM):
    """ViT-B/16 (or ``config``) with weights seeded by ``seed``."""

    weights = "random"

    def __init__(self, *, seed: int = 0, config: Any = None, pool: str = "fc_norm",
                 fps: float = 25.0, faces: str = "auto", name: str = "fsfm-random") -> None:
        from transformers import ViTModel

        config = config or vit_config()
        self._describe_random(config, seed, pool, fps, faces, name)
        self.net = frozen(seeded(lambda: ViTModel(config, add_pooling_layer=False), seed))

    @classmethod
    def unbuilt(cls, *, seed: int = 0, config: Any = None, pool: str = "fc_norm",
                fps: float = 25.0, faces: str = "auto", name: str = "fsfm-random") -> FSFMRandom:
        """``cls(...)`` without its network."""
        self = cls._shell()
        self._describe_random(config or vit_config(), seed, pool, fps, faces, name)
        return self

    def _describe_random(self, config: Any, seed: int, pool: str, fps: float, faces: str,
                         name: str) -> None:
        self.source = "config"
        self.name = name
        self.seed = seed
        self.arch = arch_dict(config)
        self._describe(config, pool, IMAGENET_MEAN, IMAGENET_STD, fps, faces)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "seed": self.seed, "arch": self.arch}


def _tiny_unbuilt(*, seed: int = 0, fps: float = 25.0, faces: str = "auto") -> FSFMRandom:
    return FSFMRandom.unbuilt(config=vit_config(32, 2, 4, 32, 16), seed=seed, fps=fps,
                              faces=faces, name="fsfm-tiny-random")


@register("fsfm-tiny-random", unbuilt=_tiny_unbuilt)
def fsfm_tiny_random(*, seed: int = 0, fps: float = 25.0, faces: str = "auto") -> FSFMRandom:
    """Tiny random face ViT (32² crops, patch 16, 32-d, 2 layers, 4 heads)."""
    return FSFMRandom(config=vit_config(32, 2, 4, 32, 16), seed=seed, fps=fps, faces=faces,
                      name="fsfm-tiny-random")
