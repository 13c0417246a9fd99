"""BRAVEn/RAVEn encoders and the shared rel-pos pieces on tiny random configs: 25 Hz shape
contract, rel_shift and rel-pos attention against hand-written references, the upstream block
structure (LayerScale, BatchNorm FFN pre-norm), and the ESPnet-checkpoint loader (raw and
Lightning-wrapped files in the upstream key layout). No weights are downloaded."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch

from avdd.backbones import braven
from avdd.backbones.base import available, get_backbone
from avdd.backbones.checkpoints import CheckpointError
from avdd.backbones.hub import WeightsNotFound
from avdd.backbones.layers.relpos import (
    LN_EPS,
    RelPositionalEncoding,
    RelPositionMultiHeadedAttention,
    rel_position_table,
    rel_shift,
)
from avdd.media import Clip
from avdd.roi.regions import Roi

EMPTY_VIDEO = np.zeros((0, 0, 0, 3), np.uint8)
DROPPED_JUNK = {"decoder.embed.0.weight": torch.zeros(5, 4),  # the ASR heads a release file holds
                "decoder.after_norm.weight": torch.ones(4),
                "ctc.ctc_lo.weight": torch.zeros(5, 32), "ctc.ctc_lo.bias": torch.zeros(5)}


def video_input(t: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((t, 88, 88)).astype(np.float32)


def audio_input(n: int, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


def tiny(modality: str, seed: int = 0) -> braven.BRAVEnRandom:
    """A tiny model with non-trivial BatchNorm statistics, so that a loader dropping the
    running stats would be caught."""
    bb = braven.BRAVEnRandom(config=braven.tiny_config(modality), seed=seed)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in bb.net.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=gen))
    return bb


def upstream_state(bb: braven.BRAVEn) -> dict[str, torch.Tensor]:
    """The encoder's weights as the release ``E2E`` state dict: ``encoder.*`` + ASR heads."""
    return {**{f"encoder.{k}": v.clone() for k, v in bb.net.state_dict().items()},
            **DROPPED_JUNK}


# --- shared rel-pos pieces ------------------------------------------------------------------

def test_rel_shift_hand_checked():
    # T = 3: columns are relative positions 2, 1, 0, -1, -2; out[i, j] must hold i - j.
    x = torch.arange(15.0).view(1, 1, 3, 5)
    want = torch.tensor([[2.0, 3.0, 4.0],    # row 0: positions 0, -1, -2 (columns 2, 3, 4)
                         [6.0, 7.0, 8.0],    # row 1: positions 1, 0, -1
                         [10.0, 11.0, 12.0]])  # row 2: positions 2, 1, 0
    torch.testing.assert_close(rel_shift(x)[0, 0], want)
    for t in (1, 2, 5):  # the general rule out[i, j] = x[i, T - 1 - i + j]
        x = torch.randn(2, 3, t, 2 * t - 1)
        idx = torch.arange(t)
        want = x[:, :, idx[:, None], t - 1 - idx[:, None] + idx[None, :]]
        torch.testing.assert_close(rel_shift(x), want)


def test_rel_position_table_and_encoding():
    table = rel_position_table(3, 4)  # rows: positions 2, 1, 0, -1, -2
    assert table.shape == (1, 5, 4)
    for row, p in enumerate((2, 1, 0, -1, -2)):
        want = [math.sin(p), math.cos(p), math.sin(p / 100), math.cos(p / 100)]
        np.testing.assert_allclose(table[0, row].numpy(), want, atol=1e-6)
    x = torch.randn(2, 3, 4)
    scaled, pos = RelPositionalEncoding(4)(x)
    torch.testing.assert_close(scaled, 2.0 * x)  # x * sqrt(4), no table added ("latest")
    torch.testing.assert_close(pos, table)


def test_rel_pos_attention_matches_loop_reference():
    torch.manual_seed(0)
    heads, dim, t = 2, 8, 4
    att = RelPositionMultiHeadedAttention(heads, dim).eval()
    x = torch.randn(1, t, dim)
    pos = rel_position_table(t, dim)
    with torch.no_grad():
        got = att(x, pos)
        q, k, v = att.linear_q(x)[0], att.linear_k(x)[0], att.linear_v(x)[0]
        p = att.linear_pos(pos)[0]  # row r = relative position t - 1 - r
        out = torch.zeros(t, dim)
        for h in range(heads):
            s = slice(4 * h, 4 * h + 4)
            scores = torch.zeros(t, t)
            for i in range(t):
                for j in range(t):
                    rel = p[t - 1 - (i - j), s]  # the row of relative position i - j
                    scores[i, j] = ((q[i, s] + att.pos_bias_u[h]) @ k[j, s]
                                    + (q[i, s] + att.pos_bias_v[h]) @ rel) / 2.0  # sqrt(d_k 4)
            out[:, s] = torch.softmax(scores, -1) @ v[:, s]
        torch.testing.assert_close(got[0], att.linear_out(out), atol=1e-5, rtol=1e-5)
        # A padding mask removes the padded keys: the first 3 frames match a 3-frame input.
        mask = torch.tensor([[[True, True, True, False]]])
        short = att(x[:, :3], rel_position_table(3, dim))
        # Positions are relative, so a shorter table for 3 frames gives the same scores.
        torch.testing.assert_close(att(x, pos, mask)[:, :3], short, atol=1e-5, rtol=1e-5)


# --- model ----------------------------------------------------------------------------------

@pytest.mark.parametrize("modality", ["video", "audio"])
@pytest.mark.parametrize("t", [1, 7, 30])
def test_one_feature_per_25hz_frame(modality, t):
    bb = get_backbone(f"braven-{modality[0]}-tiny-random")
    x = video_input(t) if modality == "video" else audio_input(640 * t + 333)  # partial frame
    feats = bb.encode(x)
    assert feats.shape == (t, 32) and feats.dtype == np.float32
    assert np.isfinite(feats).all()
    assert bb.fps == 25.0 and bb.dim == 32 and bb.weights == "random"
    assert bb.modality == ("visual" if modality == "video" else "audio")


def test_empty_input_gives_no_frames():
    assert braven.braven_a_tiny_random().encode(audio_input(600)).shape == (0, 32)
    assert braven.braven_v_tiny_random().encode(video_input(0)).shape == (0, 32)


def test_block_has_upstream_names_layerscale_and_bn_prenorm():
    bb = braven.braven_v_tiny_random()
    keys = bb.net.state_dict()
    for name in ("encoders.1.gamma_mha", "encoders.1.gamma_ff", "encoders.0.norm_ff.running_var",
                 "encoders.0.norm_mha.weight", "encoders.0.self_attn.linear_pos.weight",
                 "encoders.0.feed_forward.w_1.weight", "embed.0.weight", "after_norm.bias",
                 "frontend.frontend3D.0.weight", "frontend.trunk.layer4.1.bn2.running_mean"):
        assert name in keys, name
    assert "encoders.0.self_attn.linear_pos.bias" not in keys
    assert "encoders.0.norm_final.weight" not in keys  # post_norm: False upstream
    assert keys["encoders.0.self_attn.pos_bias_u"].shape == (4, 8)  # [heads, d_k]
    assert keys["embed.0.weight"].shape == (32, 64)  # ResNet width 8 -> 64 features
    block = bb.net.encoders[0]
    assert isinstance(block.norm_ff, torch.nn.BatchNorm1d)
    assert block.norm_mha.eps == bb.net.after_norm.eps == LN_EPS
    torch.testing.assert_close(block.gamma_ff, torch.full((32,), 0.1))


def test_layerscale_zero_makes_blocks_identity():
    bb = tiny("video")
    x = torch.from_numpy(video_input(5))[None, None]
    with torch.no_grad():
        for block in bb.net.encoders:
            block.gamma_mha.zero_()
            block.gamma_ff.zero_()
        want = bb.net.after_norm(bb.net.embed(bb.net.frontend(x))[0])
        torch.testing.assert_close(bb.net(x), want)


def test_default_config_is_large():
    cfg = braven.BRAVEnConfig()
    assert (cfg.dim, cfg.blocks, cfg.heads, cfg.ffn, cfg.width) == (1024, 24, 16, 4096, 64)
    with pytest.raises(ValueError, match="modality"):
        braven.BRAVEnConfig(modality="av")


def test_registered_names():
    names = set(available())
    assert {"braven-v", "braven-a", "braven-v-random", "braven-a-random",
            "braven-v-tiny-random", "braven-a-tiny-random"} <= names


# --- loader ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("modality", "wrap"), [("video", "raw"), ("video", "lightning"),
                                                ("audio", "raw")])
def test_release_checkpoint_round_trip(tmp_path, modality, wrap):
    src = tiny(modality, seed=3)
    state = upstream_state(src)
    if wrap == "lightning":  # a Lightning module holding the E2E model as self.model
        obj = {"state_dict": {f"model.{k}": v for k, v in state.items()}, "epoch": 3,
               "global_step": 10}
    else:
        obj = state
    path = tmp_path / "braven.pth"
    torch.save(obj, path)
    loaded = get_backbone(f"braven-{modality[0]}", checkpoint=str(path))
    assert loaded.weights == "pretrained" and loaded.cfg == braven.tiny_config(modality)
    cfg = loaded.config()
    assert cfg["checkpoint"] == str(path) and cfg["arch"]["dim"] == 32
    assert cfg["trim_silence"] is False and cfg["version"] == braven.BRAVEn.version
    x = video_input(9) if modality == "video" else audio_input(640 * 9)
    np.testing.assert_array_equal(loaded.encode(x), src.encode(x))


def test_loader_names_missing_and_unexpected_keys(tmp_path):
    state = upstream_state(tiny("video"))
    del state["encoder.encoders.1.gamma_ff"]
    state["encoder.encoders.0.extra_scale"] = torch.ones(3)
    path = tmp_path / "broken.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as err:
        braven.braven_v(str(path))
    assert "encoders.1.gamma_ff" in str(err.value) and "encoders.0.extra_scale" in str(err.value)


def test_loader_refuses_wrong_modality_and_missing_file(tmp_path):
    path = tmp_path / "audio.pth"
    torch.save(upstream_state(tiny("audio")), path)
    with pytest.raises(CheckpointError, match="audio model"):
        braven.braven_v(str(path))
    with pytest.raises(WeightsNotFound, match=braven.BRAVEN_FILE) as err:
        braven.braven_v(str(tmp_path / "absent.pth"))
    assert "checkpoint=PATH" in str(err.value)


class Payload:  # not allowed by weights_only: unpickling it would run the file's choice
    pass


def test_loader_refuses_pickled_objects(tmp_path):
    path = tmp_path / "pickled.pth"
    torch.save({"state_dict": upstream_state(tiny("video")), "hparams": Payload()}, path)
    with pytest.raises(CheckpointError, match="refused") as err:
        braven.braven_v(str(path))
    assert isinstance(err.value.__cause__, pickle.UnpicklingError)


# --- end to end through lip_inputs ----------------------------------------------------------

def synthetic_clip(t: int, seed: int = 0) -> tuple[Clip, Roi]:
    rng = np.random.default_rng(seed)
    clip = Clip(video=rng.integers(0, 256, (t, 120, 160, 3), dtype=np.uint8),
                audio=audio_input(640 * t, seed))
    roi = Roi(mouth_centre=np.tile(np.float32([[80, 85]]), (t, 1)),
              face_box=np.tile(np.float32([[40, 20, 120, 110]]), (t, 1)))
    return clip, roi


@pytest.mark.slow
def test_call_end_to_end():
    pytest.importorskip("avdd.backbones.layers.lip_inputs", reason="avdd.backbones.layers.lip_inputs not available")
    from avdd.backbones.layers.lip_inputs import lip_inputs

    clip, roi = synthetic_clip(6)
    bb = braven.braven_v_tiny_random()
    feats = bb(clip, roi)
    assert feats.shape == (6, 32) and feats.dtype == np.float32
    np.testing.assert_array_equal(feats, bb.encode(lip_inputs(clip, roi, audio="raw").video))
    audio_only = Clip(video=EMPTY_VIDEO, audio=clip.audio)
    bb_a = braven.braven_a_tiny_random()
    np.testing.assert_array_equal(bb_a(audio_only), bb_a.encode(clip.audio))  # raw waveform
