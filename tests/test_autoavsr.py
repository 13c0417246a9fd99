"""Auto-AVSR conformer encoders (VSR, ASR, AV) on tiny random configs: 25 Hz shape contract,
the conformer block structure with upstream key names, the AV fusion path, and the loader for
both upstream key layouts (main: ``frontend``/``proj_encoder``/``encoder``; release v1.0.0:
everything under ``encoder.``/``aux_encoder.``). No weights are downloaded."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avdd.backbones import autoavsr
from avdd.backbones.base import available, get_backbone
from avdd.backbones.checkpoints import CheckpointError
from avdd.backbones.hub import WeightsNotFound
from avdd.backbones.layers.relpos import LN_EPS
from avdd.media import Clip
from avdd.roi.regions import Roi

EMPTY_VIDEO = np.zeros((0, 0, 0, 3), np.uint8)
SHORT = {"video": "vsr", "audio": "asr", "av": "av"}
JUNK = {"decoder.embed.0.weight": torch.zeros(5, 32), "decoder.output_layer.bias": torch.zeros(5),
        "ctc.ctc_lo.weight": torch.zeros(5, 32)}


def video_input(t: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((t, 88, 88)).astype(np.float32)


def audio_input(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed + 1).standard_normal(n).astype(np.float32)


def tiny(modality: str, seed: int = 0) -> autoavsr.AutoAVSRRandom:
    """A tiny model with non-trivial BatchNorm statistics (a loader dropping the running stats
    would be caught)."""
    bb = autoavsr.AutoAVSRRandom(config=autoavsr.tiny_config(modality), seed=seed)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in bb.net.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=gen))
    return bb


def encode(bb: autoavsr.AutoAVSR, t: int, extra: int = 0) -> np.ndarray:
    video = video_input(t) if bb.needs_video else None
    audio = audio_input(640 * t + extra) if bb.needs_audio else None
    return bb.encode(video, audio)


def to_v1(state: dict[str, torch.Tensor], modality: str) -> dict[str, torch.Tensor]:
    """Main-layout keys → release v1.0.0 keys (front-end and projection inside the encoder),
    written out by hand as the inverse of the loader's mapping."""
    def one(key: str) -> str:
        if key.startswith("frontend."):
            return "encoder." + key
        if key.startswith("proj_encoder."):
            return "encoder.embed.0." + key.removeprefix("proj_encoder.")
        return key  # encoder.encoders.* / encoder.after_norm.* keep their names

    if modality != "av":
        return {one(k): v for k, v in state.items()}
    out = {}
    for key, value in state.items():
        head, _, rest = key.partition(".")
        if head in ("encoder", "aux_encoder"):  # v1 single-model keys, "encoder." -> head
            out[f"{head}.{one(rest).removeprefix('encoder.')}"] = value
        else:
            out[key] = value
    return out


# --- model ----------------------------------------------------------------------------------

@pytest.mark.parametrize("modality", ["video", "audio", "av"])
@pytest.mark.parametrize("t", [1, 6, 25])
def test_one_feature_per_25hz_frame(modality, t):
    bb = get_backbone(f"autoavsr-{SHORT[modality]}-tiny-random")
    feats = encode(bb, t, extra=200)  # a partial audio frame is dropped
    assert feats.shape == (t, 32) and feats.dtype == np.float32 and np.isfinite(feats).all()
    assert bb.fps == 25.0 and bb.dim == 32
    assert bb.modality == {"video": "visual", "audio": "audio", "av": "audio-visual"}[modality]


def test_conformer_block_upstream_names_and_shapes():
    bb = autoavsr.autoavsr_vsr_tiny_random()
    keys = bb.net.state_dict()
    block = "encoder.encoders.1."
    for name in ("feed_forward_macaron.w_1.weight", "feed_forward.w_2.bias",
                 "self_attn.linear_pos.weight", "self_attn.pos_bias_v",
                 "conv_module.pointwise_cov1.weight", "conv_module.depthwise_conv.weight",
                 "conv_module.norm.running_mean", "conv_module.pointwise_cov2.bias",
                 "norm_ff_macaron.weight", "norm_mha.weight", "norm_conv.weight", "norm_ff.weight",
                 "norm_final.weight"):
        assert block + name in keys, name
    for name in ("frontend.frontend3D.1.running_var", "proj_encoder.weight",
                 "encoder.after_norm.weight"):
        assert name in keys, name
    assert keys[block + "conv_module.pointwise_cov1.weight"].shape == (64, 32, 1)  # d -> 2d, GLU
    assert keys[block + "conv_module.depthwise_conv.weight"].shape == (32, 1, 3)  # kernel 3
    assert keys["proj_encoder.weight"].shape == (32, 64)
    conformer = bb.net.encoder.encoders[0]
    assert all(n.eps == LN_EPS for n in (conformer.norm_ff_macaron, conformer.norm_mha,
                                         conformer.norm_conv, conformer.norm_ff,
                                         conformer.norm_final, bb.net.encoder.after_norm))


def test_conformer_block_is_macaron_half_step():
    block = tiny("video").net.encoder.encoders[0]
    x = torch.randn(1, 5, 32)
    pos = autoavsr.RelPositionalEncoding(32)(x)[1]
    with torch.no_grad():
        h = x + 0.5 * block.feed_forward_macaron(block.norm_ff_macaron(x))
        h = h + block.self_attn(block.norm_mha(h), pos)
        conv = block.conv_module
        c = block.norm_conv(h).transpose(1, 2)
        c = torch.nn.functional.glu(conv.pointwise_cov1(c), dim=1)
        c = conv.pointwise_cov2(torch.nn.functional.silu(conv.norm(conv.depthwise_conv(c))))
        h = h + c.transpose(1, 2)
        h = h + 0.5 * block.feed_forward(block.norm_ff(h))
        torch.testing.assert_close(block(x, pos), block.norm_final(h))


def test_av_feature_is_fusion_of_both_encoders():
    bb = tiny("av")
    v = torch.from_numpy(video_input(7))[None, None]
    a = torch.from_numpy(audio_input(640 * 7))[None]
    with torch.no_grad():
        vf, af = bb.net.encoder(v), bb.net.aux_encoder(a)
        assert vf.shape == af.shape == (1, 7, 32)
        assert bb.net.fusion.fc1.weight.shape == (64, 64)  # 2d -> tiny fusion hidden 64
        want = bb.net.fusion(torch.cat([vf, af], dim=-1))
    np.testing.assert_allclose(bb.encode(video_input(7), audio_input(640 * 7)), want[0].numpy(),
                               atol=1e-6)
    # Streams of different lengths: the frames both cover.
    assert bb.encode(video_input(7), audio_input(640 * 5)).shape == (5, 32)


def test_default_config_and_registry():
    cfg = autoavsr.AutoAVSRConfig()
    assert (cfg.dim, cfg.blocks, cfg.heads, cfg.ffn, cfg.kernel, cfg.fusion_hidden) == \
        (768, 12, 12, 3072, 31, 8192)
    with pytest.raises(ValueError, match="odd"):
        autoavsr.AutoAVSRConfig(kernel=4)
    names = {f"autoavsr-{m}{s}" for m in ("vsr", "asr", "av") for s in ("", "-tiny-random")}
    assert names | {"autoavsr-vsr-random", "autoavsr-asr-random"} <= set(available())


# --- loader ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("modality", "layout", "wrap"), [
    ("video", "main", "raw"), ("audio", "main", "lightning"), ("video", "v1", "raw"),
    ("audio", "v1", "raw"), ("av", "v1", "raw"), ("av", "v1", "lightning")])
def test_release_checkpoint_round_trip(tmp_path, modality, layout, wrap):
    src = tiny(modality, seed=5)
    state = {k: v.clone() for k, v in src.net.state_dict().items()}
    if layout == "v1":
        state = to_v1(state, modality)
    state.update(JUNK)
    obj = {"state_dict": {f"model.{k}": v for k, v in state.items()}, "epoch": 1} \
        if wrap == "lightning" else state
    path = tmp_path / f"{modality}.pth"
    torch.save(obj, path)
    loaded = get_backbone(f"autoavsr-{SHORT[modality]}", checkpoint=str(path))
    assert loaded.cfg == autoavsr.tiny_config(modality) and loaded.weights == "pretrained"
    cfg = loaded.config()
    assert cfg["checkpoint"] == str(path) and cfg["audio_input"] == "utterance_norm"
    assert cfg["trim_silence"] is False and "version" in cfg
    np.testing.assert_array_equal(encode(loaded, 8), encode(src, 8))


def test_v1_layout_keys_look_like_the_release():
    keys = set(to_v1(tiny("av").net.state_dict(), "av"))
    for name in ("encoder.frontend.frontend3D.0.weight", "encoder.embed.0.weight",
                 "encoder.encoders.0.conv_module.pointwise_cov1.weight", "encoder.after_norm.bias",
                 "aux_encoder.frontend.trunk.conv1.weight", "aux_encoder.embed.0.bias",
                 "aux_encoder.encoders.1.norm_final.weight", "fusion.fc1.weight",
                 "fusion.bn1.running_mean", "fusion.fc2.bias"):
        assert name in keys, name


def test_loader_names_missing_and_unexpected_keys(tmp_path):
    state = dict(tiny("audio").net.state_dict())
    del state["encoder.encoders.1.conv_module.norm.weight"]
    state["encoder.encoders.0.surprise"] = torch.ones(2)
    path = tmp_path / "broken.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as err:
        autoavsr.autoavsr_asr(str(path))
    msg = str(err.value)
    assert "encoder.encoders.1.conv_module.norm.weight" in msg
    assert "encoder.encoders.0.surprise" in msg


def test_loader_wrong_model_and_missing_file(tmp_path):
    path = tmp_path / "vsr.pth"
    torch.save(dict(tiny("video").net.state_dict()), path)
    with pytest.raises(CheckpointError, match="video model: use autoavsr-vsr"):
        autoavsr.autoavsr_asr(str(path))
    with pytest.raises(WeightsNotFound, match="Visual_Speech_Recognition_for_Multiple_Languages") as err:
        autoavsr.autoavsr_av(str(tmp_path / "absent.pth"))
    assert "LRS3_AV_WER0.9/model.pth" in str(err.value)  # the paper's AV model


# --- end to end through lip_inputs ----------------------------------------------------------

def test_call_end_to_end():
    pytest.importorskip("avdd.backbones.layers.lip_inputs", reason="avdd.backbones.layers.lip_inputs not available")
    from avdd.backbones.layers.lip_inputs import lip_inputs

    t = 6
    rng = np.random.default_rng(0)
    clip = Clip(video=rng.integers(0, 256, (t, 120, 160, 3), dtype=np.uint8),
                audio=(0.1 * rng.standard_normal(640 * t + 100)).astype(np.float32))
    roi = Roi(mouth_centre=np.tile(np.float32([[80, 85]]), (t, 1)),
              face_box=np.tile(np.float32([[40, 20, 120, 110]]), (t, 1)))
    av = autoavsr.autoavsr_av_tiny_random()
    inp = lip_inputs(clip, roi, audio="utterance_norm")
    feats = av(clip, roi)
    assert feats.shape == (t, 32) and feats.dtype == np.float32
    np.testing.assert_array_equal(feats, av.encode(inp.video, inp.audio))
    asr = autoavsr.autoavsr_asr_tiny_random()
    audio_only = Clip(video=EMPTY_VIDEO, audio=clip.audio)
    inp_a = lip_inputs(audio_only, None, audio="utterance_norm", need_video=False)
    feats_a = asr(audio_only)
    assert feats_a.shape == (6, 32)  # alone, the partial last frame is dropped (floor)
    np.testing.assert_array_equal(feats_a, asr.encode(None, inp_a.audio))
