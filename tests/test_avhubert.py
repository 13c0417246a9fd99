"""AV-HuBERT without fairseq on the tiny random config: shapes and frame rate, the zero fill of
a missing modality, the fairseq checkpoint loader (fine-tuned and pretraining key layouts,
pickled fairseq objects, trusted/untrusted loading, safetensors conversion, missing keys) and
the restricted unpickler refusing code. No weights are downloaded."""

from __future__ import annotations

import os
import pickle
import sys
import types

import numpy as np
import pytest
import torch

from avdd.backbones import avhubert, checkpoints
from avdd.backbones.base import available, get_backbone
from avdd.backbones.checkpoints import CheckpointError, RefusedGlobal, UntrustedCheckpoint
from avdd.backbones.hub import WeightsNotFound
from avdd.media import Clip
from avdd.roi.regions import Roi

T = 9  # frames in the test inputs (odd, against the even pos-conv kernel)


@pytest.fixture(scope="module")
def src():
    """The tiny audio-visual random backbone whose weights the checkpoints below carry."""
    return avhubert.AVHubertRandom(config=avhubert.tiny(), seed=7)


@pytest.fixture(scope="module")
def inputs():
    g = torch.Generator().manual_seed(0)
    return (torch.randn(T, 88, 88, generator=g).numpy(),
            torch.randn(T, 104, generator=g).numpy())


def features(bb, inputs):
    """``{modality: (T, dim)}`` of one backbone on the shared inputs."""
    video, audio = inputs
    return {"a": bb.encode(None, audio), "v": bb.encode(video, None), "av": bb.encode(video, audio)}


# --- model ----------------------------------------------------------------------------------

def test_registered_names():
    names = {f"avhubert-{m}{s}" for m in ("a", "v", "av") for s in ("", "-tiny-random")}
    names |= {"avhubert-a-random", "avhubert-v-random"}
    assert names <= set(available())


@pytest.mark.slow
@pytest.mark.parametrize("t", [1, 4, 12])
def test_shapes_and_rate(t):
    net = avhubert.AVHubertModel(avhubert.tiny()).eval()
    video, audio = torch.randn(2, 1, t, 88, 88), torch.randn(2, t, 104)
    with torch.inference_mode():
        for out in (net(video=video), net(audio=audio), net(video=video, audio=audio)):
            assert out.shape == (2, t, 32)
    with pytest.raises(ValueError, match="same number of frames"):
        net(video=video, audio=audio[:, :-1])


@pytest.mark.parametrize(("name", "modality"), [("avhubert-a-tiny-random", "audio"),
                                                ("avhubert-v-tiny-random", "visual"),
                                                ("avhubert-av-tiny-random", "audio-visual")])
def test_backbone_contract(name, modality, inputs):
    bb = get_backbone(name)
    assert (bb.modality, bb.dim, bb.fps, bb.weights) == (modality, 32, 25.0, "random")
    cfg = bb.config()
    assert {"version", "checkpoint", "arch", "trim_silence", "landmarks", "seed"} <= set(cfg)
    video, audio = inputs
    out = bb.encode(video if bb.needs_video else None, audio if bb.needs_audio else None)
    assert out.shape == (T, 32) and out.dtype == np.float32
    assert bb.encode(None, audio[:0]).shape == (0, 32)


@pytest.mark.slow
def test_missing_modality_is_zero_frontend_output():
    # Upstream fills the missing stream with zeros of its E-d front-end *output* (not a zero
    # input, which the projection bias would move away from zero).
    net = avhubert.AVHubertModel(avhubert.tiny()).eval()
    video, audio = torch.randn(1, 1, T, 88, 88), torch.randn(1, T, 104)
    with torch.inference_mode():
        a = net.feature_extractor_audio(audio)
        v = net.feature_extractor_video(video)
        zero = torch.zeros_like(a)
        for kwargs, pair in (({"video": video}, (zero, v)), ({"audio": audio}, (a, zero))):
            want = net.encoder(net.post_extract_proj(net.layer_norm(torch.cat(pair, -1))))
            torch.testing.assert_close(net(**kwargs), want, rtol=0, atol=0)
        assert not torch.allclose(net(video=video), net(video=video, audio=torch.zeros_like(audio)))


@pytest.mark.slow
def test_seeded_random_init(inputs):
    a = avhubert.AVHubertRandom(config=avhubert.tiny(), seed=1)
    b = avhubert.AVHubertRandom(config=avhubert.tiny(), seed=1)
    c = avhubert.AVHubertRandom(config=avhubert.tiny(), seed=2)
    np.testing.assert_array_equal(features(a, inputs)["av"], features(b, inputs)["av"])
    assert not np.allclose(features(a, inputs)["av"], features(c, inputs)["av"])


def test_call_uses_lip_inputs():
    pytest.importorskip("avdd.backbones.layers.lip_inputs")
    rng = np.random.default_rng(0)
    t = 12
    clip = Clip(video=rng.integers(0, 256, (t, 128, 128, 3), dtype=np.uint8),
                audio=(0.1 * rng.standard_normal(t * 640)).astype(np.float32))
    roi = Roi(mouth_centre=np.tile([[64.0, 88.0]], (t, 1)).astype(np.float32),
              face_box=np.tile([[32.0, 24.0, 96.0, 104.0]], (t, 1)).astype(np.float32))
    for name in ("avhubert-a-tiny-random", "avhubert-v-tiny-random", "avhubert-av-tiny-random"):
        out = get_backbone(name)(clip, roi)
        assert out.shape == (t, 32) and out.dtype == np.float32


def _speaking_clip(frames: int, samples: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    clip = Clip(video=rng.integers(0, 256, (frames, 128, 128, 3), dtype=np.uint8),
                audio=(0.1 * rng.standard_normal(samples)).astype(np.float32))
    roi = Roi(mouth_centre=np.tile([[64.0, 88.0]], (frames, 1)).astype(np.float32),
              face_box=np.tile([[32.0, 24.0, 96.0, 104.0]], (frames, 1)).astype(np.float32))
    return clip, roi


@pytest.mark.slow
@pytest.mark.parametrize(("frames", "rows"), [(10, 10), (20, 14)])
def test_every_pass_is_cut_to_the_shorter_stream(frames, rows):
    """AVH-Align cuts audio and video to the shorter one before all three passes: 0.56 s of
    audio is 55 logfbank frames, 14 stacked; with 10 video frames every pass has 10 rows,
    with 20 every pass has 14 (before, avhubert-a had 14 and avhubert-v 20)."""
    clip, roi = _speaking_clip(frames, 8960)
    for short in ("a", "v", "av"):
        bb = get_backbone(f"avhubert-{short}-tiny-random")
        assert bb.decodes == (True, True)  # both lengths are needed by every pass
        assert bb(clip, roi).shape == (rows, 32), short
    # The audio-only pass counts the frames but makes no mouth crop: no ROI, no landmarks.
    a = get_backbone("avhubert-a-tiny-random")
    audio_only = a(clip, None)
    np.testing.assert_array_equal(audio_only, a(clip, roi))
    with pytest.raises(ValueError, match="no video frames"):
        a(Clip(video=np.zeros((0, 0, 0, 3), np.uint8), audio=clip.audio), None)


def test_cut_before_the_pass_equals_the_pass_on_cut_inputs():
    """The audio-only features of a long-audio clip are those of its audio cut to the video."""
    from avdd.backbones.layers.audio import avhubert_audio

    clip, _ = _speaking_clip(10, 8960)
    bb = get_backbone("avhubert-a-tiny-random")
    np.testing.assert_array_equal(bb(clip), bb.encode(None, avhubert_audio(clip.audio)[:10]))


# --- checkpoints ----------------------------------------------------------------------------

def fairseq_file(path, state, monkeypatch, *, prefix="encoder.w2v_model.", junk=None):
    """``torch.save`` a fairseq-like checkpoint that pickles an object of a module named
    ``fairseq.dataclass.configs``; the module exists only while saving, as on a machine
    without fairseq."""
    mod = types.ModuleType("fairseq.dataclass.configs")

    class FairseqConfig:  # a stand-in for fairseq's pickled config object
        def __init__(self):
            self.model = {"_name": "av_hubert_seq2seq", "w2v_path": "/x.pt"}

    FairseqConfig.__module__, FairseqConfig.__qualname__ = mod.__name__, "FairseqConfig"
    mod.FairseqConfig = FairseqConfig
    for name in ("fairseq", "fairseq.dataclass"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    model = {prefix + k: v.clone() for k, v in state.items()}
    model.update(junk or {})
    torch.save({"model": model, "cfg": FairseqConfig(), "task_state": {"dictionaries": [1]},
                "optimizer_history": [{"num_updates": 3}]}, path)
    for name in ("fairseq.dataclass.configs", "fairseq.dataclass", "fairseq"):
        monkeypatch.delitem(sys.modules, name)
    return path


DECODER_JUNK = {"decoder.embed_tokens.weight": torch.zeros(5, 4),
                "decoder.layers.0.fc1.weight": torch.zeros(4, 4)}
PRETRAIN_JUNK = {"mask_emb": torch.zeros(104), "label_embs_concat": torch.zeros(3, 8),
                 "final_proj.weight": torch.zeros(8, 32), "final_proj.bias": torch.zeros(8)}


@pytest.fixture
def finetuned(tmp_path, src, monkeypatch):
    return fairseq_file(tmp_path / "self_tiny_vox_433h.pt", src.net.state_dict(), monkeypatch,
                        junk=DECODER_JUNK)


def test_untrusted_fairseq_file_is_refused_with_the_fix(finetuned):
    with pytest.raises(UntrustedCheckpoint) as err:
        get_backbone("avhubert-av", checkpoint=str(finetuned))
    msg = str(err.value)
    for fix in ("fairseq.dataclass.configs.FairseqConfig", "arbitrary code", "--trust-checkpoint",
                "trust_checkpoint=True", "avdd convert-checkpoint"):
        assert fix in msg


@pytest.mark.slow
def test_trusted_finetuned_file_reproduces_outputs(finetuned, src, inputs):
    want = features(src, inputs)
    for short in ("a", "v", "av"):
        bb = get_backbone(f"avhubert-{short}", checkpoint=str(finetuned), trust_checkpoint=True,
                          heads=4)
        assert bb.weights == "pretrained" and bb.config()["checkpoint_name"] == finetuned.name
        assert sorted(bb.dropped_keys) == sorted(DECODER_JUNK)
        video, audio = inputs
        got = bb.encode(video if bb.needs_video else None, audio if bb.needs_audio else None)
        np.testing.assert_array_equal(got, want[short])


@pytest.mark.slow
def test_pretrain_layout_and_new_weight_norm_names(tmp_path, src, inputs, monkeypatch):
    state = {k.replace("weight_g", "parametrizations.weight.original0")
              .replace("weight_v", "parametrizations.weight.original1"): v
             for k, v in src.net.state_dict().items()}
    path = fairseq_file(tmp_path / "large_vox_iter5.pt", state, monkeypatch, prefix="",
                        junk=PRETRAIN_JUNK)
    bb = avhubert.AVHubert(path, trust_checkpoint=True, heads=4)
    assert sorted(bb.dropped_keys) == sorted(PRETRAIN_JUNK)
    np.testing.assert_array_equal(features(bb, inputs)["av"], features(src, inputs)["av"])


def test_plain_file_needs_no_trust(tmp_path, src, inputs):
    # A file of tensors only (and old-PyTorch BN files without num_batches_tracked) loads with
    # weights_only=True.
    state = {k: v for k, v in src.net.state_dict().items() if "num_batches" not in k}
    torch.save({"model": state}, tmp_path / "clean.pt")
    bb = avhubert.AVHubert(tmp_path / "clean.pt", modality="visual", heads=4)
    np.testing.assert_array_equal(features(bb, inputs)["v"], features(src, inputs)["v"])


def test_safetensors_conversion_loads_safely(finetuned, tmp_path, src, inputs):
    with pytest.raises(UntrustedCheckpoint):
        avhubert.convert_checkpoint(finetuned, tmp_path / "x.safetensors")
    dst = avhubert.convert_checkpoint(finetuned, tmp_path / "tiny.safetensors", trust=True,
                                      heads=4)
    meta = checkpoints.safetensors_metadata(dst)
    assert meta["source"] == finetuned.name and '"heads": 4' in meta["config"]
    bb = get_backbone("avhubert-av", checkpoint=str(dst))  # heads come from the metadata
    assert bb.cfg == src.cfg
    np.testing.assert_array_equal(features(bb, inputs)["av"], features(src, inputs)["av"])


def test_missing_key_is_named(tmp_path, src, monkeypatch):
    state = src.net.state_dict()
    del state["encoder.layers.1.fc2.bias"]
    path = fairseq_file(tmp_path / "broken.pt", state, monkeypatch)
    with pytest.raises(CheckpointError, match=r"encoder\.layers\.1\.fc2\.bias"):
        avhubert.AVHubert(path, trust_checkpoint=True, heads=4)


def test_spec_string_flags(finetuned):
    with pytest.raises(UntrustedCheckpoint):  # "false" must not read as True
        get_backbone(f"avhubert-v:checkpoint={finetuned},trust_checkpoint=false,heads=4")
    bb = get_backbone(f"avhubert-v:checkpoint={finetuned},trust_checkpoint=true,heads=4")
    assert bb.modality == "visual" and not bb.trim_silence
    with pytest.raises(ValueError, match="boolean"):
        avhubert.flag("maybe")


def test_missing_file_says_what_to_download(tmp_path):
    with pytest.raises(WeightsNotFound, match="self_large_vox_433h.pt.*checkpoint=PATH"):
        get_backbone("avhubert-v", checkpoint=str(tmp_path / "nope.pt"))


class Exploit:
    """Unpickling this would run a shell command (the classic pickle attack)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_restricted_unpickler_refuses_code(tmp_path):
    marker = tmp_path / "pwned"
    with pytest.raises(RefusedGlobal, match="system"):
        checkpoints.restricted_loads(pickle.dumps(Exploit(marker), protocol=2))
    with pytest.raises(RefusedGlobal, match="builtins.eval"):
        checkpoints.restricted_loads(pickle.dumps(eval))
    path = tmp_path / "evil.pt"
    torch.save({"model": {"w": torch.ones(1)}, "cfg": Exploit(marker)}, path)
    with pytest.raises(CheckpointError, match="refused even as a trusted file"):
        checkpoints.load_fairseq_state(path, trust=True)
    assert not marker.exists()


def test_restricted_unpickler_stubs_config_classes_and_keeps_data():
    # Protocol 2 (torch.save's) writes bytes via _codecs.encode and str as __builtin__.unicode
    # (omegaconf metadata pickles types like that).
    payload = pickle.dumps({"ns": __import__("argparse").Namespace(a=1), "t": (1, b"x"),
                            "s": {1, 2}, "type": str}, protocol=2)
    obj = checkpoints.restricted_loads(payload)
    assert isinstance(obj["ns"], checkpoints.InertStub) and not vars(obj["ns"])
    assert obj["t"] == (1, b"x") and obj["s"] == {1, 2} and obj["type"] is str


def test_cli_convert_checkpoint(finetuned, tmp_path, src, inputs, capsys):
    from avdd.cli import main

    dst = tmp_path / "cli.safetensors"
    assert main(["convert-checkpoint", str(finetuned), str(dst), "--heads", "4"]) == 2
    assert "refused" in capsys.readouterr().err  # untrusted: one clear line, no traceback
    assert main(["convert-checkpoint", str(finetuned), str(dst), "--trust-checkpoint",
                 "--heads", "4"]) == 0
    bb = get_backbone(f"avhubert-v:checkpoint={dst}")
    np.testing.assert_array_equal(features(bb, inputs)["v"], features(src, inputs)["v"])


def test_messages_name_the_pickled_class_and_a_file_that_is_no_checkpoint(tmp_path):
    """Issue 14.9/14.13: a blocked module's function is named (torch's own "Weights only load
    failed. In PyTorch 2.6 ..." was quoted), and a text file passed as a checkpoint is a
    CheckpointError naming it (was IndexError/KeyError), for every loader."""
    from avdd.backbones import describe

    evil = tmp_path / "evil.pt"
    torch.save({"model": {"w": torch.ones(1)}, "cfg": Exploit(tmp_path / "pwned")}, evil)
    text = tmp_path / "notes.txt"
    text.write_text("hello, this is not a checkpoint\n")
    for family in ("avhubert-v", "braven-v", "autoavsr-vsr", "fsfm"):
        with pytest.raises(CheckpointError) as refused:
            describe(f"{family}:checkpoint={evil}")
        assert "system" in str(refused.value) and "PyTorch 2.6" not in str(refused.value)
        with pytest.raises(CheckpointError, match="is not a checkpoint torch.load can read"):
            describe(f"{family}:checkpoint={text}")
    assert not (tmp_path / "pwned").exists()
