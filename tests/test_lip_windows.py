"""Long sequences through the lip models in windows (:mod:`avdd.backbones.layers.windows`).

Each stage that grew with the clip (the video stem + ResNet, the raw-audio ResNet, rel-pos
attention scores, Auto-AVSR's fusion MLP) must, once a sequence exceeds the budget, create no
tensor larger than about one window's, and give the features of the whole run: bit for bit
with one thread, within float rounding with several (Swish, i.e. SiLU, takes a scalar path
at the edges of each thread's share of a tensor, so the whole run's own last bits already
depend on the thread count: checked below too).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from avdd.backbones import get_backbone
from avdd.backbones.autoavsr import FusionMLP
from avdd.backbones.avhubert import AVHubertConfig, EncoderLayer
from avdd.backbones.layers import windows
from avdd.backbones.layers.relpos import (
    FeedForward,
    RelPositionalEncoding,
    RelPositionMultiHeadedAttention,
    rel_shift,
    rel_shift_rows,
)
from avdd.backbones.layers.resnet import AudioResNet1d, VideoResNet, init_trunk

MIB = 2**20


class LargestTensor(TorchDispatchMode):
    """The largest tensor any op allocates (views excluded: they allocate nothing)."""

    def __init__(self) -> None:
        super().__init__()
        self.nbytes, self.op = 0, None

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if not func.is_view:
            for t in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(t, torch.Tensor) and t.untyped_storage().nbytes() > self.nbytes:
                    self.nbytes, self.op = t.untyped_storage().nbytes(), str(func)
        return out


@pytest.fixture
def budget(monkeypatch):
    """Shrink both budgets to ``nbytes``: every stage above it runs in windows of it."""
    def set_budget(nbytes: int) -> None:
        monkeypatch.setattr(windows, "WHOLE_BYTES", nbytes)
        monkeypatch.setattr(windows, "WINDOW_BYTES", nbytes)
    return set_budget


@pytest.fixture
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def run(fn, *args):
    with torch.inference_mode(), LargestTensor() as spy:
        out = fn(*args)
    return out, spy


def video_resnet(act: str) -> VideoResNet:
    torch.manual_seed(0)
    net = VideoResNet(act=act, width=8).eval()
    init_trunk(net)
    for m in net.modules():  # running statistics other than 0/1, so BN is not an identity
        if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
    return net


def test_spans_keep_ordinary_clips_whole():
    # The released models on a 20 s clip (500 frames of 88 x 88): every stage runs whole, as
    # before windows existed; a 300 s clip is cut.
    stem = 64 * 44 * 44 * 4  # width-64 stem output, bytes a frame
    rows = {heads: heads * (2 * 500 - 1) * 4 for heads in (12, 16)}  # attention scores a row
    audio = 80 * 160 * 4
    assert windows.spans(500, stem) is None
    assert all(windows.spans(500, r) is None for r in rows.values())
    assert windows.spans(500, audio) is None and windows.spans(500, 4 * 8192) is None
    cut = windows.spans(7500, stem)
    assert cut[0] == (0, windows.WINDOW_BYTES // stem) and cut[-1][1] == 7500
    assert all(a == b for (_, a), (b, _) in zip(cut, cut[1:]))


@pytest.mark.parametrize("act", ["prelu", "swish"])
def test_video_frontend_runs_in_windows(act, budget, one_thread):
    net, x = video_resnet(act), torch.randn(1, 1, 40, 88, 88)
    whole, spy_whole = run(net, x)
    frame = 8 * 44 * 44 * 4  # the stem's output a frame, the largest tensor
    assert spy_whole.nbytes >= 40 * frame
    budget(6 * frame)
    parts, spy = run(net, x)
    assert spy.nbytes <= (6 + 2 * VideoResNet.HALO) * frame, spy.op
    assert torch.equal(whole, parts)


def test_swish_differs_with_threads_only_in_rounding(budget):
    # Several threads: the windows' last bits may differ from the whole run's, as the whole
    # run's own differ between one thread and two.
    net, x = video_resnet("swish"), torch.randn(1, 1, 40, 88, 88)
    with torch.inference_mode():
        whole = net(x)
        budget(6 * 8 * 44 * 44 * 4)
        parts = net(x)
    torch.testing.assert_close(parts, whole, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("width", [8, 64])
def test_audio_frontend_runs_in_windows(width, budget, one_thread):
    torch.manual_seed(0)
    net = AudioResNet1d(width=width).eval()
    init_trunk(net)
    x = torch.randn(1, 30 * 640 + 100)  # a partial last frame, dropped as before
    whole, spy_whole = run(net, x)
    budget(4 * max(80, width) * 160 * 4)  # windows of 4 frames (the stem's 80 taps a frame)
    parts, spy = run(net, x)
    activation = width * 160 * 4  # the largest tensor an op returns, a frame
    assert spy_whole.nbytes >= 30 * activation
    assert spy.nbytes <= (4 + 2 * AudioResNet1d.HALO) * activation, spy.op
    # oneDNN picks its 1-D convolution's algorithm by length (on this CPU a 3-tap conv over
    # 1,600 positions and over 4,800 differ in the last bits, over 4,096 and 4,800 agree), so
    # windows round differently from the whole run: close, not equal.
    assert parts.shape == (1, 30, 8 * width)
    torch.testing.assert_close(parts, whole, rtol=1e-5, atol=1e-7)


def test_audio_halo_is_needed(budget, one_thread, monkeypatch):
    # Without the halo a window's edge frames see its zero padding: the halo is not for show.
    torch.manual_seed(0)
    net = AudioResNet1d(width=8).eval()
    x = torch.randn(1, 30 * 640)
    with torch.inference_mode():
        whole = net(x)
        budget(4 * 80 * 160 * 4)
        monkeypatch.setattr(AudioResNet1d, "HALO", 0)
        assert not torch.equal(whole, net(x))


def test_rel_shift_rows_is_rel_shift_on_every_block():
    t, c = 11, 4
    scores = torch.randn(2, 3, t, 2 * t - 1)
    full = rel_shift(scores)
    assert torch.equal(rel_shift_rows(scores, t), full)
    for s in range(0, t, c):
        e = min(t, s + c)
        band = scores[:, :, s:e, t - e: 2 * t - 1 - s]
        assert torch.equal(rel_shift_rows(band, t), full[:, :, s:e])


@pytest.mark.parametrize("masked", [False, True])
def test_attention_takes_queries_in_blocks(masked, budget):
    torch.manual_seed(0)
    t, heads, dim = 300, 4, 32
    att = RelPositionMultiHeadedAttention(heads, dim).eval()
    x, pos = RelPositionalEncoding(dim)(torch.randn(1, t, dim))
    mask = (torch.arange(t) < 250)[None, None] if masked else None
    whole, spy_whole = run(att, x, pos, mask)
    row = heads * (2 * t - 1) * 4
    assert spy_whole.nbytes >= t * row  # the (B, H, T, 2T - 1) scores
    budget(16 * row)
    parts, spy = run(att, x, pos, mask)
    # A block of 16 queries holds (B, H, 16, 16 + T - 1) floats at most (the padded band).
    assert spy.nbytes <= 16 * heads * (16 + t) * 4, spy.op
    assert torch.equal(whole, parts)  # matmuls by rows: the same products on any thread count


def test_fusion_mlp_runs_in_blocks_of_frames(budget, one_thread):
    torch.manual_seed(0)
    mlp = FusionMLP(64, 512, 32).eval()
    mlp.bn1.running_mean.normal_()
    x = torch.randn(1, 100, 64)
    whole, spy_whole = run(mlp, x)
    frame = 512 * 4  # its hidden layer, a frame
    assert spy_whole.nbytes >= 100 * frame
    budget(10 * frame)
    parts, spy = run(mlp, x)
    assert spy.nbytes <= 10 * frame, spy.op
    assert torch.equal(whole, parts)


#: Tolerance of the raw-audio models (seen: 1.1e-6 for braven-a, 3.6e-7 for autoavsr-av, on
#: features up to 2.3 and 0.65).
AUDIO_ROUNDING = {"braven-a-tiny-random": 1e-5, "autoavsr-av-tiny-random": 1e-5}
T = 48  # frames: the tiny stem is 61,952 bytes a frame, 3.0 MB for all


@pytest.mark.parametrize("name", ["avhubert-v-tiny-random", "avhubert-av-tiny-random",
                                  "braven-v-tiny-random", "braven-a-tiny-random",
                                  "autoavsr-vsr-tiny-random", "autoavsr-av-tiny-random"])
def test_backbone_features_in_windows_equal_the_whole_run(name, budget, one_thread):
    backbone = get_backbone(name)
    rng = np.random.default_rng(0)
    video = rng.standard_normal((T, 88, 88), dtype=np.float32)
    fbank = rng.standard_normal((T, 104), dtype=np.float32)
    wave = rng.standard_normal(T * 640, dtype=np.float32)
    if name.startswith("avhubert"):
        inputs = (video, fbank if backbone.needs_audio else None)
    elif name.startswith("braven"):
        inputs = (video if backbone.needs_video else wave,)
    else:
        inputs = (video, wave if backbone.needs_audio else None)
    with LargestTensor() as spy_whole:
        whole = backbone.encode(*inputs)
    budget(8 * 8 * 44 * 44 * 4)  # 8 frames of the tiny stem: ~6 windows
    calls = []
    spans = windows.spans
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(windows, "spans", lambda *a: calls.append(r := spans(*a)) or r)
        with LargestTensor() as spy:
            parts = backbone.encode(*inputs)
    assert any(c is not None and len(c) > 1 for c in calls)  # some stage was cut
    assert spy.nbytes < spy_whole.nbytes / 2, (spy.op, spy_whole.op)
    assert whole.shape == (T, backbone.dim)
    if name in AUDIO_ROUNDING:  # the raw-audio ResNet rounds by window length (above)
        np.testing.assert_allclose(parts, whole, rtol=0, atol=AUDIO_ROUNDING[name])
    else:
        assert np.array_equal(whole, parts)


@pytest.mark.parametrize("family", ["relpos", "avhubert"])
def test_feed_forward_runs_in_blocks_of_frames(family, budget, one_thread):
    torch.manual_seed(0)
    # Narrow frames (8), a wide hidden layer (256): the (100, 8) sequence itself is small.
    if family == "relpos":
        ffn = FeedForward(8, 256).eval()
    else:
        ffn = EncoderLayer(AVHubertConfig(dim=8, heads=2, ffn=256, conv_pos_groups=4)).eval()
    x = torch.randn(1, 100, 8)
    whole, spy_whole = run(ffn, x)
    frame = 256 * 4
    assert spy_whole.nbytes >= 100 * frame
    budget(10 * frame)
    parts, spy = run(ffn, x)
    assert spy.nbytes <= 10 * frame, spy.op
    assert torch.equal(whole, parts)
