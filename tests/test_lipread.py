"""The shared mouth-ROI + lip-model input pipeline (avdd.lipread): fast unit tests."""

from __future__ import annotations

import dataclasses
import importlib.util
import warnings

import numpy as np
import pytest
from conftest import require

from avdd.backbones.layers.audio import (
    avhubert_audio,
    leading_silence_seconds,
    logfbank,
    trim_leading_silence,
    utterance_norm,
)
from avdd.backbones.layers.lip_inputs import lip_inputs, video_input
from avdd.media import Clip
from avdd.roi import align as align_mod
from avdd.roi import landmarks as lm_mod
from avdd.roi import mouth as cache_mod
from avdd.roi.align import AlignConfig, interpolate_landmarks, mouth_rois, smooth_landmarks
from avdd.roi.image import to_grey
from avdd.roi.landmarks import (
    MEDIAPIPE_TO_DLIB68,
    SyntheticLandmarks,
    get_landmark_source,
    mean_face,
    template_landmarks,
)
from avdd.roi.mouth import RoiCache
from avdd.roi.regions import MouthRois, Roi

SIZE = 128


def _face_clip(t: int = 30, seed: int = 0):
    """A grey frame per step with a bright mouth blob at a moving, annotated mouth centre, and a
    face box of a 60 px wide face: ((T, H, W, 3) uint8, Roi)."""
    rng = np.random.default_rng(seed)
    drift = np.cumsum(rng.normal(0, 0.4, size=(t, 2)), axis=0)
    mouth = np.array([64.0, 84.0]) + drift
    box = np.concatenate([mouth + [-30, -66], mouth + [30, 14]], axis=1)
    yy, xx = np.mgrid[:SIZE, :SIZE] + 0.5
    video = np.full((t, SIZE, SIZE, 3), 60, np.uint8)
    for i, (mx, my) in enumerate(mouth):
        blob = ((xx - mx) / 6) ** 2 + ((yy - my) / 3) ** 2 <= 1
        video[i][blob] = 250
    return video, Roi(mouth_centre=mouth.astype(np.float32), face_box=box.astype(np.float32))


def _bright_centroid(crop: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(crop > 200)
    return np.array([xs.mean(), ys.mean()]) + 0.5  # pixel centres


# -- landmarks ----------------------------------------------------------------------------------
def test_template_landmarks_put_mouth_on_annotation_and_eyes_in_box():
    _, roi = _face_clip(5)
    lms = template_landmarks(roi.face_box, roi.mouth_centre)
    assert lms.shape == (5, 68, 2) and lms.dtype == np.float32
    np.testing.assert_allclose(lms[:, 48:68].mean(axis=1), roi.mouth_centre, atol=1e-4)
    box = roi.face_box
    eyes = lms[:, 36:48]
    assert (eyes[..., 0] > box[:, None, 0]).all() and (eyes[..., 0] < box[:, None, 2]).all()
    assert (eyes[..., 1] > box[:, None, 1]).all()
    # Top to bottom: eyes, nose base, mouth; the jaw spans the box width.
    assert (eyes[..., 1].mean(1) < lms[:, 33, 1]).all() and (lms[:, 33, 1] < roi.mouth_centre[:, 1]).all()
    np.testing.assert_allclose(lms[:, 16, 0] - lms[:, 0, 0], box[:, 2] - box[:, 0], rtol=1e-5)


def test_synthetic_source_stretches_short_annotations():
    video, roi = _face_clip(6)
    short = Roi(mouth_centre=roi.mouth_centre[:5], face_box=roi.face_box[:5])
    lms = SyntheticLandmarks(short)(video)
    assert lms.shape == (6, 68, 2)
    np.testing.assert_array_equal(lms[5], lms[4])


def test_get_landmark_source_choices(monkeypatch):
    _, roi = _face_clip(3)
    assert get_landmark_source("auto", roi).name == "synthetic"
    assert get_landmark_source("synthetic", roi).name == "synthetic"
    with pytest.raises(ValueError, match="unknown landmark source"):
        get_landmark_source("haar")
    with pytest.raises(ValueError, match="mouth_centre and face_box"):
        get_landmark_source("synthetic", None)
    monkeypatch.setattr(lm_mod, "_importable", lambda name: False)
    with pytest.raises(ImportError, match=r'avdd\[dlib\]'):
        get_landmark_source("auto", Roi(mouth_centre=roi.mouth_centre))  # no face box: not synthetic
    # Without dlib, "auto" never falls back to mediapipe (another detector, other features).
    monkeypatch.setattr(lm_mod, "_importable", lambda name: name == "mediapipe")
    with pytest.raises(ImportError, match=r'uses dlib.*avdd\[dlib\]'):
        get_landmark_source("auto", None)


def test_mediapipe_mapping_is_68_distinct_mesh_points():
    assert len(MEDIAPIPE_TO_DLIB68) == 68 == len(set(MEDIAPIPE_TO_DLIB68))
    assert max(MEDIAPIPE_TO_DLIB68) < 468


def test_grey_matches_opencv_integer_formula():
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [10, 20, 30]]], np.uint8)
    # cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) gives these values.
    np.testing.assert_array_equal(to_grey(rgb)[0], [76, 150, 29, 255, 18])


def test_grey_is_the_integer_formula_on_every_colour():
    levels = np.arange(256, dtype=np.uint32)
    gb = np.stack(np.meshgrid(levels, levels, indexing="ij"), axis=-1)  # (256, 256, 2)
    for r in range(0, 256, 32):  # 32 red levels at a time: ~80 MB, not 300
        rgb = np.concatenate([np.broadcast_to(levels[r:r + 32, None, None, None], (32, 256, 256, 1)),
                              np.broadcast_to(gb, (32, 256, 256, 2))], axis=-1)
        expected = (rgb @ np.array([4899, 9617, 1868], np.uint32) + 8192) >> 14
        np.testing.assert_array_equal(to_grey(rgb.astype(np.uint8)), expected)


# -- alignment ----------------------------------------------------------------------------------
@pytest.mark.slow
def test_alignment_centres_the_mouth_in_the_crop():
    video, roi = _face_clip(30)
    rois = mouth_rois(video, SyntheticLandmarks(roi))
    assert not rois.fallback and rois.landmark_source == "synthetic"
    assert rois.frames.shape == (30, 96, 96) and rois.frames.dtype == np.uint8
    for crop in rois.frames:
        np.testing.assert_allclose(_bright_centroid(crop), [48, 48], atol=1.5)
    assert rois.face_boxes.shape == (30, 4) and np.isfinite(rois.face_boxes).all()


def test_crop_warp_equals_full_warp_then_slice():
    from skimage.transform import estimate_transform, warp

    video, roi = _face_clip(1)
    grey = to_grey(video)[0]
    lms = template_landmarks(roi.face_box, roi.mouth_centre)[0].astype(np.float64) + 3.3
    stable = [33, 36, 39, 42, 45]
    tform = estimate_transform("similarity", lms[stable], mean_face()[stable])
    full = (warp(grey, tform.inverse, output_shape=(256, 256)) * 255).astype(np.uint8)
    x0, y0 = align_mod._crop_origin(tform(lms[48:68]).mean(axis=0), AlignConfig())
    np.testing.assert_array_equal(align_mod._warp_crop(grey, tform.inverse.params, x0, y0, 96),
                                  full[y0:y0 + 96, x0:x0 + 96])



def _skimage_crop(grey, tform, x0, y0, crop=96):
    """The reference: skimage's warp up to the crop's far corner, truncated, then the crop."""
    from skimage.transform import warp

    full = warp(grey, tform.inverse, output_shape=(y0 + crop, x0 + crop), order=1, mode="constant",
                cval=0.0)
    return (full * 255).astype(np.uint8)[y0:, x0:]


def test_compiled_warp_equals_skimage_warp_bit_for_bit():
    """warp_kernel.warp_crops against skimage on random similarities: frames with and without
    black pixels, crops inside, across and wholly outside the image (skimage then widens its
    output clip to the border's 0 only when some output pixel lies wholly outside)."""
    from skimage.transform import SimilarityTransform

    from avdd.roi.warp_kernel import COMPILED, warp_crops

    require(COMPILED, "numba is not installed")
    rng = np.random.default_rng(3)
    frames, tforms, origins, expected = [], [], [], []
    for k in range(60):
        lo = 0 if k % 3 == 0 else int(rng.integers(1, 80))  # two in three frames have no 0
        grey = rng.integers(lo, 256, (int(rng.integers(60, 140)), int(rng.integers(60, 140))),
                            dtype=np.uint8)
        grey[rng.random(grey.shape) < 0.5] = lo + 7  # flat patches: truncation at exact levels
        tform = SimilarityTransform(scale=rng.uniform(1.5, 4), rotation=rng.uniform(-0.4, 0.4),
                                    translation=rng.uniform(-150, 100, 2))
        x0, y0 = (int(v) for v in rng.integers(0, 161, 2))
        frames.append(np.pad(grey, ((0, 140 - grey.shape[0]), (0, 140 - grey.shape[1])),
                             constant_values=lo + 7))  # one (T, H, W) array; the pad is image
        tforms.append(tform)
        origins.append((x0, y0))
        expected.append(_skimage_crop(frames[-1], tform, x0, y0))
    # Half a pixel off the top-left edge of a frame without 0: the first row and column mix
    # the border's 0 in. skimage clips them up to the frame's minimum when no output pixel up
    # to the crop's far corner is wholly outside (x0 = 0), and keeps them when one is (x0 = 60).
    half = SimilarityTransform(translation=(0.5, 0.5))
    for x0 in (0, 60):
        frames.append(np.full((140, 140), 90, np.uint8))
        tforms.append(half)
        origins.append((x0, 0))
        expected.append(_skimage_crop(frames[-1], half, x0, 0))
    inverse = np.stack([t.inverse.params[:2] for t in tforms])
    got = warp_crops(np.stack(frames), align_mod._GREY_LEVELS, inverse, np.array(origins), 96)
    np.testing.assert_array_equal(got, np.stack(expected))
    inner = expected[-1][50, 50]  # 89: 90 / 255 * 255 truncates to 89, as upstream's
    assert (expected[-2][0] == inner).all() and (expected[-1][0] < inner // 2 + 1).all()
    assert sum((e == 0).any() for e in expected) > 10  # crops reaching outside the image


def test_batched_similarities_are_skimages_floats():
    from skimage.transform import estimate_transform

    from avdd.roi.similarity import apply_similarities, similarities

    rng = np.random.default_rng(4)
    target = mean_face()[[33, 36, 39, 42, 45]]
    src = np.concatenate([rng.uniform(0, 200, (300, 5, 2)),  # arbitrary, reflections included
                          target * rng.uniform(0.3, 3, (300, 1, 1)) + rng.normal(0, 2, (300, 5, 2))])
    got = similarities(src, target)
    tforms = [estimate_transform("similarity", s, target) for s in src]
    np.testing.assert_array_equal(got, np.stack([t.params for t in tforms]))
    points = rng.uniform(0, 128, (len(src), 20, 2))
    np.testing.assert_array_equal(apply_similarities(got, points),
                                  np.stack([t(p) for t, p in zip(tforms, points)]))
    collinear = src[:2].copy()
    collinear[1, :, 1] = 3.0  # all five points on one line: not of full rank
    assert similarities(collinear, target) is None

def test_mouth_rois_compiled_and_skimage_paths_agree(monkeypatch):
    video, roi = _face_clip(20)
    video[..., 0] = np.clip(video[..., 0].astype(int) + np.arange(SIZE), 0, 255)  # texture
    lms = template_landmarks(roi.face_box, roi.mouth_centre) + 0.37
    compiled = mouth_rois(video, lms)
    monkeypatch.setattr(align_mod, "COMPILED", False)  # the per-frame skimage warp
    np.testing.assert_array_equal(mouth_rois(video, lms).frames, compiled.frames)
    monkeypatch.setattr(align_mod, "similarities", lambda src, dst: None)  # and skimage's fits
    np.testing.assert_array_equal(mouth_rois(video, lms).frames, compiled.frames)

def test_interpolation_fills_gaps_linearly_and_copies_edges():
    lms = np.full((8, 68, 2), np.nan)
    lms[2], lms[5] = 10.0, 40.0
    lms[6, 0, 0] = 99.0  # one NaN coordinate makes the whole frame missing
    out = interpolate_landmarks(lms)
    np.testing.assert_allclose(out[:3, 0, 0], [10, 10, 10])
    np.testing.assert_allclose(out[3:6, 0, 0], [20, 30, 40])
    np.testing.assert_allclose(out[6:, 5, 1], [40, 40])
    assert interpolate_landmarks(np.full((4, 68, 2), np.nan)) is None


def test_forward_smoothing_window():
    x = np.arange(20, dtype=float)[:, None, None] * np.ones((1, 68, 2))
    out = smooth_landmarks(x, window=12)
    np.testing.assert_allclose(out[:9, 0, 0], np.arange(9) + 5.5)  # mean of i..i+11
    np.testing.assert_allclose(out[8:, 0, 0], 13.5)  # the last 11 frames reuse frame 8's
    short = smooth_landmarks(x[:5], window=12)
    np.testing.assert_allclose(short[:, 0, 0], 2.0)  # fewer frames than the window: one mean


def _ramp_video(t: int, h: int, w: int) -> np.ndarray:
    """Grey frames whose pixel (y, x) is x (mod 256): a crop's columns say where it was cut."""
    x = (np.arange(w) % 256).astype(np.uint8)
    return np.broadcast_to(x[None, None, :, None], (t, h, w, 3)).copy()


@pytest.mark.parametrize("width", [224, 225, 160])
def test_no_face_anywhere_falls_back_to_the_centre_of_the_full_frame(width):
    """AVH-Align writes the whole full-resolution frame as the ROI video when no face is found;
    AV-HuBERT's loader centre-crops 88 x 88 at floor((W - 88) / 2) of it."""
    video = _ramp_video(4, 224, width)
    rois = mouth_rois(video, np.full((4, 68, 2), np.nan, np.float32), source="dlib")
    assert rois.fallback and "no face" in rois.reason
    assert rois.frames.shape == (4, 96, 96)
    np.testing.assert_array_equal(rois.face_boxes, np.tile([0, 0, width, 224], (4, 1)))
    x0 = (width - 96) // 2
    np.testing.assert_array_equal(rois.frames, to_grey(video)[:, 64:160, x0:x0 + 96])
    # What the model reads: the 88 columns from floor((W - 88) / 2), AV-HuBERT's CenterCrop.
    first = (width - 88) // 2
    columns = np.round(video_input(rois.frames)[0, 0] * 0.165 * 255 + 0.421 * 255)
    np.testing.assert_array_equal(columns, np.arange(first, first + 88))


def test_fallback_of_a_frame_smaller_than_the_crop_is_zero_padded():
    video = _ramp_video(1, 64, 80)
    rois = mouth_rois(video, np.full((1, 68, 2), np.nan, np.float32))
    assert rois.frames.shape == (1, 96, 96)
    np.testing.assert_array_equal(rois.frames[0, 16:80, 8:88], to_grey(video)[0])
    assert rois.frames[0, :16].max() == 0 and rois.frames[0, :, :8].max() == 0


def test_crop_outside_the_aligned_frame_is_clamped_as_upstream():
    """Upstream clamps the crop centre before its "more than 5 px outside" test, so the test
    never fires: a mouth far off the aligned frame gives the edge crop, not a fallback."""
    video, roi = _face_clip(3)
    lms = template_landmarks(roi.face_box, roi.mouth_centre)
    lms[:, 48:68, 1] += 40  # mouth points far below the face: the crop leaves the frame
    clamped = mouth_rois(video, lms)
    assert not clamped.fallback and clamped.frames.shape == (3, 96, 96)
    # The opt-in strict rule still exists (BACKBONES.md's wording) and does fall back.
    assert mouth_rois(video, lms, config=AlignConfig(max_outside_px=5)).fallback


def test_crop_origin_clamps_a_centre_past_the_right_edge():
    cfg = AlignConfig()
    # Mouth 20 px beyond the right edge of the 256 x 256 aligned frame: 68 px outside.
    assert align_mod._crop_origin(np.array([276.0, 128.0]), cfg) == (256 - 96, 80)
    assert align_mod._crop_origin(np.array([-3.0, 300.0]), cfg) == (0, 256 - 96)
    assert align_mod._crop_origin(np.array([100.5, 99.5]), cfg) == (100 - 48, 100 - 48)  # half-even
    with pytest.raises(align_mod.CropError, match="68.0 px outside"):
        align_mod._crop_origin(np.array([276.0, 128.0]), AlignConfig(max_outside_px=5))


def test_landmark_shape_mismatch_is_an_error():
    video, roi = _face_clip(3)
    with pytest.raises(ValueError, match="do not match"):
        mouth_rois(video, np.zeros((2, 68, 2)))


# -- audio --------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 399, 400, 401, 560, 16000, 16001, 40123])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logfbank_matches_python_speech_features(n, dtype):
    require(importlib.util.find_spec("python_speech_features") is not None,
            "python_speech_features is not installed (pip install -e '.[dev]')")
    import python_speech_features as psf
    x = (np.random.default_rng(n).standard_normal(n) * 0.1).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = psf.logfbank(x, samplerate=16000)
    np.testing.assert_allclose(logfbank(x), expected, rtol=0, atol=1e-9)


def test_logfbank_of_silence_is_log_eps():
    np.testing.assert_allclose(logfbank(np.zeros(1000)), np.log(np.finfo(float).eps))


# F = 1 + ceil((N - 400) / 160) logfbank frames, T = ceil(F / 4): N = 640 k + r gives k frames
# up to r = 240 and k + 1 from r = 241.
@pytest.mark.parametrize("n, frames", [(1, 1), (640, 1), (641, 1), (880, 1), (881, 2), (16000, 25),
                                       (16240, 25), (16241, 26), (64000, 100)])
def test_avhubert_audio_shape_and_layer_norm(n, frames):
    import torch

    x = np.random.default_rng(0).standard_normal(n).astype(np.float32) * 0.1
    out = avhubert_audio(x)
    assert out.shape == (frames, 104) and out.dtype == np.float32
    feats = logfbank(x).astype(np.float32)
    feats = np.concatenate([feats, np.zeros(((-len(feats)) % 4, 26), np.float32)]).reshape(-1, 104)
    expected = torch.nn.functional.layer_norm(torch.from_numpy(feats), (104,)).numpy()
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_utterance_norm_is_auto_avsr_layer_norm_with_eps_0():
    import torch

    x = np.random.default_rng(1).standard_normal(3000).astype(np.float32) * 0.002 + 0.0005
    # The paper's transform: layer_norm(x, x.shape, eps=0); with eps 1e-8 a quiet waveform
    # (variance 4e-6) would differ by ~1e-3 relative.
    expected = torch.nn.functional.layer_norm(torch.from_numpy(x)[None], (1, 3000), eps=0)
    np.testing.assert_allclose(utterance_norm(x), expected.numpy()[0], rtol=1e-5, atol=1e-6)
    assert not np.allclose(utterance_norm(x, eps=1e-8), expected.numpy()[0], rtol=1e-4, atol=0)
    with pytest.raises(ValueError, match="constant"):
        utterance_norm(np.zeros(640, np.float32))


def test_trim_leading_silence_frame_arithmetic():
    wave = np.zeros(16000, np.float32)
    wave[4000:] = 0.1  # sound from 0.25 s = 6.25 frames
    assert leading_silence_seconds(wave) == 0.25
    frames = np.arange(25)
    v, a, s = trim_leading_silence(frames, wave)
    assert s == 0.25 and v[0] == 7 and len(a) == 16000 - 7 * 640  # int(6.25) + 1 frames
    wave[0] = 0.001  # first sample above threshold: s = 0, nothing dropped
    v, a, s = trim_leading_silence(frames, wave)
    assert s == 0 and len(v) == 25 and len(a) == 16000
    assert leading_silence_seconds(np.zeros(800)) == 0.05  # all silent: the whole duration


# -- inputs -------------------------------------------------------------------------------------
def _clip(video, n_samples, seed=0):
    audio = (np.random.default_rng(seed).standard_normal(n_samples) * 0.05).astype(np.float32)
    return Clip(video=video, audio=audio)


def test_video_input_centre_crop_and_normalisation():
    frames = np.zeros((2, 96, 96), np.uint8)
    frames[:, 4:92, 4:92] = round(0.421 * 255)
    out = video_input(frames)
    assert out.shape == (2, 88, 88) and out.dtype == np.float32
    assert np.abs(out).max() < 0.02  # exactly the crop, normalised to ~0


def test_video_input_in_place_is_the_formula_bit_for_bit():
    # video_input normalises one float32 copy in place (no (T, 88, 88) temporaries): the same
    # float32 operations as the expression it replaced.
    frames = np.random.default_rng(0).integers(0, 256, (5, 96, 96), dtype=np.uint8)
    crop = frames[:, 4:92, 4:92].astype(np.float32) / 255.0
    want = ((crop - 0.421) / 0.165).astype(np.float32)
    got = video_input(frames)
    assert got.dtype == np.float32 and got.flags.c_contiguous and np.array_equal(got, want)


@pytest.mark.parametrize("kind", ["avhubert", "raw", "utterance_norm"])
def test_lip_inputs_cuts_streams_to_common_length(kind):
    video, roi = _face_clip(30)
    short_audio = lip_inputs(_clip(video, 20 * 640 + 100), roi, audio=kind)  # 20.2 audio frames
    # BRAVEn's raw audio counts the partial frame (zero-padded); AV-HuBERT's stacker and
    # Auto-AVSR's min(T, N // 640) do not.
    t = 21 if kind == "raw" else 20
    assert short_audio.video.shape == (t, 88, 88) and short_audio.fps == 25.0
    expected_audio = (t, 104) if kind == "avhubert" else (t * 640,)
    assert short_audio.audio.shape == expected_audio and short_audio.audio.dtype == np.float32
    if kind == "raw":
        assert (short_audio.audio[20 * 640 + 100:] == 0).all()
    long_audio = lip_inputs(_clip(video, 40 * 640), roi, audio=kind)
    assert long_audio.video.shape[0] == 30 and long_audio.num_frames == 30
    assert long_audio.audio.shape[0] == (30 if kind == "avhubert" else 30 * 640)


def test_lip_inputs_single_stream_and_precomputed_rois():
    video, roi = _face_clip(12)
    audio_only = lip_inputs(_clip(video, 5 * 640), None, need_video=False)
    assert audio_only.video.shape == (0, 88, 88) and audio_only.audio.shape == (5, 104)
    assert audio_only.rois is None
    marker = np.full((12, 96, 96), 7, np.uint8)
    given = MouthRois(marker, np.zeros((12, 4), np.float32), False, "cached")
    out = lip_inputs(_clip(video, 0), dataclasses.replace(roi, mouth=given), need_audio=False)
    np.testing.assert_array_equal(out.video, video_input(marker))
    assert out.rois is given and out.audio.shape == (0, 104)
    with pytest.raises(ValueError, match="no audio samples"):
        lip_inputs(_clip(video, 0), roi)
    with pytest.raises(ValueError, match="fps"):
        lip_inputs(Clip(video=video, audio=np.zeros(640, np.float32), fps=30.0), roi)


def test_lip_inputs_take_a_native_clip_frame_by_frame():
    """A clip decoded at its native 30 fps is taken as upstream took it: one frame per 640
    audio samples; the features' rate is then the clip's (30 rows per second)."""
    from avdd.backbones.layers.lip_inputs import lip_feature_rate

    video, roi = _face_clip(30)
    clip = Clip(video=video, audio=np.zeros(40 * 640, np.float32) + 0.01, fps=30.0, native=True)
    out = lip_inputs(clip, roi)
    assert out.video.shape == (30, 88, 88) and out.audio.shape == (30, 104)
    assert lip_feature_rate(clip, True) == 30.0 and lip_feature_rate(clip, False) == 25.0
    resampled = dataclasses.replace(clip, native=False)
    with pytest.raises(ValueError, match="30 fps"):
        lip_inputs(resampled, roi)
    assert lip_inputs(resampled, roi, need_video=False).audio.shape == (40, 104)  # audio only


def test_lip_inputs_trim_silence_drops_matching_frames():
    video, roi = _face_clip(30)
    clip = _clip(video, 30 * 640)
    clip.audio[:4000] = 0.0  # 0.25 s of silence: 7 frames go
    out = lip_inputs(clip, roi, trim_silence=True)
    full = lip_inputs(clip, roi)
    assert out.trimmed_frames == 7 and out.video.shape[0] == 23
    np.testing.assert_array_equal(out.video, full.video[7:])


# -- cache --------------------------------------------------------------------------------------
def test_cache_round_trip_and_atomic_write(tmp_path, monkeypatch):
    video, roi = _face_clip(10)
    rois = mouth_rois(video, SyntheticLandmarks(roi))
    cache = RoiCache(tmp_path, {"landmarks": "auto"})
    assert cache.get("av1m/train/a b.mp4") is None
    path = cache.put("av1m/train/a b.mp4", rois)
    assert path.parent == cache.dir and path.name.startswith("av1m_train_a_b.mp4-")
    assert (cache.dir / "config.json").exists()
    got = cache.get("av1m/train/a b.mp4")
    np.testing.assert_array_equal(got.frames, rois.frames)
    np.testing.assert_array_equal(got.face_boxes, rois.face_boxes)
    np.testing.assert_array_equal(got.landmarks, rois.landmarks)
    assert got.fallback is False and got.landmark_source == "synthetic"
    assert cache.path("a/b") != cache.path("a_b")
    assert RoiCache(tmp_path, {"landmarks": "dlib"}).dir != cache.dir

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(cache_mod.np, "savez_compressed", broken)
    with pytest.raises(OSError):
        cache.put("other", rois)
    assert not cache.path("other").exists()
    assert sorted(p.name for p in cache.dir.iterdir() if p.name.startswith(".")) == []  # no temp left


def test_cache_corrupt_entry_is_recomputed(tmp_path):
    cache = RoiCache(tmp_path, {"landmarks": "auto"})
    cache.dir.mkdir(parents=True)
    cache.path("x").write_bytes(b"not a zip")
    with pytest.warns(UserWarning, match="unreadable"):
        assert cache.get("x") is None


def test_load_or_compute_caches_once(tmp_path, monkeypatch):
    video, roi = _face_clip(8)
    clip = _clip(video, 8 * 640)
    cache = RoiCache(tmp_path, {"landmarks": "auto"})
    calls = []
    real = cache_mod.compute_rois
    monkeypatch.setattr(cache_mod, "compute_rois", lambda *a: calls.append(1) or real(*a))
    first = cache.load_or_compute("v1", clip, roi)
    second = cache.load_or_compute("v1", clip, roi)
    assert len(calls) == 1 and first.mouth_frames.shape == (8, 96, 96)
    np.testing.assert_array_equal(first.mouth_frames, second.mouth_frames)
    np.testing.assert_array_equal(second.mouth_centre, roi.mouth_centre)  # annotations kept
    cache.load_or_compute("v1", _clip(video[:6], 6 * 640), roi)  # another length: stale entry
    assert len(calls) == 2 and cache.get("v1").frames.shape[0] == 6
    # lip_inputs uses the cached crops instead of recomputing.
    out = lip_inputs(clip, second)
    np.testing.assert_array_equal(out.video, video_input(first.mouth_frames))


def test_roi_defaults_unchanged():
    r = Roi()
    assert r.mouth_centre is None and r.face_box is None and r.landmarks is None
    assert r.mouth is None and r.mouth_frames is None


# -- dlib (optional) ----------------------------------------------------------------------------
def test_dlib_source_on_a_synthetic_face():
    require(importlib.util.find_spec("dlib") is not None, "dlib is not installed (.[dlib])")
    # Found, not imported: its import needs pkg_resources, gone from new setuptools.
    require(importlib.util.find_spec("face_recognition_models") is not None,
            "face_recognition_models (dlib's 68-point model) is not installed (.[dlib])")
    from avdd.synth.common import sample_identity, speak
    from avdd.synth.config import SynthConfig
    from avdd.synth.video import quantise

    rng = np.random.default_rng(0)
    take = speak(rng, SynthConfig(), sample_identity(rng, "id0"), ["hello", "world"])
    video = quantise(take.clean.frames[:2])
    source = get_landmark_source("dlib")
    lms = source(video)
    assert lms.shape == (2, 68, 2) and lms.dtype == np.float32
    rois = mouth_rois(video, lms, source=source.name)
    assert rois.frames.shape == (2, 96, 96)
    if np.isnan(lms).all():  # the cartoon face was not detected: a clean fallback
        assert rois.fallback
    else:  # detected: the dlib mouth is near the annotated one
        np.testing.assert_allclose(np.nanmean(lms[:, 48:68], axis=1), take.clean.mouth_centre[:2], atol=4)
    blank = source(np.zeros((1, 64, 64, 3), np.uint8))
    assert np.isnan(blank).all() and mouth_rois(np.zeros((1, 64, 64, 3), np.uint8), blank).fallback


# -- mediapipe (optional) -----------------------------------------------------------------------
def test_mediapipe_source_on_a_synthetic_face():
    require(importlib.util.find_spec("mediapipe") is not None,
            "mediapipe is not installed (.[mediapipe])")
    from avdd.synth.face import render, sample_appearance, sample_mover
    from avdd.synth.video import quantise

    rng = np.random.default_rng(0)
    clean = render(sample_appearance(rng), sample_mover(rng), np.zeros(3, np.float32), np.arange(3) / 25, 256)
    video = quantise(clean.frames)
    source = get_landmark_source("mediapipe")
    lms = source(video)
    assert lms.shape == (3, 68, 2) and source.config()["mapping"] == list(MEDIAPIPE_TO_DLIB68)
    rois = mouth_rois(video, lms, source=source.name)
    assert rois.frames.shape == (3, 96, 96) and rois.landmark_source == "mediapipe"
    if not np.isnan(lms).all():  # found: its mouth is near the renderer's
        np.testing.assert_allclose(np.nanmean(lms[:, 48:68], axis=1), clean.mouth_centre, atol=5)
