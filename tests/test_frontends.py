"""Lip-reading front-ends: output shapes/frame rates, and state-dict keys and shapes in the
upstream layouts (av_hubert ``ResEncoder``, raven/auto_avsr ``Conv3dResNet``/``Conv1dResNet``)
so released checkpoints load by key."""

from __future__ import annotations

import pytest
import torch

from avdd.backbones.layers.resnet import AudioResNet1d, VideoResNet

BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def upstream_trunk_keys(prelu: bool) -> set[str]:
    """Key names of the ResNet-18 trunk as upstream writes them (without ``trunk.``)."""
    keys = set()
    for layer in range(1, 5):
        for block in range(2):
            p = f"layer{layer}.{block}."
            keys |= {p + "conv1.weight", p + "conv2.weight"}
            keys |= {p + f"bn{i}.{b}" for i in (1, 2) for b in BN}
            if prelu:
                keys |= {p + "relu1.weight", p + "relu2.weight"}
            if layer > 1 and block == 0:
                keys |= {p + "downsample.0.weight"} | {p + f"downsample.1.{b}" for b in BN}
    return keys


@pytest.mark.parametrize("act", ["prelu", "swish"])
@pytest.mark.parametrize("t", [1, 4, 9])
def test_video_resnet_shapes(act, t):
    net = VideoResNet(act=act, width=8).eval()
    with torch.inference_mode():
        out = net(torch.randn(2, 1, t, 88, 88))
    assert out.shape == (2, t, 64) and net.out_dim == 64


def test_video_resnet_frames_are_independent_beyond_the_temporal_kernel():
    # Only the stem mixes time (kernel 5): frame 0 cannot see frame 5 onwards.
    net = VideoResNet(width=8).eval()
    x = torch.randn(1, 1, 8, 88, 88)
    y = x.clone()
    y[:, :, 5:] = 0
    with torch.inference_mode():
        torch.testing.assert_close(net(x)[:, :3], net(y)[:, :3])


@pytest.mark.parametrize(("act", "prelu"), [("prelu", True), ("swish", False)])
def test_video_resnet_keys_match_upstream(act, prelu):
    state = VideoResNet(act=act).state_dict()
    stem = {"frontend3D.0.weight"} | {f"frontend3D.1.{b}" for b in BN}
    if prelu:
        stem.add("frontend3D.2.weight")
    want = stem | {f"trunk.{k}" for k in upstream_trunk_keys(prelu)}
    assert set(state) == want
    assert state["frontend3D.0.weight"].shape == (64, 1, 5, 7, 7)
    assert state["trunk.layer2.0.downsample.0.weight"].shape == (128, 64, 1, 1)
    assert state["trunk.layer4.1.conv2.weight"].shape == (512, 512, 3, 3)
    if prelu:
        assert state["frontend3D.2.weight"].shape == (64,)
        assert state["trunk.layer3.1.relu2.weight"].shape == (256,)


@pytest.mark.parametrize("frames", [1, 3, 10])
def test_audio_resnet_rate(frames):
    net = AudioResNet1d(width=8).eval()
    with torch.inference_mode():
        out = net(torch.randn(2, 640 * frames))
        extra = net(torch.randn(2, 640 * frames + 639))  # partial frame dropped
    assert out.shape == extra.shape == (2, frames, 64)


def test_audio_resnet_too_short_is_empty():
    assert AudioResNet1d(width=8)(torch.randn(1, 100)).shape == (1, 0, 64)


def test_audio_resnet_keys_match_upstream():
    state = AudioResNet1d().state_dict()
    stem = {"trunk.conv1.weight"} | {f"trunk.bn1.{b}" for b in BN}
    assert set(state) == stem | {f"trunk.{k}" for k in upstream_trunk_keys(False)}
    assert state["trunk.conv1.weight"].shape == (64, 1, 80)
    assert state["trunk.layer4.0.downsample.0.weight"].shape == (512, 256, 1)


def test_bad_activation():
    with pytest.raises(ValueError, match="activation"):
        VideoResNet(act="relu6")
