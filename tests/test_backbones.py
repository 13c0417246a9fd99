import dataclasses

import numpy as np
import pytest

from avdd.backbones import available, get_backbone
from avdd.backbones.handcrafted import mel_filterbank
from avdd.backbones.layers.frames import pair_frames
from avdd.media import Clip
from avdd.roi.regions import Roi, mouth_crops


def make_clip(seconds=1.0, size=64, audio=True):
    t = int(round(25 * seconds))
    rng = np.random.default_rng(0)
    video = rng.integers(0, 255, (t, size, size, 3), dtype=np.uint8)
    n = int(16000 * seconds)
    wave = (0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / 16000)).astype(np.float32)
    return Clip(video=video, audio=wave if audio else np.zeros(0, np.float32), fps=25.0,
                sample_rate=16000, path=None)


def test_registry_lists_demo_backbones():
    assert {"logmel", "mouth-pixels"} <= set(available())
    with pytest.raises(KeyError, match="unknown backbone"):
        get_backbone("no-such-model")


@pytest.mark.parametrize("seconds", [0.04, 1.0, 1.02, 2.5])
def test_logmel_is_25hz_and_paired(seconds):
    b = get_backbone("logmel")
    f = b(make_clip(seconds))
    assert f.shape == (int(np.ceil(np.ceil(16000 * seconds / 320) / 2)), 160)
    assert b.fps == 25.0 and f.dtype == np.float32 and np.isfinite(f).all()


def test_logmel_energy_lands_in_the_right_band():
    b = get_backbone("logmel")
    f = b(make_clip(1.0))
    mel = f[:, :80].mean(0)
    fb = mel_filterbank(16000, 512, 80, 20, 7600)
    peak_bin = np.argmax(fb[:, int(440 / (8000 / 256))])
    assert abs(int(np.argmax(mel)) - int(peak_bin)) <= 1


def test_logmel_frames_depend_on_their_own_audio_only():
    """A cue in a few frames must stay in those frames (per-clip normalisation moved all the
    others, and Fig. 2's frame scores pointed away from the fake words)."""
    b = get_backbone("logmel")
    clip = make_clip(2.0)
    audio = clip.audio.copy()
    audio[16000:19200] += 0.2 * np.sin(2 * np.pi * 3000 * np.arange(3200) / 16000)  # 1.0-1.2 s
    changed = dataclasses.replace(clip, audio=audio)
    f, g = b(clip), b(changed)
    rows = np.flatnonzero(np.abs(f - g).max(1) > 1e-4)
    assert len(rows) and rows.min() >= 24 and rows.max() <= 29  # the 25 Hz rows whose windows touch it


def test_pair_frames_duplicates_odd_last_frame():
    x = np.arange(10, dtype=np.float32).reshape(5, 2)
    y = pair_frames(x)
    assert y.shape == (3, 4)
    np.testing.assert_array_equal(y[-1], [8, 9, 8, 9])


def test_mouth_pixels_follows_roi():
    clip = make_clip(0.4, size=64)
    video = np.zeros_like(clip.video)
    video[:, 40:50, 10:20] = 255  # a bright patch where the "mouth" is
    clip = Clip(video=video, audio=clip.audio, fps=25.0, sample_rate=16000, path=None)
    t = len(video)
    box = np.tile([[7.0, 30.0, 23.0, 55.0]], (t, 1))  # 16 px wide face: a ~10 px crop
    on = Roi(mouth_centre=np.tile([[15.0, 45.0]], (t, 1)), face_box=box)
    off = Roi(mouth_centre=np.tile([[50.0, 10.0]], (t, 1)), face_box=box)
    assert mouth_crops(video, on, grid=4).mean() > 0.5
    assert mouth_crops(video, off, grid=4).mean() < 0.1
    b = get_backbone("mouth-pixels")
    f = b(clip, on)
    assert f.shape == (t, b.dim) and b.dim == 579


def test_mouth_pixels_motion_channel():
    clip = make_clip(0.4, size=64)
    f = get_backbone("mouth-pixels")(clip, None)
    still = Clip(video=np.repeat(clip.video[:1], len(clip.video), 0), audio=clip.audio,
                 fps=25.0, sample_rate=16000, path=None)
    g = get_backbone("mouth-pixels")(still, None)
    assert np.abs(f[:, 435:]).mean() > 0.01 and np.allclose(g[:, 435:], 0)


def test_backbone_spec_strings_carry_arguments():
    from avdd.backbones.base import parse_spec

    assert parse_spec("logmel") == ("logmel", {})
    assert parse_spec("wav2vec2:model=/ckpt/x,seed=3") == ("wav2vec2", {"model": "/ckpt/x",
                                                                         "seed": 3})
    b = get_backbone("wav2vec2-tiny-random:seed=1")
    assert b.config()["seed"] == 1 and b.config() != get_backbone("wav2vec2-tiny-random").config()
    with pytest.raises(ValueError, match="expected NAME:key=value"):
        parse_spec("logmel:oops")
