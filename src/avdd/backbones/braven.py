"""BRAVEn / RAVEn encoders (the paper's BRAVEn rows), one vector per frame, 25 Hz.

Architecture (``ahaliassos/raven``, configs ``resnet_transformer_{base,large}.yaml``; read):
front-end → ``embed`` = Linear(512→d) + :class:`~avdd.backbones.layers.relpos.RelPositionalEncoding`
→ N pre-norm blocks → ``after_norm`` LayerNorm(eps 1e-12). Each block::

    x = x + gamma_mha · MHA(norm_mha(x))        # rel-pos attention, LayerNorm pre-norm
    x = x + gamma_ff  · FFN(norm_ff(x))         # FFN pre-norm is BatchNorm1d (ff_bn_pre)

with LayerScale vectors ``gamma_*`` (init 0.1), no macaron FFN, no conv module and no
per-block final norm (``post_norm: False``). Front-ends: video = Swish 3-D stem + ResNet-18
(:class:`~avdd.backbones.layers.resnet.VideoResNet`), audio = raw-waveform 1-D ResNet-18
(:class:`~avdd.backbones.layers.resnet.AudioResNet1d`); both 512-d at 25 Hz. The feature is the
encoder output after ``after_norm``, ``(T, d)`` (1024 for Large).

Inputs (:func:`avdd.backbones.layers.lip_inputs.lip_inputs`): the 88×88 grey mouth crop normalised with
(0.421, 0.165), made by AV-HuBERT's recipe (the paper's BRAVEn features read AV-HuBERT's ROI
videos; ``landmarks`` picks the landmark source, ``"auto"`` = synthetic annotations or dlib);
audio raw 16 kHz, no normalisation (RAVEn's audio transform is the identity).

Checkpoints: the released ``.pth`` files are plain state dicts of the ASR model (``encoder.*``,
``decoder.*``, ``ctc.*``), read with ``torch.load(weights_only=True)``. Wrapped files
(``{"state_dict": ...}``, ``{"model": ...}``) and ``model.``/``module.`` prefixes (Lightning,
DDP) are unwrapped; ``decoder.*``/``ctc.*`` are dropped; a bare encoder state dict (no
``encoder.`` prefix) is accepted too. The architecture (d, heads, blocks, FFN, front-end width)
is read from the tensor shapes, so Base and Large files both load. Any key left over or
missing is an error that names it.

The paper's file: ``vsr_prelrs3vox2avs_large_ftlrs3vox2avs_selftrain_braven.pth`` (Large,
LRS3+Vox2+AVSpeech pre-training, VSR fine-tuned with self-training), from the model zoo in
the README of https://github.com/ahaliassos/raven.

Registry names: ``braven-v`` / ``braven-a`` (``checkpoint=`` path), ``braven-{v,a}-random``
(Large, seeded), ``braven-{v,a}-tiny-random`` (d 32, 2 blocks, ResNet widths /8).

The checkpoint helpers here (:func:`read_state_dict`, :func:`load_checked`) also serve the
Auto-AVSR loader, whose release files are ESPnet state dicts of the same kind.

Why one module: one backbone family per file (STYLE.md). The encoder, its checkpoint reading,
its random initialisation and the registered names are one family's code; the shared pieces
live in :mod:`avdd.backbones.layers` and :mod:`avdd.backbones.checkpoints`.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from avdd.backbones.base import Backbone, register
from avdd.backbones.checkpoints import CheckpointError, load_checked, read_state_dict
from avdd.backbones.hub import frozen, seeded
from avdd.backbones.layers.audio import FPS, HOP
from avdd.backbones.layers.relpos import (
    FeedForward,
    RelPositionalEncoding,
    RelPositionMultiHeadedAttention,
    layer_norm,
)
from avdd.backbones.layers.resnet import init_random_frontend, make_frontend
from avdd.media import Clip
from avdd.roi.regions import Roi

MODALITIES = ("video", "audio")
BRAVEN_FILE = "vsr_prelrs3vox2avs_large_ftlrs3vox2avs_selftrain_braven.pth"
BRAVEN_ZOO = "https://github.com/ahaliassos/raven (README, model zoo)"


@dataclass(frozen=True)
class BRAVEnConfig:
    """BRAVEn/RAVEn encoder size; defaults are Large (``resnet_transformer_large.yaml``).

    Attributes:
        modality: ``"video"`` (mouth ROI) or ``"audio"`` (raw 16 kHz waveform).
        dim: attention dim ``adim`` (Large 1024, Base 512).
        blocks: transformer blocks ``elayers`` (Large 24, Base 12).
        heads: attention heads ``aheads`` (Large 16, Base 8).
        ffn: feed-forward units ``eunits`` (Large 4096, Base 2048).
        width: ResNet stem width; the front-end gives ``8·width`` features (64 → 512).
        layerscale: initial LayerScale value ``init_values`` (random init only; checkpoints
            carry their own ``gamma_*``).
    """

    modality: str = "video"
    dim: int = 1024
    blocks: int = 24
    heads: int = 16
    ffn: int = 4096
    width: int = 64
    layerscale: float = 0.1

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {self.modality!r}")


def tiny_config(modality: str) -> BRAVEnConfig:
    """BACKBONES.md tiny config: d 32, 4 heads, FFN 64, 2 blocks, ResNet widths /8."""
    return BRAVEnConfig(modality=modality, dim=32, blocks=2, heads=4, ffn=64, width=8)


# --- model ----------------------------------------------------------------------------------

class BRAVEnBlock(nn.Module):
    """Pre-norm transformer block with LayerScale and a BatchNorm FFN pre-norm.

    ``x (B, T, d)``, ``pos_emb (1, 2T − 1, d)``, ``mask (B, 1, T)`` or ``None`` → ``(B, T, d)``.
    """

    def __init__(self, dim: int, heads: int, ffn: int, layerscale: float) -> None:
        super().__init__()
        self.self_attn = RelPositionMultiHeadedAttention(heads, dim)
        self.feed_forward = FeedForward(dim, ffn)
        self.norm_mha = layer_norm(dim)
        self.norm_ff = nn.BatchNorm1d(dim)  # over channels: (B, d, T) inside forward
        self.gamma_mha = nn.Parameter(torch.full((dim,), layerscale))
        self.gamma_ff = nn.Parameter(torch.full((dim,), layerscale))

    def forward(self, x: torch.Tensor, pos_emb: torch.Tensor,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.gamma_mha * self.self_attn(self.norm_mha(x), pos_emb, mask)
        h = self.norm_ff(x.transpose(1, 2)).transpose(1, 2)
        return x + self.gamma_ff * self.feed_forward(h)


class BRAVEnEncoder(nn.Module):
    """Upstream ``Encoder`` (keys ``frontend.*``, ``embed.0.*``, ``encoders.{i}.*``,
    ``after_norm.*``).

    Input: video ``(B, 1, T, 88, 88)`` normalised grey, or audio ``(B, N)`` raw 16 kHz with
    ``N`` a multiple of 640. Output ``(B, T, dim)``.
    """

    def __init__(self, cfg: BRAVEnConfig) -> None:
        super().__init__()
        self.frontend = make_frontend(cfg.modality, cfg.width)
        self.embed = nn.Sequential(nn.Linear(8 * cfg.width, cfg.dim),
                                   RelPositionalEncoding(cfg.dim))
        self.encoders = nn.ModuleList(BRAVEnBlock(cfg.dim, cfg.heads, cfg.ffn, cfg.layerscale)
                                      for _ in range(cfg.blocks))
        self.after_norm = layer_norm(cfg.dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x, pos_emb = self.embed(self.frontend(x))
        for block in self.encoders:
            x = block(x, pos_emb, mask)
        return self.after_norm(x)


# --- checkpoints (shared with Auto-AVSR) ----------------------------------------------------


def encoder_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Upstream ``E2E`` keys → :class:`BRAVEnEncoder` keys.

    ``encoder.X`` → ``X``; ``decoder.*`` and ``ctc.*`` (the ASR heads) are dropped; any other
    key is kept as is so that the loader reports it. A file without ``encoder.`` keys is taken
    as a bare encoder. ESPnet's own load hook renames ``norm.`` → ``after_norm.`` for old
    files; so does this.
    """
    if any(k.startswith("encoder.") for k in state):
        out = {}
        for key, value in state.items():
            if key.startswith("encoder."):
                out[key.removeprefix("encoder.")] = value
            elif not key.startswith(("decoder.", "ctc.")):
                out[key] = value
        state = out
    return {re.sub(r"^norm\.", "after_norm.", k): v for k, v in state.items()}


def infer_config(state: dict[str, torch.Tensor], modality: str, source: str) -> BRAVEnConfig:
    """The encoder size from :class:`BRAVEnEncoder`-keyed tensor shapes (heads from
    ``pos_bias_u``, which is ``[heads, d_k]``)."""
    stems = {"video": "frontend.frontend3D.0.weight", "audio": "frontend.trunk.conv1.weight"}
    found = [m for m, key in stems.items() if key in state]
    needed = ("embed.0.weight", "encoders.0.self_attn.pos_bias_u",
              "encoders.0.feed_forward.w_1.weight")
    if not found or any(k not in state for k in needed):
        raise CheckpointError(f"{source}: not a BRAVEn/RAVEn encoder checkpoint (expected "
                              f"{', '.join('encoder.' + k for k in (stems[modality], *needed))}).")
    if found[0] != modality:
        raise CheckpointError(f"{source}: this is a {found[0]} model, not {modality}; use the "
                              f"braven-{found[0][0]} backbone.")
    return BRAVEnConfig(
        modality=modality,
        dim=state["embed.0.weight"].shape[0],
        blocks=1 + max(int(k.split(".")[1]) for k in state if k.startswith("encoders.")),
        heads=state["encoders.0.self_attn.pos_bias_u"].shape[0],
        ffn=state["encoders.0.feed_forward.w_1.weight"].shape[0],
        width=state[stems[modality]].shape[0],
    )


def read_encoder(checkpoint: str | Path, modality: str, *, lazy: bool = False
                 ) -> tuple[BRAVEnConfig, dict[str, torch.Tensor]]:
    """``(size, BRAVEnEncoder-keyed state)`` of a release file; ``lazy`` memory-maps it, for a
    caller that reads only the shapes (:func:`avdd.backbones.describe`)."""
    download = (f"{BRAVEN_FILE} (or another {modality} model) from {BRAVEN_ZOO}"
                if modality == "video" else f"an audio model from {BRAVEN_ZOO}")
    state = encoder_state(read_state_dict(checkpoint, "BRAVEn", download, lazy=lazy))
    return infer_config(state, modality, str(checkpoint)), state


# --- backbones ------------------------------------------------------------------------------

class BRAVEn(Backbone):
    """Pretrained BRAVEn/RAVEn encoder → ``(T, dim)`` at 25 Hz.

    ``modality`` is ``"visual"`` or ``"audio"`` per instance (one class serves both).
    """

    weights = "pretrained"
    #: 2: AV-HuBERT's crop is always clamped and falls back to the centre of the full frame
    #: (the paper's BRAVEn features read AV-HuBERT's ROIs); the landmark source is recorded.
    version = 2
    uses_mouth_roi = True  # the runner passes the cached mouth ROI (Roi.mouth)
    audio_input = "raw"  # lip_inputs audio mode: RAVEn feeds the waveform unnormalised

    def feature_rate(self, clip: Clip) -> float:
        from avdd.backbones.layers.lip_inputs import lip_feature_rate

        return lip_feature_rate(clip, self.needs_video)

    def __init__(self, checkpoint: str | Path, *, modality: str = "video",
                 trim_silence: bool = False, landmarks: str = "auto",
                 name: str | None = None) -> None:
        source = str(checkpoint)
        cfg, state = read_encoder(checkpoint, modality)
        net = BRAVEnEncoder(cfg)
        load_checked(net, state, source)
        self.net = frozen(net)
        self._describe(cfg, source, name or f"braven-{modality[0]}", trim_silence, landmarks)

    @classmethod
    def unbuilt(cls, checkpoint: str | Path, *, modality: str = "video",
                trim_silence: bool = False, landmarks: str = "auto",
                name: str | None = None) -> BRAVEn:
        """What ``cls(checkpoint, ...)`` describes itself by, from the checkpoint's tensor
        *shapes* (memory-mapped: no weight is read, no network built): for
        :func:`avdd.backbones.describe`. A file whose keys would not all fit is found only
        when it is built."""
        self = cls._shell()
        cfg, _ = read_encoder(checkpoint, modality, lazy=True)
        self._describe(cfg, str(checkpoint), name or f"braven-{modality[0]}", trim_silence,
                       landmarks)
        return self

    def _describe(self, cfg: BRAVEnConfig, source: str, name: str,
                  trim_silence: bool, landmarks: str) -> None:
        """Every attribute :meth:`config` and the description read."""
        self.cfg = cfg
        self.landmarks = landmarks
        self.source = source
        self.name = name
        self.trim_silence = bool(trim_silence)
        self.modality = "visual" if cfg.modality == "video" else "audio"
        self.dim = cfg.dim
        self.fps = FPS

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "checkpoint": self.source,
                "weights": self.weights, "dim": self.dim, "fps": self.fps,
                "arch": asdict(self.cfg), "audio_input": self.audio_input,
                "trim_silence": self.trim_silence,
                # The crop's landmark source changes the video features; recorded for audio
                # too, so that one spec names one store whatever the modality.
                "landmarks": self.landmarks, "crop": self.roi_recipe}

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Video ``(T, 88, 88)`` float32 (normalised) or audio ``(N,)`` float32 16 kHz →
        ``(T, dim)`` float32 (audio: ``T = N // 640``)."""
        video = self.cfg.modality == "video"
        frames = len(x) if video else len(x) // HOP
        if frames == 0:
            return np.zeros((0, self.dim), np.float32)
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        t = t[None, None] if video else t[None, : frames * HOP]
        with torch.inference_mode():
            out = self.net(t.to(getattr(self, "device", "cpu")))
        return out[0].float().cpu().numpy()

    def __call__(self, clip: Clip, roi: Roi | None = None) -> np.ndarray:
        from avdd.backbones.layers.lip_inputs import lip_inputs

        inp = lip_inputs(clip, roi, audio=self.audio_input, need_video=self.needs_video,
                         need_audio=self.needs_audio, landmarks=self.landmarks,
                         trim_silence=self.trim_silence)
        return self.encode(inp.video if self.needs_video else inp.audio)


def random_encoder(cfg: BRAVEnConfig) -> BRAVEnEncoder:
    """A random-weight :class:`BRAVEnEncoder`: PyTorch's default init, except the front-end
    and ``embed.0`` (:func:`~avdd.backbones.layers.resnet.init_random_frontend`: with the
    defaults every frame of the untrained model points the same way)."""
    net = BRAVEnEncoder(cfg)
    init_random_frontend(net.frontend, net.embed[0])
    return net


class BRAVEnRandom(BRAVEn):
    """The BRAVEn architecture (``config``, default Large video) with weights seeded by
    ``seed`` (:func:`random_encoder`, LayerScale 0.1, BatchNorm running stats 0/1)."""

    weights = "random"
    #: 3: He-initialised trunk, zero projection bias (the defaults collapsed every frame to one
    #: direction: :func:`random_encoder`).
    version = 3

    def __init__(self, *, config: BRAVEnConfig | None = None, seed: int = 0,
                 trim_silence: bool = False, landmarks: str = "auto",
                 name: str | None = None) -> None:
        cfg = config or BRAVEnConfig()
        self._describe_random(cfg, seed, trim_silence, landmarks, name)
        self.net = frozen(seeded(lambda: random_encoder(cfg), seed))

    @classmethod
    def unbuilt(cls, *, config: BRAVEnConfig | None = None, seed: int = 0,
                trim_silence: bool = False, landmarks: str = "auto",
                name: str | None = None) -> BRAVEnRandom:
        """``cls(...)`` without its network."""
        self = cls._shell()
        self._describe_random(config or BRAVEnConfig(), seed, trim_silence, landmarks,
                              name)
        return self

    def _describe_random(self, cfg: BRAVEnConfig, seed: int, trim_silence: bool,
                         landmarks: str, name: str | None) -> None:
        self.seed = seed
        self._describe(cfg, "config", name or f"braven-{cfg.modality[0]}-random", trim_silence,
                       landmarks)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "seed": self.seed}


# What describe() reads for each registered name: the factory below it, without the network.
def _pretrained_unbuilt(modality: str):
    def unbuilt(checkpoint: str, *, trim_silence: bool = False, landmarks: str = "auto") -> BRAVEn:
        return BRAVEn.unbuilt(checkpoint, modality=modality, trim_silence=trim_silence,
                              landmarks=landmarks,
                              name=f"braven-{modality[0]}")
    return unbuilt


def _random_unbuilt(config: BRAVEnConfig, name: str):
    def unbuilt(*, seed: int = 0, trim_silence: bool = False,
                landmarks: str = "auto") -> BRAVEnRandom:
        return BRAVEnRandom.unbuilt(config=config, seed=seed, trim_silence=trim_silence,
                                    landmarks=landmarks,
                                    name=name)
    return unbuilt


@register("braven-v", unbuilt=_pretrained_unbuilt("video"))
def braven_v(checkpoint: str, *, trim_silence: bool = False, landmarks: str = "auto") -> BRAVEn:
    """Pretrained BRAVEn video encoder (the paper: :data:`BRAVEN_FILE`)."""
    return BRAVEn(checkpoint, modality="video", trim_silence=trim_silence, landmarks=landmarks,
                  name="braven-v")


@register("braven-a", unbuilt=_pretrained_unbuilt("audio"))
def braven_a(checkpoint: str, *, trim_silence: bool = False, landmarks: str = "auto") -> BRAVEn:
    """Pretrained BRAVEn audio encoder (raw 16 kHz waveform)."""
    return BRAVEn(checkpoint, modality="audio", trim_silence=trim_silence, landmarks=landmarks,
                  name="braven-a")


@register("braven-v-random",
          unbuilt=_random_unbuilt(BRAVEnConfig(modality="video"), "braven-v-random"))
def braven_v_random(*, seed: int = 0, trim_silence: bool = False,
                    landmarks: str = "auto") -> BRAVEnRandom:
    """Large BRAVEn video architecture, random weights."""
    return BRAVEnRandom(config=BRAVEnConfig(modality="video"), seed=seed,
                        trim_silence=trim_silence, landmarks=landmarks, name="braven-v-random")


@register("braven-a-random",
          unbuilt=_random_unbuilt(BRAVEnConfig(modality="audio"), "braven-a-random"))
def braven_a_random(*, seed: int = 0, trim_silence: bool = False,
                    landmarks: str = "auto") -> BRAVEnRandom:
    """Large BRAVEn audio architecture, random weights."""
    return BRAVEnRandom(config=BRAVEnConfig(modality="audio"), seed=seed,
                        trim_silence=trim_silence, landmarks=landmarks, name="braven-a-random")


@register("braven-v-tiny-random",
          unbuilt=_random_unbuilt(tiny_config("video"), "braven-v-tiny-random"))
def braven_v_tiny_random(*, seed: int = 0, trim_silence: bool = False,
                         landmarks: str = "auto") -> BRAVEnRandom:
    """Tiny BRAVEn video encoder (32-d, 2 blocks) for tests and demos."""
    return BRAVEnRandom(config=tiny_config("video"), seed=seed, trim_silence=trim_silence,
                        landmarks=landmarks,
                        name="braven-v-tiny-random")


@register("braven-a-tiny-random",
          unbuilt=_random_unbuilt(tiny_config("audio"), "braven-a-tiny-random"))
def braven_a_tiny_random(*, seed: int = 0, trim_silence: bool = False,
                         landmarks: str = "auto") -> BRAVEnRandom:
    """Tiny BRAVEn audio encoder (32-d, 2 blocks) for tests and demos."""
    return BRAVEnRandom(config=tiny_config("audio"), seed=seed, trim_silence=trim_silence,
                        landmarks=landmarks,
                        name="braven-a-tiny-random")
