"""Pretrained-backbone families (Wav2Vec2, CLIP, VideoMAE, FSFM) on tiny random configs:
shape/frame-rate contracts, local save/load round trips, the FSFM release-checkpoint loader,
offline errors and seeded random init. No weights are downloaded."""

from __future__ import annotations

import argparse
import importlib.util
import json

import numpy as np
import pytest
import torch
from conftest import require

# Importing the family modules registers their names (until backbones/__init__ imports them).
from avdd.backbones import clip as clip_family  # noqa: F401
from avdd.backbones import fsfm, videomae
from avdd.backbones import wav2vec2 as wav2vec2_family  # noqa: F401
from avdd.backbones.base import get_backbone
from avdd.backbones.hub import WeightsNotFound
from avdd.media import Clip
from avdd.roi.regions import Roi

EMPTY_VIDEO = np.zeros((0, 0, 0, 3), np.uint8)


def video_clip(t: int, h: int = 48, w: int = 64, seed: int = 0) -> Clip:
    rng = np.random.default_rng(seed)
    return Clip(video=rng.integers(0, 256, (t, h, w, 3), dtype=np.uint8),
                audio=np.zeros(0, np.float32))


def audio_clip(n: int, seed: int = 0) -> Clip:
    rng = np.random.default_rng(seed)
    return Clip(video=EMPTY_VIDEO, audio=(0.1 * rng.standard_normal(n)).astype(np.float32))


@pytest.fixture(scope="module")
def w2v():
    return get_backbone("wav2vec2-tiny-random")


@pytest.fixture(scope="module")
def clip_bb():
    return get_backbone("clip-tiny-random")


@pytest.fixture(scope="module")
def vmae():
    return get_backbone("videomae-tiny-random")


# --- Wav2Vec2 -------------------------------------------------------------------------------

@pytest.mark.parametrize("n50", [10, 11, 1])
def test_wav2vec2_pairs_50hz_frames(w2v, n50):
    clip = audio_clip(400 + 320 * (n50 - 1))  # T50 = ⌊(N − 400) / 320⌋ + 1
    f50 = w2v.frames50(clip.audio)
    feats = w2v(clip)
    assert f50.shape == (n50, 32)
    assert feats.shape == (-(-n50 // 2), 64) and feats.dtype == np.float32
    assert w2v.dim == 64 and w2v.fps == 25.0 and w2v.weights == "random"
    np.testing.assert_array_equal(feats[:, :32], f50[0::2])
    np.testing.assert_array_equal(feats[: n50 // 2, 32:], f50[1::2])
    if n50 % 2:  # odd: the last frame is paired with itself
        np.testing.assert_array_equal(feats[-1, 32:], f50[-1])


def test_wav2vec2_normalisation_matches_feature_extractor(w2v):
    from transformers import Wav2Vec2FeatureExtractor

    a = audio_clip(8000).audio * 3 + 0.2
    ref = Wav2Vec2FeatureExtractor(do_normalize=True)(a, sampling_rate=16000,
                                                      return_tensors="pt").input_values
    with torch.inference_mode():
        want = w2v.net(ref.float()).last_hidden_state[0].numpy()
    np.testing.assert_allclose(w2v.frames50(a), want, atol=1e-5)


def test_wav2vec2_local_dir_round_trip(w2v, tmp_path):
    from transformers import Wav2Vec2FeatureExtractor

    w2v.net.save_pretrained(tmp_path)
    Wav2Vec2FeatureExtractor(do_normalize=True).save_pretrained(tmp_path)
    loaded = get_backbone("wav2vec2", model=str(tmp_path))
    clip = audio_clip(16000)
    assert loaded.weights == "pretrained" and loaded.config()["model"] == str(tmp_path)
    np.testing.assert_array_equal(loaded(clip), w2v(clip))


# --- CLIP -----------------------------------------------------------------------------------

def test_clip_one_vector_per_frame_and_patch_grid(clip_bb):
    clip = video_clip(37)  # > one 32-frame batch
    feats = clip_bb(clip)
    assert feats.shape == (37, 16) and feats.dtype == np.float32 and clip_bb.fps == 25.0
    grid = clip_bb.patch_grid(clip)
    assert grid.shape == (37, 4, 4, 16) and grid.dtype == np.float32
    # The patch map is the CLS token's map: applied to CLS it gives image_embeds.
    pixels = clip_bb.processor(images=list(clip.video[:2]), return_tensors="pt")["pixel_values"]
    with torch.inference_mode():
        out = clip_bb.net(pixel_values=pixels)
        cls = clip_bb.net.visual_projection(
            clip_bb.net.vision_model.post_layernorm(out.last_hidden_state[:, 0]))
    torch.testing.assert_close(cls, out.image_embeds)
    # Batching over frames does not change a frame's embedding.
    np.testing.assert_allclose(clip_bb(video_clip(1)), feats[:1], atol=1e-5)


def test_clip_local_dir_round_trip(clip_bb, tmp_path):
    clip_bb.net.save_pretrained(tmp_path)
    clip_bb.processor.save_pretrained(tmp_path)
    loaded = get_backbone("clip", model=str(tmp_path))
    clip = video_clip(5)
    np.testing.assert_array_equal(loaded(clip), clip_bb(clip))
    np.testing.assert_array_equal(loaded.patch_grid(clip), clip_bb.patch_grid(clip))


# --- VideoMAE -------------------------------------------------------------------------------

@pytest.mark.parametrize(("frames", "trailing", "steps"),
                         [(8, "pad", 4), (9, "pad", 5), (11, "pad", 6), (3, "pad", 2),
                          (9, "drop", 4), (11, "drop", 4), (8, "drop", 4)])
def test_videomae_windows_and_rate(frames, trailing, steps):
    bb = videomae.videomae_tiny_random(trailing=trailing)  # 4-frame windows, tubelet 2
    feats = bb(video_clip(frames))
    assert feats.shape == (steps, 32) and feats.dtype == np.float32
    assert bb.fps == 12.5


def test_videomae_drops_the_trailing_window_by_default_as_the_paper():
    """The paper's code takes windows at 0, 16, ... while a whole one fits: 40 frames give
    2 windows = 16 rows (pad: 20); a clip shorter than one window has no feature at all,
    which is an error, not an empty array."""
    assert [idx[0] for idx, _ in videomae.windows(40, 16, 2)] == [0, 16]  # the default: drop
    assert sum(k for _, k in videomae.windows(40, 16, 2)) == 16
    assert sum(k for _, k in videomae.windows(40, 16, 2, "pad")) == 20
    assert sum(k for _, k in videomae.windows(15, 16, 2, "pad")) == 8
    assert videomae.windows(15, 16, 2) == []
    bb = videomae.videomae_tiny_random()
    assert bb.trailing == "drop" and bb.config()["trailing"] == "drop" and bb.version == 2
    assert bb(video_clip(7)).shape == (2, 32)  # 4-frame windows: the last 3 frames go
    with pytest.raises(ValueError, match="fewer than one 4-frame window"):
        bb(video_clip(3))


def test_videomae_partial_window_is_last_frame_padding():
    vmae = videomae.videomae_tiny_random(trailing="pad")
    clip = video_clip(10)
    padded = Clip(video=np.concatenate([clip.video, clip.video[-1:].repeat(2, 0)]),
                  audio=clip.audio)
    np.testing.assert_allclose(vmae(clip), vmae(padded)[:5], atol=1e-5)
    idx, keep = videomae.windows(10, 4, 2, "pad")[-1]
    assert idx.tolist() == [8, 9, 9, 9] and keep == 1


def test_videomae_local_dir_round_trip(vmae, tmp_path):
    vmae.net.save_pretrained(tmp_path)
    vmae.processor.save_pretrained(tmp_path)
    loaded = get_backbone("videomae", model=str(tmp_path))
    clip = video_clip(9)
    np.testing.assert_array_equal(loaded(clip), vmae(clip))


# --- FSFM -----------------------------------------------------------------------------------

def vit_to_timm(state: dict[str, torch.Tensor], final: str) -> dict[str, torch.Tensor]:
    """transformers ViTModel names → the FSFM release's timm names (the inverse mapping)."""
    out = {"cls_token": state["embeddings.cls_token"],
           "pos_embed": state["embeddings.position_embeddings"],
           "patch_embed.proj.weight": state["embeddings.patch_embeddings.projection.weight"],
           "patch_embed.proj.bias": state["embeddings.patch_embeddings.projection.bias"],
           f"{final}.weight": state["layernorm.weight"], f"{final}.bias": state["layernorm.bias"]}
    blocks = {"layernorm_before": "norm1", "layernorm_after": "norm2",
              "attention.o_proj": "attn.proj", "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2"}
    depth = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("layers."))
    for i in range(depth):
        for p in ("weight", "bias"):
            out[f"blocks.{i}.attn.qkv.{p}"] = torch.cat(
                [state[f"layers.{i}.attention.{n}_proj.{p}"] for n in "qkv"])
            for src, dst in blocks.items():
                out[f"blocks.{i}.{dst}.{p}"] = state[f"layers.{i}.{src}.{p}"]
    return out


def face_clip() -> tuple[Clip, Roi]:
    clip = video_clip(6)
    boxes = np.tile(np.array([[10, 8, 40, 44]], np.float32), (6, 1))
    boxes[:, 0] += np.arange(6)  # a moving face
    return clip, Roi(face_box=boxes)


@pytest.mark.slow
def test_fsfm_one_vector_per_frame():
    bb = get_backbone("fsfm-tiny-random")
    clip, roi = face_clip()
    with_box, whole = bb(clip, roi), bb(clip)
    assert with_box.shape == whole.shape == (6, 32) and with_box.dtype == np.float32
    assert not np.allclose(with_box, whole)  # the box is used
    assert bb.fps == 25.0 and bb.dim == 32


@pytest.mark.parametrize("final", ["fc_norm", "norm"])
def test_fsfm_release_checkpoint_matches_source(tmp_path, final):
    src = fsfm.FSFMRandom(config=fsfm.vit_config(32, 2, 4, 32, 16), seed=3, pool=final)
    state = vit_to_timm(src.net.state_dict(), final)
    state["decoder_embed.weight"] = torch.zeros(2, 2)  # pretraining extras are dropped
    path = tmp_path / "checkpoint-min_val_loss.pth"
    torch.save({"model": state, "epoch": 3, "args": argparse.Namespace(model="vit_base")}, path)
    loaded = get_backbone("fsfm", checkpoint=path, heads=4)
    clip, roi = face_clip()
    assert loaded.pool == final and loaded.weights == "pretrained"
    np.testing.assert_allclose(loaded(clip, roi), src(clip, roi), atol=1e-5)


class Payload:  # not on the allow-list: unpickling it would be executing the file's choice
    pass


def test_fsfm_refuses_unknown_pickled_objects(tmp_path):
    src = fsfm.fsfm_tiny_random()
    path = tmp_path / "evil.pth"
    torch.save({"model": vit_to_timm(src.net.state_dict(), "norm"), "extra": Payload()}, path)
    with pytest.raises(fsfm.CheckpointError, match="refused"):
        fsfm.FSFM(path, heads=4)
    with pytest.raises(fsfm.CheckpointError, match="no such checkpoint"):
        fsfm.FSFM(tmp_path / "missing.pth")


# --- loading and random init ------------------------------------------------------------------

def test_offline_hub_name_gives_download_instructions(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsNotFound, match="hf download .* --local-dir"):
        get_backbone("wav2vec2", model="facebook/wav2vec2-xls-r-2b")
    with pytest.raises(WeightsNotFound, match="not a directory"):
        get_backbone("clip", model=str(tmp_path / "nope"))


@pytest.mark.parametrize("name", ["wav2vec2-tiny-random", "clip-tiny-random",
                                  "videomae-tiny-random", "fsfm-tiny-random"])
@pytest.mark.slow
def test_random_init_is_deterministic_by_seed(name):
    clip = Clip(video=video_clip(4).video, audio=audio_clip(4000).audio)
    a, b, c = (get_backbone(name, seed=s) for s in (1, 1, 2))
    np.testing.assert_array_equal(a(clip), b(clip))
    assert not np.allclose(a(clip), c(clip))
    assert a.config() == b.config() and a.config() != c.config()
    assert json.loads(json.dumps(a.config()))["seed"] == 1  # JSON-able cache key
    assert a.weights == "random"


def test_fsfm_face_crops_follow_the_ffpp_box_rule():
    """The paper's FSFM crop: FF++'s integer square of 1.3 x the detector box, shifted or
    shrunk inside the frame (never padded), PIL bilinear to the model's size; no box: the
    whole frame. (100 x 100 frame, box (80, 80)-(99, 99): side int(19 * 1.3) = 24, centre
    (89, 89), corner 77, side min(100 - 77, 24) = 23.)"""
    from PIL import Image

    from avdd.backbones.fsfm import face_crops
    from avdd.roi.faces import face_crop, ffpp_box
    from avdd.roi.regions import Roi

    assert ffpp_box((80, 80, 99, 99), 100, 100) == (77, 77, 23)
    assert ffpp_box((-5, 2, 15, 30), 100, 100) == (0, 0, 36)  # int(28 * 1.3) = 36, shifted
    assert ffpp_box((10.7, 20.2, 50.9, 60.4), 100, 100) == (4, 14, 52)  # floats: as pixels
    video = np.random.default_rng(0).integers(0, 256, (2, 100, 100, 3), dtype=np.uint8)
    roi = Roi(face_box=np.tile(np.float32([[80, 80, 99, 99]]), (2, 1)))
    crops = face_crops(video, roi, 16, faces="annotation")
    expected = np.asarray(Image.fromarray(video[0, 77:100, 77:100]).resize(
        (16, 16), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(crops[0], expected)
    whole = np.asarray(Image.fromarray(video[1]).resize((16, 16), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(face_crop(video[1], np.full(4, np.nan), 16), whole)
    with pytest.raises(ValueError, match="needs face boxes"):
        face_crops(video, None, 16, faces="annotation")


def test_fsfm_detector_boxes_are_dlib_rgb_first_face(monkeypatch):
    """Without annotated boxes FSFM runs dlib's HOG detector on the RGB frame (upsample 1)
    and keeps the first face, per frame; a frame without a face is resized whole."""
    require(importlib.util.find_spec("dlib") is not None, "dlib is not installed (.[dlib])")
    from avdd.backbones.fsfm import face_crops
    from avdd.roi import faces as faces_mod

    seen = []

    class Rect:
        def __init__(self, l, t, r, b):
            self.l, self.t, self.r, self.b = l, t, r, b

        def left(self): return self.l
        def top(self): return self.t
        def right(self): return self.r
        def bottom(self): return self.b

    def detector(frame, upsample):
        seen.append((frame.shape, upsample))
        return [Rect(10, 10, 29, 29), Rect(50, 50, 89, 89)] if frame[0, 0, 0] else []

    monkeypatch.setattr(faces_mod.DlibFaceBoxes, "_detector", staticmethod(lambda: detector))
    video = np.zeros((2, 100, 100, 3), np.uint8)
    video[0, 0, 0, 0] = 1  # the first frame "has" faces
    boxes = faces_mod.DlibFaceBoxes()(video)
    np.testing.assert_array_equal(boxes[0], [10, 10, 29, 29])  # faces[0], not the biggest
    assert np.isnan(boxes[1]).all() and seen == [((100, 100, 3), 1)] * 2
    crops = face_crops(video, None, 16)  # faces="auto", no annotation: the detector
    assert faces_mod.ffpp_box((10, 10, 29, 29), 100, 100) == (7, 7, 24)
    np.testing.assert_array_equal(crops[0], faces_mod.face_crop(video[0], (10, 10, 29, 29), 16))
    np.testing.assert_array_equal(crops[1], faces_mod.face_crop(video[1], None, 16))


@pytest.mark.slow
def test_fsfm_real_dlib_detector_runs_on_rgb_frames():
    require(importlib.util.find_spec("dlib") is not None, "dlib is not installed (.[dlib])")
    from avdd.roi.faces import DlibFaceBoxes

    source = DlibFaceBoxes()
    assert source.config()["input"] == "rgb" and source.config()["face"] == "first"
    boxes = source(np.zeros((2, 64, 64, 3), np.uint8))  # nothing to find: NaN rows
    assert boxes.shape == (2, 4) and np.isnan(boxes).all()
