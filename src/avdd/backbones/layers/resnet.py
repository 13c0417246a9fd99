"""Lip-reading front-ends shared by AV-HuBERT, BRAVEn and Auto-AVSR.

All three models put the same ResNet-18 family in front of their transformer, so one
implementation with their **module names** lets each checkpoint load by key:

- :class:`VideoResNet`: 3-D stem + per-frame 2-D ResNet-18. AV-HuBERT uses PReLU activations
  (``avhubert/resnet.py``: ``ResEncoder``), BRAVEn/RAVEn and Auto-AVSR use Swish
  (``espnet/.../conv3d_extractor.py`` / ``frontend/resnet.py``: ``Conv3dResNet``).
  State-dict keys: ``frontend3D.{0,1,2}.*``, ``trunk.layer{1-4}.{0,1}.{conv1,bn1,relu1,conv2,
  bn2,relu2}.*`` (``relu*`` hold weights only for PReLU), ``trunk.layer{2-4}.0.downsample.{0,1}.*``.
- :class:`AudioResNet1d`: raw-waveform 1-D ResNet-18 of BRAVEn/RAVEn and Auto-AVSR
  (``Conv1dResNet``). Upstream keeps its stem *inside* the trunk, so the keys are
  ``trunk.{conv1,bn1}.*``, ``trunk.layer{1-4}.*`` (no ``frontend1D``).

Both were read in the upstream sources (av_hubert, ahaliassos/raven, mpc001/auto_avsr); the
code here is written from those facts, not copied.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from avdd.backbones.layers.windows import windowed

ACTIVATIONS = ("prelu", "swish")


def _act(kind: str, channels: int) -> nn.Module:
    """PReLU with one slope per channel (AV-HuBERT) or Swish = SiLU, parameter-free
    (ESPnet's ``Swish`` is ``x * sigmoid(x)``)."""
    if kind == "prelu":
        return nn.PReLU(num_parameters=channels)
    if kind == "swish":
        return nn.SiLU()
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {kind!r}")


class BasicBlock(nn.Module):
    """ResNet basic block (two 3×3 convs), 2-D or 1-D; upstream attribute names.

    ``relu2`` is applied after the residual sum, as upstream does.
    """

    def __init__(self, cin: int, cout: int, stride: int, act: str, dims: int) -> None:
        super().__init__()
        conv = nn.Conv2d if dims == 2 else nn.Conv1d
        norm = nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d
        self.conv1 = conv(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = norm(cout)
        self.relu1 = _act(act, cout)
        self.conv2 = conv(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = norm(cout)
        self.relu2 = _act(act, cout)
        # Upstream adds a 1×1 conv + BN shortcut whenever the shape changes (layer2-4, block 0).
        self.downsample = (nn.Sequential(conv(cin, cout, 1, stride, bias=False), norm(cout))
                           if stride != 1 or cin != cout else None)

    def forward(self, x: Tensor) -> Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + residual)


def _layers(width: int, act: str, dims: int) -> list[nn.Sequential]:
    """The four stages of ResNet-18: [2, 2, 2, 2] blocks, widths w/2w/4w/8w, strides 1/2/2/2."""
    stages, cin = [], width
    for i in range(4):
        cout, stride = width * 2 ** i, 1 if i == 0 else 2
        stages.append(nn.Sequential(BasicBlock(cin, cout, stride, act, dims),
                                    BasicBlock(cout, cout, 1, act, dims)))
        cin = cout
    return stages


class ResNet2d(nn.Module):
    """Per-frame 2-D ResNet-18 trunk: ``(N, w, H, W)`` → ``(N, 8w)`` (global average pool)."""

    def __init__(self, width: int, act: str) -> None:
        super().__init__()
        self.layer1, self.layer2, self.layer3, self.layer4 = _layers(width, act, 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.avgpool(x).flatten(1)


class VideoResNet(nn.Module):
    """Mouth-ROI video front-end: ``(B, 1, T, H, W)`` → ``(B, T, 8·width)``.

    Conv3d(1→w, k=(5,7,7), s=(1,2,2), p=(2,3,3)) → BN3d → act → MaxPool3d((1,3,3),(1,2,2),
    (0,1,1)), then every frame through the 2-D ResNet-18. The temporal kernel 5 with padding 2
    keeps T unchanged (25 Hz in, 25 Hz out). 88×88 input → 22×22 after the stem → 3×3 at
    layer4 → pooled.

    Args:
        act: ``"prelu"`` (AV-HuBERT) or ``"swish"`` (BRAVEn, Auto-AVSR).
        width: stem/first-stage channels; 64 in every released model (output 512).
    """

    def __init__(self, *, act: str = "prelu", width: int = 64) -> None:
        super().__init__()
        if act not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {act!r}")
        self.act = act
        self.width = width
        self.out_dim = 8 * width
        self.frontend3D = nn.Sequential(
            nn.Conv3d(1, width, (5, 7, 7), (1, 2, 2), (2, 3, 3), bias=False),
            nn.BatchNorm3d(width),
            _act(act, width),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
        )
        self.trunk = ResNet2d(width, act)

    #: Input frames either side that one output frame depends on: the stem's temporal kernel
    #: is 5 (padding 2); everything after it is per frame.
    HALO = 2

    def forward(self, x: Tensor) -> Tensor:
        """``(B, 1, T, H, W)`` float (normalised grey) → ``(B, T, 8·width)``.

        A long sequence runs in windows of frames with a 2-frame halo
        (:func:`~avdd.backbones.layers.windows.windowed`), sized by the stem's output
        (``B · width · ⌈H/2⌉ · ⌈W/2⌉`` floats a frame, the largest tensor: 484 KiB at width 64,
        88 × 88); a clip whose whole stem output fits ``WHOLE_BYTES`` runs in one call.
        """
        if x.ndim != 5 or x.shape[1] != 1:
            raise ValueError(f"expected (B, 1, T, H, W) video, got {tuple(x.shape)}")
        b, _, t, h, w = x.shape
        stem_bytes = b * self.width * -(-h // 2) * -(-w // 2) * x.element_size()
        return windowed(self._frames, x, frames=t, frame_bytes=stem_bytes, halo=self.HALO,
                        dim=2)

    def _frames(self, x: Tensor) -> Tensor:
        """The whole front-end on one run of frames: ``(B, 1, T, H, W)`` → ``(B, T, 8·width)``."""
        b = x.shape[0]
        x = self.frontend3D(x)  # (B, w, T, H', W')
        _, c, t, h, w = x.shape
        x = x.transpose(1, 2).reshape(b * t, c, h, w)  # frames as a batch for the 2-D trunk
        return self.trunk(x).view(b, t, -1)


class ResNet1d(nn.Module):
    """Raw-audio 1-D ResNet-18 with its stem inside (upstream ``ResNet1D``): ``(B, 1, N)`` →
    ``(B, 8w, N/640)``.

    Stem Conv1d(1→w, k=80, s=4, p=38) (5 ms kernel, 4 kHz), four stages (strides 1/2/2/2 →
    ×32 in all), AvgPool1d(20) → one frame per 640 samples = 25 Hz at 16 kHz.
    """

    def __init__(self, width: int, act: str = "swish") -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(1, width, 80, 4, 38, bias=False)
        self.bn1 = nn.BatchNorm1d(width)
        self.relu = _act(act, width)
        self.layer1, self.layer2, self.layer3, self.layer4 = _layers(width, act, 1)
        self.avgpool = nn.AvgPool1d(20, 20)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.avgpool(x)


class AudioResNet1d(nn.Module):
    """Raw 16 kHz waveform front-end of BRAVEn/RAVEn and Auto-AVSR: ``(B, N)`` → ``(B, N // 640,
    8·width)`` at 25 Hz.

    Samples beyond the last whole multiple of 640 (one 25 Hz frame) are dropped first, as
    upstream does, so the output aligns with the video frames. Swish activations throughout.

    Args:
        width: stem/first-stage channels; 64 in the released models (output 512).
    """

    SAMPLES_PER_FRAME = 640  # 16 kHz / 25 Hz

    def __init__(self, *, width: int = 64) -> None:
        super().__init__()
        self.width = width
        self.out_dim = 8 * width
        self.trunk = ResNet1d(width, "swish")

    #: Frames of samples either side that one output frame depends on. Its receptive field is
    #: 1,112 samples (stem 80, 3-tap convolutions at strides 4 to 32, the 20-position pool),
    #: from 250 samples before its own 640 to 222 after (the layers' padding offsets): one
    #: frame either side covers it, two are kept so that no layer's zero padding at a
    #: window's edge reaches a kept frame.
    HALO = 2
    #: The largest tensor per frame: the stem's 80-tap convolution works on an unfolded input
    #: of 80 taps × 160 outputs a frame (measured: ~51 KiB a frame whatever the width), larger
    #: than every activation up to width 80.
    STEM_TAPS = 80

    def forward(self, x: Tensor) -> Tensor:
        """``(B, N)`` float waveform → ``(B, N // 640, 8·width)``.

        A long waveform runs in windows of whole frames (640 samples, a multiple of the trunk's
        stride 32, so every window's output grid is the whole run's) with a 2-frame halo
        (:func:`~avdd.backbones.layers.windows.windowed`).
        """
        if x.ndim != 2:
            raise ValueError(f"expected (B, N) waveform, got {tuple(x.shape)}")
        hop = self.SAMPLES_PER_FRAME
        frames = x.shape[1] // hop
        if frames == 0:
            return x.new_zeros(x.shape[0], 0, self.out_dim)
        stem_bytes = (x.shape[0] * max(self.STEM_TAPS, self.width) * (hop // 4)
                      * x.element_size())
        return windowed(lambda w: self.trunk(w).transpose(1, 2), x[:, None, :frames * hop],
                        frames=frames, frame_bytes=stem_bytes, halo=self.HALO, dim=2, unit=hop)


__all__ = ["AudioResNet1d", "VideoResNet", "init_random_frontend", "init_trunk",
           "make_frontend"]


def make_frontend(modality: str, width: int) -> nn.Module:
    """Swish video ResNet-18 or raw-audio 1-D ResNet-18, both ``8·width``-d at 25 Hz."""
    if modality == "video":
        return VideoResNet(act="swish", width=width)
    return AudioResNet1d(width=width)


def init_trunk(frontend: VideoResNet | AudioResNet1d) -> None:
    """av_hubert's ``ResNet`` init, in place: every conv of the trunk N(0, √(2 / (k·out)))
    (``k`` = kernel taps, He init over fan-out); the 3-D video stem keeps PyTorch's default.

    Why random-weight models need it: in eval mode a BatchNorm with its initial running stats
    (mean 0, var 1) is an identity, so nothing rescales the trunk. PyTorch's default conv init
    (weight variance 1/(3·fan_in)) then shrinks the activations about five-fold per stage
    (norm 0.5 after the stem, 0.002 after layer4 on the demo's mouth crops); the projection's
    bias (PyTorch default, norm ~0.4 at 64 → 32) swamps what is left and every frame points
    the same way (mean cosine 1.0000). He init keeps the scale (trunk output norm ~10), as
    it does in AV-HuBERT. The upstream BRAVEn/Auto-AVSR ResNets set no init of their own:
    they are trained, where BatchNorm's batch statistics hide the scale.
    """
    for m in frontend.trunk.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            n = math.prod(m.kernel_size) * m.out_channels
            nn.init.normal_(m.weight, std=math.sqrt(2.0 / n))


def init_random_frontend(frontend: VideoResNet | AudioResNet1d, projection: nn.Linear) -> None:
    """Random init of a Swish front-end and the Linear after it (BRAVEn ``embed.0``,
    Auto-AVSR ``proj_encoder``), in place: :func:`init_trunk`, and a zero projection bias.

    Why the bias: the eval-mode trunk output of an untrained model is small and shares one
    positive mean over frames, and PyTorch's default bias, U(±1/√fan_in) whatever the input's
    scale, then sets the direction of every frame (mean cosine 1.0000 on the demo for
    BRAVEn-V tiny, with the trunk He-initialised still 0.993). A zero bias (as fairseq's
    ``init_bert_params`` gives every Linear) leaves the direction to the frame's content.
    """
    init_trunk(frontend)
    nn.init.zeros_(projection.bias)
