"""AV-HuBERT encoders (the paper's AV-HuBERT rows), one vector per frame, 25 Hz, no fairseq.

Architecture (``facebookresearch/av_hubert`` ``avhubert/hubert.py``, ``resnet.py``, and fairseq's
wav2vec2 ``TransformerEncoder``/``SamePad``/``gelu`` as read in a fairseq release of that era;
the submodule's pinned commit afc77bdf itself was not read)::

    video (B,1,T,88,88) → VideoResNet(PReLU) → proj 512→E ┐
    audio (B,T,104)     → proj 104→E ────────────────────┤ a missing modality = zeros (B,T,E)
    concat [audio, video] (2E) → layer_norm → post_extract_proj 2E→E
    x + GELU(drop_last_if_even(pos_conv(x)))       # weight-normed grouped Conv1d, k = conv_pos
    L pre-LN layers: x + MHA(LN(x)); x + fc2(GELU(fc1(LN(x))))
    encoder.layer_norm                               # after the layers when layer_norm_first

Confirmed upstream (read): the zero fill and the [audio, video] order (``extract_finetune``);
``layer_norm_first: true`` for Large (``conf/pretrain/large_*``), in which case the encoder's
``layer_norm`` is applied *after* the layers and not to the input; the pos-conv init/weight norm
``dim=2`` and ``SamePad`` dropping the last frame for an even kernel; exact-erf GELU; LayerNorm
eps 1e-5. In eval mode every dropout, layer drop, modality dropout and input masking is off,
``feature_grad_mult`` only scales gradients and nothing scales the features, so this module
has no dropout at all (inference only). Feature = the final-LN output, ``(T, E)``.
Inferred: attention heads are not stored in the weights; a checkpoint gets ``E / 64`` (Large:
16, Base: 12) unless ``heads=`` is given or a converted file records them.

Checkpoints: fairseq ``.pt`` via :mod:`avdd.backbones.checkpoints` (``trust_checkpoint=True`` for
files that pickle fairseq objects, as the released ones do), or a ``.safetensors`` file written
by :func:`convert_checkpoint`. Keys: the pretraining layout, or the fine-tuned one under
``encoder.w2v_model.``; the decoder, ``mask_emb``, ``label_embs_concat`` and ``final_proj`` are
dropped; ``weight_g/weight_v`` and ``parametrizations.weight.original0/1`` both load.

Inputs (:func:`avdd.backbones.layers.lip_inputs.lip_inputs`, ``audio="avhubert"``): the 88×88 grey mouth ROI
normalised with (0.421, 0.165), and log filterbanks stacked to ``(T, 104)`` with per-frame
layer norm. As AVH-Align extracts them, both streams are cut to the shorter one *before* each
of the three passes, so ``avhubert-a`` and ``avhubert-v`` also have ``min(T_video, T_audio)``
rows (every variant decodes both streams; the audio-only pass only counts the frames).

Registry names: ``avhubert-{a,v,av}`` (``checkpoint=`` path), ``avhubert-{a,v}-random`` (Large,
seeded), ``avhubert-{a,v,av}-tiny-random`` (E 32, 2 layers, ResNet widths /8).

Why one module: one backbone family per file (STYLE.md). The encoder, the three input
variants, both checkpoint routes and the registered names are one family's code; its shared
pieces (front-ends, checkpoint reading, lip inputs) already live in :mod:`avdd.backbones.layers`
and :mod:`avdd.backbones.checkpoints`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

# The module, not its names: lipread.checkpoints imports this package (for CheckpointError), so
# whichever of the two is imported first, the other may still be initialising.
from avdd.backbones import checkpoints
from avdd.backbones.base import Backbone, register
from avdd.backbones.checkpoints import CheckpointError
from avdd.backbones.hub import WeightsNotFound, frozen, seeded
from avdd.backbones.layers.resnet import VideoResNet, init_trunk
from avdd.backbones.layers.windows import windowed
from avdd.media import Clip
from avdd.roi.regions import Roi

FPS = 25.0
AVHUBERT_FILE = "self_large_vox_433h.pt"
# The checkpoint page of the av_hubert README (download after accepting the AV-HuBERT licence):
# Large, LRS3 + VoxCeleb2 pretraining, VSR fine-tuned on LRS3 433 h with self-training.
AVHUBERT_ZOO = "http://facebookresearch.github.io/av_hubert"
MODALITIES = {"audio": "a", "visual": "v", "audio-visual": "av"}

_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def flag(value: Any) -> bool:
    """A boolean from Python or from a backbone spec string (``trust_checkpoint=false`` must
    not become ``bool("false") == True``)."""
    if isinstance(value, (bool, int)) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE | _FALSE:
        return text in _TRUE
    raise ValueError(f"expected a boolean (true/false/1/0), got {value!r}")


@dataclass(frozen=True)
class AVHubertConfig:
    """AV-HuBERT encoder architecture; defaults are Large (``conf/pretrain/large_*.yaml``).

    Attributes:
        dim: encoder width E (``encoder_embed_dim``).
        layers: transformer layers (``encoder_layers``).
        heads: attention heads (``encoder_attention_heads``); E / heads = 64 in Base and Large.
        ffn: FFN width (``encoder_ffn_embed_dim``).
        conv_pos: positional-conv kernel (frames); even → the output drops its last frame.
        conv_pos_groups: positional-conv groups.
        audio_dim: audio input size, 26 log filterbanks × 4 stacked 10 ms frames = 104.
        resnet_width: video ResNet stem width (its output is 8 × this).
    """

    dim: int = 1024
    layers: int = 24
    heads: int = 16
    ffn: int = 4096
    conv_pos: int = 128
    conv_pos_groups: int = 16
    audio_dim: int = 104
    resnet_width: int = 64

    def __post_init__(self) -> None:
        if self.dim % self.heads or self.dim % self.conv_pos_groups:
            raise ValueError(f"dim {self.dim} must divide by heads {self.heads} and "
                             f"conv_pos_groups {self.conv_pos_groups}")


def tiny() -> AVHubertConfig:
    """The CPU-test configuration (BACKBONES.md): E 32, 2 layers, 4 heads, FFN 64, even
    conv_pos 16 in 4 groups, ResNet widths /8."""
    return AVHubertConfig(dim=32, layers=2, heads=4, ffn=64, conv_pos=16, conv_pos_groups=4,
                          resnet_width=8)


# --- the network (module names = fairseq key names) ----------------------------------------

class SubModel(nn.Module):
    """A modality front-end: optional ResNet, then ``proj`` to E. ``(B, T, in)`` or video →
    ``(B, T, E)``."""

    def __init__(self, in_dim: int, dim: int, resnet: nn.Module | None = None) -> None:
        super().__init__()
        self.resnet = resnet
        self.proj = nn.Linear(in_dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x if self.resnet is None else self.resnet(x))


class WeightNormConv1d(nn.Module):
    """Grouped Conv1d with weight normalisation over ``dim=2`` (one gain per kernel tap), kept
    as fairseq stores it: ``weight = weight_v · weight_g / ‖weight_v‖`` (norm over dims 0, 1).
    """

    def __init__(self, dim: int, kernel: int, groups: int) -> None:
        super().__init__()
        self.padding, self.groups = kernel // 2, groups
        # fairseq's init: N(0, sqrt(4 / (k·E))), zero bias, g = ‖v‖ (so weight = v at init).
        v = torch.randn(dim, dim // groups, kernel) * math.sqrt(4.0 / (kernel * dim))
        self.weight_v = nn.Parameter(v)
        self.weight_g = nn.Parameter(v.norm(dim=(0, 1), keepdim=True))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: Tensor) -> Tensor:
        w = self.weight_v * (self.weight_g / self.weight_v.norm(dim=(0, 1), keepdim=True))
        return F.conv1d(x, w, self.bias, padding=self.padding, groups=self.groups)


class DropLast(nn.Module):
    """fairseq ``SamePad``: an even kernel with padding k/2 yields T + 1 frames; drop the last."""

    def __init__(self, kernel: int) -> None:
        super().__init__()
        self.remove = 1 if kernel % 2 == 0 else 0

    def forward(self, x: Tensor) -> Tensor:
        return x[..., :-self.remove] if self.remove else x


class SelfAttention(nn.Module):
    """fairseq ``MultiheadAttention`` (self-attention, biases, no padding mask: one clip)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(dim, dim)
                                                                for _ in range(4))

    def forward(self, x: Tensor) -> Tensor:
        b, t, d = x.shape
        q, k, v = (p(x).view(b, t, self.heads, d // self.heads).transpose(1, 2)
                   for p in (self.q_proj, self.k_proj, self.v_proj))
        out = F.scaled_dot_product_attention(q, k, v)  # softmax(q·kᵀ / √(d/h)) v, as fairseq
        return self.out_proj(out.transpose(1, 2).reshape(b, t, d))


class EncoderLayer(nn.Module):
    """Pre-LN transformer layer (``TransformerSentenceEncoderLayer``, layer_norm_first)."""

    def __init__(self, cfg: AVHubertConfig) -> None:
        super().__init__()
        self.self_attn = SelfAttention(cfg.dim, cfg.heads)
        self.self_attn_layer_norm = nn.LayerNorm(cfg.dim)
        self.fc1 = nn.Linear(cfg.dim, cfg.ffn)
        self.fc2 = nn.Linear(cfg.ffn, cfg.dim)
        self.final_layer_norm = nn.LayerNorm(cfg.dim)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.self_attn(self.self_attn_layer_norm(x))
        # The FFN is per frame, its hidden layer (16 KiB a frame in Large) the largest tensor:
        # a sequence whose hidden layer would exceed the budget runs it in blocks of frames.
        hidden_bytes = x.shape[0] * self.fc1.out_features * x.element_size()
        return x + windowed(self._ffn, x, frames=x.shape[1], frame_bytes=hidden_bytes)

    def _ffn(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(self.final_layer_norm(x))))


class TransformerEncoder(nn.Module):
    """Conv positional embedding, ``layers`` pre-LN layers, final ``layer_norm``:
    ``(B, T, E)`` → ``(B, T, E)``."""

    def __init__(self, cfg: AVHubertConfig) -> None:
        super().__init__()
        self.pos_conv = nn.Sequential(WeightNormConv1d(cfg.dim, cfg.conv_pos, cfg.conv_pos_groups),
                                      DropLast(cfg.conv_pos), nn.GELU())
        self.layers = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.layers))
        self.layer_norm = nn.LayerNorm(cfg.dim)
        self.apply(_init_bert)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.pos_conv(x.transpose(1, 2)).transpose(1, 2)
        for layer in self.layers:
            x = layer(x)
        return self.layer_norm(x)  # layer_norm_first: after the layers, not on the input


def _init_bert(m: nn.Module) -> None:
    """fairseq ``init_bert_params`` for the transformer's Linears (N(0, 0.02), zero bias); only
    the encoder gets it upstream, the front-end projections keep PyTorch's default."""
    if isinstance(m, nn.Linear):
        nn.init.normal_(m.weight, std=0.02)
        nn.init.zeros_(m.bias)


class AVHubertModel(nn.Module):
    """AV-HuBERT encoder: ``forward(video, audio)`` → ``(B, T, E)``, either input may be None.

    Args of forward:
        video: ``(B, 1, T, 88, 88)`` normalised grey mouth ROIs, or None.
        audio: ``(B, T, 104)`` stacked log filterbanks (25 Hz), or None.
    """

    def __init__(self, cfg: AVHubertConfig) -> None:
        super().__init__()
        self.cfg = cfg
        resnet = VideoResNet(act="prelu", width=cfg.resnet_width)
        init_trunk(resnet)  # av_hubert's ResNet init (2-D convs of the trunk)
        self.feature_extractor_audio = SubModel(cfg.audio_dim, cfg.dim)
        self.feature_extractor_video = SubModel(resnet.out_dim, cfg.dim, resnet)
        self.layer_norm = nn.LayerNorm(2 * cfg.dim)
        self.post_extract_proj = nn.Linear(2 * cfg.dim, cfg.dim)
        self.encoder = TransformerEncoder(cfg)

    def forward(self, video: Tensor | None = None, audio: Tensor | None = None) -> Tensor:
        if video is None and audio is None:
            raise ValueError("AV-HuBERT needs video, audio or both")
        a = None if audio is None else self.feature_extractor_audio(audio)
        v = None if video is None else self.feature_extractor_video(video)
        a = torch.zeros_like(v) if a is None else a  # upstream: zeros of the missing output
        v = torch.zeros_like(a) if v is None else v
        if a.shape != v.shape:
            raise ValueError(f"audio and video disagree: {tuple(a.shape)} vs {tuple(v.shape)}; "
                             "trim both to the same number of frames")
        x = self.post_extract_proj(self.layer_norm(torch.cat([a, v], dim=-1)))
        return self.encoder(x)


# --- checkpoint keys ------------------------------------------------------------------------

FINETUNED_PREFIX = "encoder.w2v_model."
DROPPED = re.compile(r"(decoder\..*|mask_emb|label_embs_concat|final_proj\..*)")
_PARAMETRIZED = {"parametrizations.weight.original0": "weight_g",
                 "parametrizations.weight.original1": "weight_v"}


def encoder_state(state: dict[str, Tensor]) -> tuple[dict[str, Tensor], list[str]]:
    """fairseq AV-HuBERT keys → :class:`AVHubertModel` keys.

    Returns ``(kept, dropped)``: the fine-tuned ``encoder.w2v_model.`` prefix is stripped;
    decoder, ``mask_emb``, ``label_embs_concat`` and ``final_proj`` keys are dropped (their
    names are returned, for the record); newer weight-norm names become ``weight_g/weight_v``.
    """
    finetuned = any(k.startswith(FINETUNED_PREFIX) for k in state)
    kept, dropped = {}, []
    for key, value in state.items():
        name = key
        if finetuned:
            if not key.startswith(FINETUNED_PREFIX):
                dropped.append(key)  # the seq2seq decoder and its embeddings
                continue
            name = key[len(FINETUNED_PREFIX):]
        if DROPPED.fullmatch(name):
            dropped.append(key)
            continue
        for new, old in _PARAMETRIZED.items():
            name = name.replace(new, old)
        kept[name] = value
    return kept, dropped


def infer_config(state: dict[str, Tensor], heads: int | None = None) -> AVHubertConfig:
    """Architecture from tensor shapes (heads are not stored: default E / 64)."""
    try:
        dim = state["post_extract_proj.weight"].shape[0]
        v = state["encoder.pos_conv.0.weight_v"]
        layers = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("encoder.layers."))
        return AVHubertConfig(
            dim=dim, layers=layers, heads=heads or max(1, dim // 64),
            ffn=state["encoder.layers.0.fc1.weight"].shape[0],
            conv_pos=v.shape[2], conv_pos_groups=dim // v.shape[1],
            audio_dim=state["feature_extractor_audio.proj.weight"].shape[1],
            resnet_width=state["feature_extractor_video.resnet.frontend3D.0.weight"].shape[0])
    except (KeyError, ValueError) as err:
        raise CheckpointError(f"not an AV-HuBERT encoder state dict ({err!r}); expected "
                              "fairseq keys such as post_extract_proj.weight, optionally under "
                              f"{FINETUNED_PREFIX!r}") from err


def load_checked(net: nn.Module, state: dict[str, Tensor], source: str) -> None:
    """Load ``state`` strictly; a missing or unexpected key is an error naming it.

    BatchNorm ``num_batches_tracked`` counters (absent from files of old PyTorch versions) are
    the only exception: they do not affect eval-mode outputs, so the model's own are kept.
    """
    want = net.state_dict()
    state = {**{k: v for k, v in want.items() if k.endswith(".num_batches_tracked")}, **state}
    missing = sorted(set(want) - set(state))
    unexpected = sorted(set(state) - set(want))
    if missing or unexpected:
        raise CheckpointError(f"{source}: weights do not fit AV-HuBERT; missing keys: "
                              f"{missing or 'none'}; unexpected keys: {unexpected or 'none'}")
    bad = [f"{k} {tuple(v.shape)} vs {tuple(want[k].shape)}" for k, v in state.items()
           if v.shape != want[k].shape]
    if bad:
        raise CheckpointError(f"{source}: shape mismatch: {bad}")
    net.load_state_dict(state)


def read_checkpoint(path: str | Path, *, trust: bool = False, heads: int | None = None,
                    lazy: bool = False) -> tuple[AVHubertConfig, dict[str, Tensor], list[str]]:
    """``(config, model state, dropped keys)`` of a fairseq ``.pt`` or converted file.

    ``lazy``: for a caller that reads only the shapes (:func:`avdd.backbones.describe`): a
    ``.safetensors`` file gives meta tensors (a zip-format ``.pt`` is memory-mapped anyway).
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise WeightsNotFound(
            f"AV-HuBERT checkpoint {p} not found. Download {AVHUBERT_FILE} from {AVHUBERT_ZOO} "
            "and pass checkpoint=PATH (e.g. avhubert-v:checkpoint=/ckpt/self_large_vox_433h.pt"
            ", plus trust_checkpoint=True for the fairseq file, or convert it once with "
            "`avdd convert-checkpoint`).")
    state, dropped = encoder_state(checkpoints.load_fairseq_state(p, trust=trust, lazy=lazy))
    if heads is None and p.suffix == ".safetensors":
        heads = json.loads(checkpoints.safetensors_metadata(p).get("config", "{}")).get("heads")
    return infer_config(state, heads), state, dropped


def convert_checkpoint(src: str | Path, dst: str | Path, *, trust: bool = False,
                       heads: int | None = None) -> Path:
    """fairseq ``.pt`` → ``.safetensors`` holding only the encoder (mapped keys) and its
    :class:`AVHubertConfig` (JSON metadata ``config``); afterwards no unpickling is needed."""
    return checkpoints.convert_to_safetensors(
        src, dst, trust=trust, transform=lambda s: encoder_state(s)[0],
        config=lambda s: asdict(infer_config(s, heads)))


# --- backbones ------------------------------------------------------------------------------

class AVHubert(Backbone):
    """AV-HuBERT features ``(T, E)`` at 25 Hz from audio, video or both (``modality``)."""

    weights = "pretrained"
    #: 2: the crop is always clamped, the no-face fallback is the centre of the full frame,
    #: and every pass is cut to the shorter of both streams (AVH-Align).
    version = 2
    uses_mouth_roi = True  # the runner passes the cached mouth ROI (Roi.mouth)
    audio_input = "avhubert"  # lip_inputs audio mode: stacked log filterbanks (T, 104)

    @property
    def decodes(self) -> tuple[bool, bool]:
        # Every pass is cut to the shorter of both streams, so each needs both lengths.
        return True, True

    def feature_rate(self, clip: Clip) -> float:
        from avdd.backbones.layers.lip_inputs import lip_feature_rate

        return lip_feature_rate(clip, self.needs_video)

    def __init__(self, checkpoint: str | Path, *, modality: str = "audio-visual",
                 trust_checkpoint: bool = False, heads: int | None = None,
                 trim_silence: bool = False, landmarks: str = "auto",
                 name: str | None = None) -> None:
        cfg, state, self.dropped_keys = read_checkpoint(
            checkpoint, trust=flag(trust_checkpoint), heads=heads)
        net = AVHubertModel(cfg)
        load_checked(net, state, str(checkpoint))
        self.source = str(checkpoint)
        self._describe(cfg, modality, trim_silence, landmarks,
                       name or f"avhubert-{MODALITIES.get(modality, modality)}")
        self.net = frozen(net)

    @classmethod
    def unbuilt(cls, checkpoint: str | Path, *, modality: str = "audio-visual",
                trust_checkpoint: bool = False, heads: int | None = None,
                trim_silence: bool = False, landmarks: str = "auto",
                name: str | None = None) -> AVHubert:
        """What ``cls(checkpoint, ...)`` describes itself by, from the checkpoint's tensor
        *shapes* (a ``.pt`` memory-mapped, a ``.safetensors`` header read: no weight is read,
        no network built): for :func:`avdd.backbones.describe`. The same trust rules apply
        (an untrusted fairseq file is refused here too); a file whose keys would not all fit
        is found only when it is built."""
        self = cls._shell()
        cfg, _, _ = read_checkpoint(checkpoint, trust=flag(trust_checkpoint), heads=heads,
                                    lazy=True)
        self.source = str(checkpoint)
        self._describe(cfg, modality, trim_silence, landmarks,
                       name or f"avhubert-{MODALITIES.get(modality, modality)}")
        return self

    def _describe(self, cfg: AVHubertConfig, modality: str, trim_silence: bool,
                  landmarks: str, name: str) -> None:
        """Every attribute :meth:`config` and the description read."""
        if modality not in MODALITIES:
            raise ValueError(f"modality must be one of {list(MODALITIES)}, got {modality!r}")
        self.cfg = cfg
        self.modality = modality  # one class serves the three passes
        self.trim_silence = flag(trim_silence)
        self.landmarks = landmarks
        self.name = name
        self.dim = cfg.dim
        self.fps = FPS

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "weights": self.weights,
                "checkpoint": self.source, "checkpoint_name": Path(self.source).name,
                "modality": self.modality, "dim": self.dim, "fps": self.fps,
                "arch": asdict(self.cfg), "audio_input": self.audio_input,
                "trim_silence": self.trim_silence, "landmarks": self.landmarks}

    def encode(self, video: np.ndarray | None, audio: np.ndarray | None) -> np.ndarray:
        """Video ``(T, 88, 88)`` and/or audio ``(T, 104)`` float32 → ``(T, dim)`` float32."""
        t = len(video) if video is not None else len(audio) if audio is not None else 0
        if t == 0:
            return np.zeros((0, self.dim), np.float32)
        device = getattr(self, "device", "cpu")

        def tensor(x: np.ndarray | None, lead: tuple[None, ...]) -> Tensor | None:
            if x is None:
                return None
            return torch.from_numpy(np.ascontiguousarray(x, np.float32))[lead].to(device)

        with torch.inference_mode():
            out = self.net(video=tensor(video, (None, None)), audio=tensor(audio, (None,)))
        return out[0].float().cpu().numpy()

    def __call__(self, clip: Clip, roi: Roi | None = None) -> np.ndarray:
        from avdd.backbones.layers.lip_inputs import lip_inputs

        inp = lip_inputs(clip, roi, audio=self.audio_input, need_video=self.needs_video,
                         need_audio=self.needs_audio, landmarks=self.landmarks,
                         trim_silence=self.trim_silence, common_length=True)
        return self.encode(inp.video if self.needs_video else None,
                           inp.audio if self.needs_audio else None)


class AVHubertRandom(AVHubert):
    """The AV-HuBERT architecture (``config``, default Large) with weights seeded by ``seed``
    (upstream's initialisers: BERT init in the transformer, He init in the ResNet)."""

    weights = "random"

    def __init__(self, *, modality: str = "audio-visual", config: AVHubertConfig | None = None,
                 seed: int = 0, trim_silence: bool = False, landmarks: str = "auto",
                 name: str | None = None) -> None:
        cfg = config or AVHubertConfig()
        self._describe_random(cfg, modality, seed, trim_silence, landmarks, name)
        self.dropped_keys = []
        self.net = frozen(seeded(lambda: AVHubertModel(cfg), seed))

    @classmethod
    def unbuilt(cls, *, modality: str = "audio-visual", config: AVHubertConfig | None = None,
                seed: int = 0, trim_silence: bool = False, landmarks: str = "auto",
                name: str | None = None) -> AVHubertRandom:
        """``cls(...)`` without its network."""
        self = cls._shell()
        self._describe_random(config or AVHubertConfig(), modality, seed, trim_silence,
                              landmarks, name)
        return self

    def _describe_random(self, cfg: AVHubertConfig, modality: str, seed: int,
                         trim_silence: bool, landmarks: str, name: str | None) -> None:
        self.seed = seed
        self.source = "config"
        self._describe(cfg, modality, trim_silence, landmarks,
                       name or f"avhubert-{MODALITIES.get(modality, modality)}-random")

    def config(self) -> dict[str, Any]:
        return {**super().config(), "seed": self.seed}


# Each maker returns a registered factory; given the class's ``unbuilt`` instead of the class,
# the same factory (same arguments) is what describe() reads.
def _pretrained(modality: str, make: Callable[..., AVHubert] = AVHubert):
    def factory(checkpoint: str, *, trust_checkpoint: bool = False, heads: int | None = None,
                trim_silence: bool = False, landmarks: str = "auto") -> AVHubert:
        return make(checkpoint, modality=modality, trust_checkpoint=trust_checkpoint,
                    heads=heads, trim_silence=trim_silence, landmarks=landmarks,
                    name=f"avhubert-{MODALITIES[modality]}")
    factory.__doc__ = f"Pretrained AV-HuBERT, {modality} input (the paper: {AVHUBERT_FILE})."
    return factory


def _random(modality: str, tiny_cfg: bool,
            make: Callable[..., AVHubertRandom] = AVHubertRandom):
    suffix = "tiny-random" if tiny_cfg else "random"

    def factory(*, seed: int = 0, trim_silence: bool = False,
                landmarks: str = "auto") -> AVHubertRandom:
        return make(modality=modality, config=tiny() if tiny_cfg else None,
                    seed=seed, trim_silence=trim_silence, landmarks=landmarks,
                    name=f"avhubert-{MODALITIES[modality]}-{suffix}")
    factory.__doc__ = (f"{'Tiny' if tiny_cfg else 'Large'} AV-HuBERT, {modality} input, "
                       "random weights.")
    return factory


for _modality, _short in MODALITIES.items():
    register(f"avhubert-{_short}", unbuilt=_pretrained(_modality, AVHubert.unbuilt))(
        _pretrained(_modality))
    register(f"avhubert-{_short}-tiny-random",
             unbuilt=_random(_modality, True, AVHubertRandom.unbuilt))(_random(_modality, True))
    if _modality != "audio-visual":  # the paper's random baselines are A and V only
        register(f"avhubert-{_short}-random",
                 unbuilt=_random(_modality, False, AVHubertRandom.unbuilt))(
            _random(_modality, False))
