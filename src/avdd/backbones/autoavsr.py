"""Auto-AVSR conformer encoders (VSR, ASR and audio-visual), one vector per frame, 25 Hz.

Architecture (``mpc001/auto_avsr``; read): front-end → ``proj_encoder`` Linear(512→d) →
``encoder``: :class:`~avdd.backbones.layers.relpos.RelPositionalEncoding` (``x·√d``, no parameters)
→ N conformer blocks → ``after_norm`` LayerNorm(eps 1e-12). Each block (macaron, pre-norm,
LayerNorms eps 1e-12)::

    x = x + ½ · FFN_macaron(norm_ff_macaron(x))
    x = x + MHA(norm_mha(x))                     # rel-pos self-attention
    x = x + Conv(norm_conv(x))                   # pointwise d→2d, GLU, depthwise k, BN,
                                                 # Swish, pointwise d→d
    x = x + ½ · FFN(norm_ff(x))
    x = norm_final(x)

Front-ends are the Swish video ResNet-18 and the raw-audio 1-D ResNet-18 (512-d, 25 Hz;
:mod:`avdd.backbones.layers.resnet`). Feature = encoder output after ``after_norm``, ``(T, d)``.

Audio-visual model (only in the repository's ``v1.0.0`` release, ``e2e_asr_conformer_av.py``;
read): video ``encoder`` and audio ``aux_encoder`` (each as above), then ``fusion`` =
``fc1`` Linear(2d→8192) → ``bn1`` BatchNorm1d → ReLU → ``fc2`` Linear(8192→d) applied to
``cat(video_feat, audio_feat)``. The AV feature is the fusion output, the tensor that
``lightning_av.py`` feeds to the CTC/attention decoder.

Key layouts. The current repository (main) names a model ``frontend.*``, ``proj_encoder.*``,
``encoder.encoders.{i}.*``, ``encoder.after_norm.*``; the v1.0.0 release (and its AV model)
keeps the front-end and projection inside the encoder: ``encoder.frontend.*``,
``encoder.embed.0.*`` (the projection), ``encoder.encoders.*``, ``encoder.after_norm.*`` (AV:
the same under ``aux_encoder.``, plus ``fusion.*``). The two are the same computation; the
loader accepts both. ``decoder.*``, ``ctc.*`` and ``proj_decoder.*`` are dropped. The
conv-module names keep upstream's typo ``pointwise_cov1``/``pointwise_cov2``.

Inputs (:func:`avdd.backbones.layers.lip_inputs.lip_inputs`), as the paper's copy of the
pipeline (``danoneata/veridiq``, ``fe_VSR``) prepared them: video = the 88×88 grey centre of
the **Auto-AVSR mouth crop** (:mod:`avdd.roi.autoavsr`: MediaPipe FaceDetection keypoints,
centred smoothing, partial-affine warp; ``crop="avhubert"`` takes AV-HuBERT's crop instead),
normalised with (0.421, 0.165); audio = the waveform layer-normalised over the utterance with
**eps 0**: the audio-visual model cuts both streams to ``min(T_video, N // 640)`` first, ASR
normalises the whole waveform and its front-end drops the partial last frame.

Checkpoints: the paper used the LRS3 models of *Visual Speech Recognition for Multiple
Languages* (``LRS3_V_WER19.1``, ``LRS3_A_WER1.0``, ``LRS3_AV_WER0.9``: their ``model.pth`` in
the v1.0.0 key layout, with a ``model.json``; https://github.com/mpc001/Visual_Speech_Recognition_for_Multiple_Languages).
The zoo of https://github.com/mpc001/auto_avsr (``vsr_trlrs3vox2_base.pth``, ...) loads too.
Plain state dicts, read with ``torch.load(weights_only=True)``; sizes come from the tensor
shapes. Not checked here: a release whose ``model.json`` selects ESPnet's *legacy* relative
positions (``rel_mha`` without ``rel_pos_type``) would need that attention variant, which this
module does not implement.

Registry names: ``autoavsr-{vsr,asr,av}`` (``checkpoint=`` path), ``autoavsr-{vsr,asr}-random``
(d 768, seeded), ``autoavsr-{vsr,asr,av}-tiny-random`` (d 32, 2 blocks, kernel 3, ResNet
widths /8).

Why one module: one backbone family per file (STYLE.md). The Conformer encoder, its two
upstream key layouts and the registered names are one family's code; the shared pieces live in
:mod:`avdd.backbones.layers` and :mod:`avdd.backbones.checkpoints`.
"""

from __future__ import annotations

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
    Swish,
    layer_norm,
)
from avdd.backbones.layers.resnet import init_random_frontend, make_frontend
from avdd.backbones.layers.windows import windowed
from avdd.media import Clip
from avdd.roi.regions import Roi

MODALITIES = ("video", "audio", "av")
ZOO = ("https://github.com/mpc001/Visual_Speech_Recognition_for_Multiple_Languages (the paper's "
       "LRS3 models), or https://github.com/mpc001/auto_avsr (README model zoo)")
#: The paper's files (VSR for Multiple Languages, LRS3 models; each a folder with model.pth).
DEFAULT_FILES = {"video": "LRS3_V_WER19.1", "audio": "LRS3_A_WER1.0", "av": "LRS3_AV_WER0.9"}
SHORT = {"video": "vsr", "audio": "asr", "av": "av"}
_DROPPED = ("decoder.", "ctc.", "proj_decoder.")


@dataclass(frozen=True)
class AutoAVSRConfig:
    """Auto-AVSR encoder size; defaults are the released "base" models.

    Attributes:
        modality: ``"video"`` (VSR), ``"audio"`` (ASR) or ``"av"`` (both encoders + fusion).
        dim: attention dim (768); also the projection and fusion output size.
        blocks: conformer blocks (12).
        heads: attention heads (12).
        ffn: feed-forward units of both macaron FFNs (3072).
        kernel: depthwise conv kernel (31, odd: "same" padding).
        width: ResNet stem width; the front-ends give ``8·width`` features (64 → 512).
        fusion_hidden: hidden size of the AV fusion MLP (8192; unused otherwise).
    """

    modality: str = "video"
    dim: int = 768
    blocks: int = 12
    heads: int = 12
    ffn: int = 3072
    kernel: int = 31
    width: int = 64
    fusion_hidden: int = 8192

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {self.modality!r}")
        if self.kernel % 2 != 1:
            raise ValueError(f"kernel must be odd for same padding, got {self.kernel}")


def tiny_config(modality: str) -> AutoAVSRConfig:
    """BACKBONES.md tiny config (d 32, 4 heads, FFN 64, 2 blocks, kernel 3); ResNet widths /8
    and (AV) fusion hidden 64 to keep CPU tests fast."""
    fusion = {"fusion_hidden": 64} if modality == "av" else {}  # unused by VSR/ASR: default
    return AutoAVSRConfig(modality=modality, dim=32, blocks=2, heads=4, ffn=64, kernel=3,
                          width=8, **fusion)


# --- model ----------------------------------------------------------------------------------

class ConvModule(nn.Module):
    """Conformer convolution module: ``(B, T, d)`` → ``(B, T, d)``."""

    def __init__(self, dim: int, kernel: int) -> None:
        super().__init__()
        self.pointwise_cov1 = nn.Conv1d(dim, 2 * dim, 1)  # upstream's spelling, kept for keys
        self.depthwise_conv = nn.Conv1d(dim, dim, kernel, padding=(kernel - 1) // 2, groups=dim)
        self.norm = nn.BatchNorm1d(dim)
        self.pointwise_cov2 = nn.Conv1d(dim, dim, 1)
        self.activation = Swish()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.glu(self.pointwise_cov1(x.transpose(1, 2)), dim=1)  # (B, d, T)
        x = self.activation(self.norm(self.depthwise_conv(x)))
        return self.pointwise_cov2(x).transpose(1, 2)


class ConformerBlock(nn.Module):
    """Macaron conformer block (ESPnet ``EncoderLayer`` with ``macaron_style`` and the conv
    module). ``x (B, T, d)``, ``pos_emb (1, 2T − 1, d)``, ``mask (B, 1, T)``/``None``."""

    def __init__(self, cfg: AutoAVSRConfig) -> None:
        super().__init__()
        d = cfg.dim
        self.feed_forward_macaron = FeedForward(d, cfg.ffn)
        self.self_attn = RelPositionMultiHeadedAttention(cfg.heads, d)
        self.conv_module = ConvModule(d, cfg.kernel)
        self.feed_forward = FeedForward(d, cfg.ffn)
        self.norm_ff_macaron = layer_norm(d)
        self.norm_mha = layer_norm(d)
        self.norm_conv = layer_norm(d)
        self.norm_ff = layer_norm(d)
        self.norm_final = layer_norm(d)

    def forward(self, x: torch.Tensor, pos_emb: torch.Tensor,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + 0.5 * self.feed_forward_macaron(self.norm_ff_macaron(x))  # half-step FFN
        x = x + self.self_attn(self.norm_mha(x), pos_emb, mask)
        x = x + self.conv_module(self.norm_conv(x))
        x = x + 0.5 * self.feed_forward(self.norm_ff(x))
        return self.norm_final(x)


class ConformerEncoder(nn.Module):
    """Upstream ``ConformerEncoder`` (``embed`` has no weights): ``(B, T, d)`` → same."""

    def __init__(self, cfg: AutoAVSRConfig) -> None:
        super().__init__()
        self.embed = RelPositionalEncoding(cfg.dim)
        self.encoders = nn.ModuleList(ConformerBlock(cfg) for _ in range(cfg.blocks))
        self.after_norm = layer_norm(cfg.dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x, pos_emb = self.embed(x)
        for block in self.encoders:
            x = block(x, pos_emb, mask)
        return self.after_norm(x)


class AutoAVSREncoder(nn.Module):
    """One modality (upstream main ``E2E`` without decoder/CTC): ``frontend``,
    ``proj_encoder``, ``encoder``.

    Input: video ``(B, 1, T, 88, 88)`` normalised grey, or audio ``(B, N)`` (utterance-normed,
    ``N`` a multiple of 640). Output ``(B, T, dim)``.
    """

    def __init__(self, cfg: AutoAVSRConfig, modality: str) -> None:
        super().__init__()
        self.frontend = make_frontend(modality, cfg.width)
        self.proj_encoder = nn.Linear(8 * cfg.width, cfg.dim)
        self.encoder = ConformerEncoder(cfg)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.encoder(self.proj_encoder(self.frontend(x)), mask)


class FusionMLP(nn.Module):
    """Upstream ``MLPHead`` with batchnorm: ``(B, T, 2d)`` → ``(B, T, d)``."""

    def __init__(self, dim_in: int, hidden: int, dim_out: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim_in, hidden)
        self.bn1 = nn.BatchNorm1d(hidden)
        self.fc2 = nn.Linear(hidden, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Per frame: a long sequence runs in blocks of frames (its hidden layer, 8192 floats a
        # frame in the released model, is the largest tensor).
        hidden_bytes = x.shape[0] * self.fc1.out_features * x.element_size()
        return windowed(self._frames, x, frames=x.shape[1], frame_bytes=hidden_bytes)

    def _frames(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn1(self.fc1(x).transpose(1, 2)).transpose(1, 2)
        return self.fc2(torch.relu(x))


class AutoAVSRAV(nn.Module):
    """Audio-visual model: video ``encoder`` + audio ``aux_encoder`` → ``fusion``.

    ``video (B, 1, T, 88, 88)``, ``audio (B, 640·T)`` → ``(B, T, dim)``.
    """

    def __init__(self, cfg: AutoAVSRConfig) -> None:
        super().__init__()
        self.encoder = AutoAVSREncoder(cfg, "video")
        self.aux_encoder = AutoAVSREncoder(cfg, "audio")
        self.fusion = FusionMLP(2 * cfg.dim, cfg.fusion_hidden, cfg.dim)

    def forward(self, video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        v, a = self.encoder(video), self.aux_encoder(audio)
        return self.fusion(torch.cat([v, a], dim=-1))  # order as upstream: video, audio


def build(cfg: AutoAVSRConfig) -> nn.Module:
    return AutoAVSRAV(cfg) if cfg.modality == "av" else AutoAVSREncoder(cfg, cfg.modality)


def build_random(cfg: AutoAVSRConfig) -> nn.Module:
    """:func:`build` with random weights: PyTorch's default init, except each front-end and
    ``proj_encoder`` (:func:`~avdd.backbones.layers.resnet.init_random_frontend`: with the
    defaults every frame of the untrained model points the same way)."""
    net = build(cfg)
    for module in net.modules():
        if isinstance(module, AutoAVSREncoder):
            init_random_frontend(module.frontend, module.proj_encoder)
    return net


# --- checkpoints ----------------------------------------------------------------------------

def _v1_encoder_key(rest: str) -> str:
    """A key of a v1.0.0 ``Encoder`` (front-end and projection inside) → main layout."""
    if rest.startswith("frontend."):
        return rest
    if rest.startswith("embed.0."):  # v1.0.0: embed = Sequential(Linear, RelPositionalEncoding)
        return "proj_encoder." + rest.removeprefix("embed.0.")
    return "encoder." + rest


def model_state(state: dict[str, torch.Tensor], modality: str) -> dict[str, torch.Tensor]:
    """Upstream keys (main or v1.0.0 layout) → :func:`build` keys; ASR heads dropped, any
    other key kept as is so that the loader names it."""
    state = {k: v for k, v in state.items() if not k.startswith(_DROPPED)}
    v1 = any(k.startswith(("encoder.frontend.", "encoder.embed.0.")) for k in state)
    if not v1:
        return state
    prefixes = ("encoder.", "aux_encoder.") if modality == "av" else ("encoder.",)
    out = {}
    for key, value in state.items():
        prefix = next((p for p in prefixes if key.startswith(p)), None)
        if prefix is None:
            out[key] = value
            continue
        mapped = _v1_encoder_key(key.removeprefix(prefix))
        out[(prefix if modality == "av" else "") + mapped] = value
    return out


def infer_config(state: dict[str, torch.Tensor], modality: str, source: str) -> AutoAVSRConfig:
    """The model size from :func:`build`-keyed tensor shapes."""
    p = "encoder." if modality == "av" else ""
    stem = {"video": "frontend.frontend3D.0.weight", "audio": "frontend.trunk.conv1.weight",
            "av": "frontend.frontend3D.0.weight"}[modality]
    block = f"{p}encoder.encoders.0."
    needed = [p + stem, f"{p}proj_encoder.weight", block + "self_attn.pos_bias_u",
              block + "feed_forward.w_1.weight", block + "conv_module.depthwise_conv.weight"]
    if modality == "av":
        needed += ["aux_encoder.frontend.trunk.conv1.weight", "fusion.fc1.weight"]
    absent = [k for k in needed if k not in state]
    if absent:
        found = _detect(state)
        hint = f" It holds a {found} model: use autoavsr-{SHORT[found]}." if found else ""
        raise CheckpointError(f"{source}: not an Auto-AVSR {modality} checkpoint (no "
                              f"{', '.join(absent)}).{hint}")
    return AutoAVSRConfig(
        modality=modality,
        dim=state[f"{p}proj_encoder.weight"].shape[0],
        blocks=1 + max(int(k.removeprefix(f"{p}encoder.encoders.").split(".")[0])
                       for k in state if k.startswith(f"{p}encoder.encoders.")),
        heads=state[block + "self_attn.pos_bias_u"].shape[0],
        ffn=state[block + "feed_forward.w_1.weight"].shape[0],
        kernel=state[block + "conv_module.depthwise_conv.weight"].shape[-1],
        width=state[p + stem].shape[0],
        fusion_hidden=state["fusion.fc1.weight"].shape[0] if modality == "av"
        else AutoAVSRConfig.fusion_hidden,
    )


def _detect(state: dict[str, torch.Tensor]) -> str | None:
    """Which model a :func:`model_state`-keyed state dict holds, if any."""
    if "fusion.fc1.weight" in state:
        return "av"
    if "frontend.frontend3D.0.weight" in state:
        return "video"
    return "audio" if "frontend.trunk.conv1.weight" in state else None


def read_model(checkpoint: str | Path, modality: str, *, lazy: bool = False
               ) -> tuple[AutoAVSRConfig, dict[str, torch.Tensor]]:
    """``(size, build-keyed state)`` of a release file; ``lazy`` memory-maps it, for a caller
    that reads only the shapes (:func:`avdd.backbones.describe`)."""
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
    download = f"{DEFAULT_FILES[modality]}/model.pth (or another {SHORT[modality]} model) from {ZOO}"
    state = model_state(read_state_dict(checkpoint, "Auto-AVSR", download, lazy=lazy),
                        modality)
    return infer_config(state, modality, str(checkpoint)), state


# --- backbones ------------------------------------------------------------------------------

CROPS = ("autoavsr", "avhubert")


class AutoAVSR(Backbone):
    """Pretrained Auto-AVSR encoder → ``(T, dim)`` at 25 Hz; ``modality`` (``"visual"``,
    ``"audio"``, ``"audio-visual"``) is set per instance.

    ``crop``: the mouth-crop recipe, ``"autoavsr"`` (the paper's, :mod:`avdd.roi.autoavsr`)
    or ``"avhubert"`` (AV-HuBERT's, which needs no OpenCV: the tiny demo models' default).
    ``landmarks``: its landmark source (``"auto"``: synthetic annotations, else the recipe's
    official detector).
    """

    weights = "pretrained"
    #: 2: the paper's crop recipe and audio rules (eps 0, whole frames only), the landmark
    #: source and crop recorded.
    version = 2
    uses_mouth_roi = True  # the runner passes the cached mouth ROI (Roi.mouth)
    audio_input = "utterance_norm"  # lip_inputs audio mode: layer_norm(x, x.shape, eps=0)

    def __init__(self, checkpoint: str | Path, *, modality: str = "video",
                 trim_silence: bool = False, landmarks: str = "auto", crop: str = "autoavsr",
                 name: str | None = None) -> None:
        source = str(checkpoint)
        cfg, state = read_model(checkpoint, modality)
        net = build(cfg)
        load_checked(net, state, source)
        self.net = frozen(net)
        self._describe(cfg, source, name or f"autoavsr-{SHORT[modality]}", trim_silence,
                       landmarks, crop)

    @classmethod
    def unbuilt(cls, checkpoint: str | Path, *, modality: str = "video",
                trim_silence: bool = False, landmarks: str = "auto", crop: str = "autoavsr",
                name: str | None = None) -> AutoAVSR:
        """What ``cls(checkpoint, ...)`` describes itself by, from the checkpoint's tensor
        *shapes* (memory-mapped: no weight is read, no network built): for
        :func:`avdd.backbones.describe`. A file whose keys would not all fit is found only
        when it is built."""
        self = cls._shell()
        cfg, _ = read_model(checkpoint, modality, lazy=True)
        self._describe(cfg, str(checkpoint), name or f"autoavsr-{SHORT[modality]}",
                       trim_silence, landmarks, crop)
        return self

    def _describe(self, cfg: AutoAVSRConfig, source: str, name: str,
                  trim_silence: bool, landmarks: str, crop: str) -> None:
        """Every attribute :meth:`config` and the description read."""
        if crop not in CROPS:
            raise ValueError(f"crop must be one of {CROPS}, got {crop!r}")
        self.cfg = cfg
        self.source = source
        self.name = name
        self.trim_silence = bool(trim_silence)
        self.landmarks = landmarks
        self.roi_recipe = crop
        self.modality = {"video": "visual", "audio": "audio", "av": "audio-visual"}[cfg.modality]
        self.dim = cfg.dim
        self.fps = FPS

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "checkpoint": self.source,
                "weights": self.weights, "dim": self.dim, "fps": self.fps,
                "arch": asdict(self.cfg), "audio_input": self.audio_input,
                "trim_silence": self.trim_silence, "landmarks": self.landmarks,
                "crop": self.roi_recipe}

    def feature_rate(self, clip: Clip) -> float:
        from avdd.backbones.layers.lip_inputs import lip_feature_rate

        return lip_feature_rate(clip, self.needs_video)

    def encode(self, video: np.ndarray | None = None,
               audio: np.ndarray | None = None) -> np.ndarray:
        """Video ``(T, 88, 88)`` float32 (normalised) and/or audio ``(N,)`` float32 16 kHz
        (utterance-normalised) → ``(T, dim)`` float32.

        Audio gives ``N // 640`` frames; the AV model uses the frames both streams cover.
        """
        frames = [len(video)] if self.needs_video else []
        if self.needs_audio:
            frames.append(len(audio) // HOP)
        t = min(frames)
        if t == 0:
            return np.zeros((0, self.dim), np.float32)
        dev = getattr(self, "device", "cpu")
        inputs = []
        if self.needs_video:
            inputs.append(torch.from_numpy(np.ascontiguousarray(video[:t], np.float32))[None, None])
        if self.needs_audio:
            a = np.ascontiguousarray(audio[: t * HOP], np.float32)
            inputs.append(torch.from_numpy(a)[None])
        with torch.inference_mode():
            out = self.net(*(x.to(dev) for x in inputs))
        return out[0].float().cpu().numpy()

    def __call__(self, clip: Clip, roi: Roi | None = None) -> np.ndarray:
        from avdd.backbones.layers.lip_inputs import lip_inputs

        inp = lip_inputs(clip, roi, audio=self.audio_input, need_video=self.needs_video,
                         need_audio=self.needs_audio, landmarks=self.landmarks,
                         trim_silence=self.trim_silence, recipe=self.roi_recipe)
        return self.encode(inp.video if self.needs_video else None,
                           inp.audio if self.needs_audio else None)


class AutoAVSRRandom(AutoAVSR):
    """The Auto-AVSR architecture (``config``, default the 768-d VSR model) with weights
    seeded by ``seed`` (:func:`build_random`, BatchNorm running stats 0/1)."""

    weights = "random"
    #: 3: He-initialised trunks, zero projection biases (the defaults collapsed every frame to one
    #: direction: :func:`build_random`).
    version = 3

    def __init__(self, *, config: AutoAVSRConfig | None = None, seed: int = 0,
                 trim_silence: bool = False, landmarks: str = "auto", crop: str = "autoavsr",
                 name: str | None = None) -> None:
        cfg = config or AutoAVSRConfig()
        self._describe_random(cfg, seed, trim_silence, landmarks, crop, name)
        self.net = frozen(seeded(lambda: build_random(cfg), seed))

    @classmethod
    def unbuilt(cls, *, config: AutoAVSRConfig | None = None, seed: int = 0,
                trim_silence: bool = False, landmarks: str = "auto", crop: str = "autoavsr",
                name: str | None = None) -> AutoAVSRRandom:
        """``cls(...)`` without its network."""
        self = cls._shell()
        self._describe_random(config or AutoAVSRConfig(), seed, trim_silence, landmarks, crop,
                              name)
        return self

    def _describe_random(self, cfg: AutoAVSRConfig, seed: int, trim_silence: bool,
                         landmarks: str, crop: str, name: str | None) -> None:
        self.seed = seed
        self._describe(cfg, "config", name or f"autoavsr-{SHORT[cfg.modality]}-random",
                       trim_silence, landmarks, crop)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "seed": self.seed}


#: The tiny demo models keep AV-HuBERT's crop: the Auto-AVSR recipe needs OpenCV, which the
#: book's environment does not install (the tests run the recipe through ``crop=autoavsr``).
TINY_CROP = "avhubert"


def _random(modality: str, tiny: bool, seed: int, trim_silence: bool, landmarks: str,
            crop: str | None, *, unbuilt: bool = False) -> AutoAVSRRandom:
    cfg = tiny_config(modality) if tiny else AutoAVSRConfig(modality=modality)
    name = f"autoavsr-{SHORT[modality]}{'-tiny' if tiny else ''}-random"
    make = AutoAVSRRandom.unbuilt if unbuilt else AutoAVSRRandom
    return make(config=cfg, seed=seed, trim_silence=trim_silence, landmarks=landmarks,
                crop=crop or (TINY_CROP if tiny else "autoavsr"), name=name)


# What describe() reads for each registered name: the factory below it, without the network.
def _pretrained_unbuilt(modality: str):
    def unbuilt(checkpoint: str, *, trim_silence: bool = False, landmarks: str = "auto",
                crop: str = "autoavsr") -> AutoAVSR:
        return AutoAVSR.unbuilt(checkpoint, modality=modality, trim_silence=trim_silence,
                                landmarks=landmarks, crop=crop)
    return unbuilt


def _random_unbuilt(modality: str, tiny: bool):
    def unbuilt(*, seed: int = 0, trim_silence: bool = False, landmarks: str = "auto",
                crop: str | None = None) -> AutoAVSRRandom:
        return _random(modality, tiny, seed, trim_silence, landmarks, crop, unbuilt=True)
    return unbuilt


@register("autoavsr-vsr", unbuilt=_pretrained_unbuilt("video"))
def autoavsr_vsr(checkpoint: str, *, trim_silence: bool = False, landmarks: str = "auto",
                 crop: str = "autoavsr") -> AutoAVSR:
    """Pretrained Auto-AVSR VSR model (video conformer; the paper: LRS3_V_WER19.1)."""
    return AutoAVSR(checkpoint, modality="video", trim_silence=trim_silence,
                    landmarks=landmarks, crop=crop)


@register("autoavsr-asr", unbuilt=_pretrained_unbuilt("audio"))
def autoavsr_asr(checkpoint: str, *, trim_silence: bool = False, landmarks: str = "auto",
                 crop: str = "autoavsr") -> AutoAVSR:
    """Pretrained Auto-AVSR ASR model (raw-audio conformer; the paper: LRS3_A_WER1.0)."""
    return AutoAVSR(checkpoint, modality="audio", trim_silence=trim_silence,
                    landmarks=landmarks, crop=crop)


@register("autoavsr-av", unbuilt=_pretrained_unbuilt("av"))
def autoavsr_av(checkpoint: str, *, trim_silence: bool = False, landmarks: str = "auto",
                crop: str = "autoavsr") -> AutoAVSR:
    """Pretrained Auto-AVSR audio-visual model: the fusion output (the paper: LRS3_AV_WER0.9)."""
    return AutoAVSR(checkpoint, modality="av", trim_silence=trim_silence,
                    landmarks=landmarks, crop=crop)


@register("autoavsr-vsr-random", unbuilt=_random_unbuilt("video", False))
def autoavsr_vsr_random(*, seed: int = 0, trim_silence: bool = False, landmarks: str = "auto",
                        crop: str | None = None) -> AutoAVSRRandom:
    """768-d VSR architecture, random weights."""
    return _random("video", False, seed, trim_silence, landmarks, crop)


@register("autoavsr-asr-random", unbuilt=_random_unbuilt("audio", False))
def autoavsr_asr_random(*, seed: int = 0, trim_silence: bool = False, landmarks: str = "auto",
                        crop: str | None = None) -> AutoAVSRRandom:
    """768-d ASR architecture, random weights."""
    return _random("audio", False, seed, trim_silence, landmarks, crop)


@register("autoavsr-vsr-tiny-random", unbuilt=_random_unbuilt("video", True))
def autoavsr_vsr_tiny_random(*, seed: int = 0, trim_silence: bool = False,
                             landmarks: str = "auto", crop: str | None = None) -> AutoAVSRRandom:
    """Tiny VSR model (32-d, 2 blocks, kernel 3) for tests and demos (AV-HuBERT's crop
    unless ``crop=autoavsr``: :data:`TINY_CROP`)."""
    return _random("video", True, seed, trim_silence, landmarks, crop)


@register("autoavsr-asr-tiny-random", unbuilt=_random_unbuilt("audio", True))
def autoavsr_asr_tiny_random(*, seed: int = 0, trim_silence: bool = False,
                             landmarks: str = "auto", crop: str | None = None) -> AutoAVSRRandom:
    """Tiny ASR model (32-d, 2 blocks, kernel 3) for tests and demos."""
    return _random("audio", True, seed, trim_silence, landmarks, crop)


@register("autoavsr-av-tiny-random", unbuilt=_random_unbuilt("av", True))
def autoavsr_av_tiny_random(*, seed: int = 0, trim_silence: bool = False,
                            landmarks: str = "auto", crop: str | None = None) -> AutoAVSRRandom:
    """Tiny AV model (two 32-d encoders + fusion) for tests and demos."""
    return _random("av", True, seed, trim_silence, landmarks, crop)
