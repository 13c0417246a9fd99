"""The Auto-AVSR mouth crop (avdd.roi.autoavsr) and Auto-AVSR's own input rules: the recipe of
the paper's Auto-AVSR features (veridiq ``fe_VSR``), on tiny synthetic inputs."""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import require
from test_lipread import _face_clip, _ramp_video

from avdd.backbones import get_backbone
from avdd.backbones.layers.audio import utterance_norm
from avdd.backbones.layers.lip_inputs import lip_inputs, video_input
from avdd.media import Clip
from avdd.roi import autoavsr as rec
from avdd.roi.image import to_grey
from avdd.roi.mouth import RoiCache, compute_rois
from avdd.roi.regions import Roi


def need_cv2():
    require(importlib.util.find_spec("cv2") is not None,
            "OpenCV is not installed (it comes with .[mediapipe])")
    import cv2

    return cv2


def textured(t: int, size: int = 256, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (t, size, size, 3), dtype=np.uint8)


# -- the recipe ---------------------------------------------------------------------------------
def test_keypoints_on_the_reference_crop_the_mouth_without_warping():
    """Keypoints equal to the mean face's group means: the partial affine is the identity, the
    crop is the 96 x 96 around the mouth point, in grey (RGB2GRAY of the colour crop)."""
    need_cv2()
    video = textured(3)
    ref = rec.reference_keypoints()
    rois = rec.autoavsr_rois(video, np.tile(ref, (3, 1, 1)))
    assert not rois.fallback and rois.recipe == "autoavsr" and rois.landmarks.shape == (3, 4, 2)
    cx, cy = ref[3]
    y0, x0 = int(round(cy - 48)), int(round(cx - 48))
    assert (y0, x0) == (110, 81)
    np.testing.assert_array_equal(rois.frames, to_grey(video[:, y0:y0 + 96, x0:x0 + 96]))


def test_a_mouth_far_from_the_centre_resizes_the_whole_aligned_frame():
    """Upstream's edit: a mouth keypoint more than 48 + 5 px from the aligned centre gives the
    whole aligned frame resized to 96 x 96 (cv2 bilinear), frame by frame."""
    cv2 = need_cv2()
    video = textured(2)
    kps = np.tile(rec.reference_keypoints(), (2, 1, 1))
    kps[:, 3, 0] += 80  # the mouth alone moves: LMEDS keeps the identity of the other three
    rois = rec.autoavsr_rois(video, kps)
    assert not rois.fallback
    for i in range(2):
        expected = to_grey(cv2.resize(video[i], (96, 96)))
        np.testing.assert_array_equal(rois.frames[i], expected)



def test_crops_equal_upstreams_full_warp_then_cut():
    """The recipe warps only up to the crop's far corner; upstream warps the whole 256 x 256
    frame, then cuts (or resizes it): the same pixels, on random keypoints of both branches."""
    cv2 = need_cv2()
    rng = np.random.default_rng(5)
    t = 24
    video = textured(t, 200, seed=1)
    kps = np.tile(rec.reference_keypoints() * 0.7 + 10, (t, 1, 1)) + rng.normal(0, 2, (t, 4, 2))
    kps[t // 2:, 3] += [[40, 30]]  # later frames: the mouth too far off, the resize branch
    kps = kps.astype(np.float32)  # as the recipe stores them
    rois = rec.autoavsr_rois(video, kps)
    smoothed, target = rec.smooth_keypoints(kps), rec.reference_keypoints()
    resized = 0
    for i in range(t):
        m = cv2.estimateAffinePartial2D(smoothed[i], target, method=cv2.LMEDS)[0]
        full = cv2.warpAffine(video[i], m, (256, 256), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        cx, cy = smoothed[i, 3] @ m[:, :2].T + m[:, 2]
        if abs(cy - 128) > 53 or abs(cx - 128) > 53:
            patch, resized = cv2.resize(full, (96, 96)), resized + 1
        else:
            y0, x0 = int(round(np.clip(cy - 48, 0, 256))), int(round(np.clip(cx - 48, 0, 256)))
            patch = full[y0:y0 + 96, x0:x0 + 96]
        np.testing.assert_array_equal(rois.frames[i], to_grey(patch))
    assert 0 < resized < t

def test_centred_smoothing_recentred_on_the_frame():
    """Frame t averages frames t - m .. t + m, m = min(6, t, T - 1 - t), then moves so its mean
    over the 4 points is frame t's own: a common translation is not smoothed at all."""
    t_len = 20
    kps = np.zeros((t_len, 4, 2))
    kps[:, 0, 0] = np.arange(t_len) ** 2.0  # one point moves against the others
    kps[:, :, 1] = 3.0 * np.arange(t_len)[:, None]  # all points translate together
    out = rec.smooth_keypoints(kps)
    for t in range(t_len):
        m = min(6, t, t_len - 1 - t)
        window = kps[t - m:t + m + 1].mean(axis=0)
        expected = window + (kps[t].mean(axis=0) - window.mean(axis=0))
        np.testing.assert_allclose(out[t], expected)
    np.testing.assert_allclose(out[..., 1], kps[..., 1])  # the translation is kept exactly
    assert out[0, 0, 0] == 0 and out[10, 0, 0] != 100  # ends unsmoothed, the middle smoothed


@pytest.mark.parametrize(("width", "first"), [(224, 68), (225, 68), (227, 70), (96, 4)])
def test_no_face_is_torchvision_centre_crop_of_the_full_frame(width, first):
    """No face in any frame: the extractor's loader passes the grey frames unaltered through
    torchvision's CenterCrop(88), offset round((W - 88) / 2) half to even (227 -> 70, where
    AV-HuBERT's floor would give 69)."""
    video = _ramp_video(2, 200, width)
    rois = rec.autoavsr_rois(video, np.full((2, 4, 2), np.nan))
    assert rois.fallback and "no face" in rois.reason and rois.recipe == "autoavsr"
    columns = np.round(video_input(rois.frames)[0, 0] * 0.165 * 255 + 0.421 * 255)
    np.testing.assert_array_equal(columns, np.arange(first, first + 88))


def test_68_landmarks_reduce_to_the_four_group_means():
    lms = np.random.default_rng(0).uniform(0, 100, (2, 68, 2))
    kps = rec.keypoints_of(lms)
    np.testing.assert_allclose(kps[:, 0], lms[:, 36:42].mean(axis=1))
    np.testing.assert_allclose(kps[:, 2], lms[:, 31:36].mean(axis=1))
    np.testing.assert_allclose(kps[:, 3], lms[:, 48:68].mean(axis=1))


# -- MediaPipe FaceDetection as upstream drives it ----------------------------------------------
def _detection(box, points):
    return SimpleNamespace(location_data=SimpleNamespace(
        relative_bounding_box=SimpleNamespace(xmin=box[0], ymin=box[1], width=box[2], height=box[3]),
        relative_keypoints=[SimpleNamespace(x=x, y=y) for x, y in points]))


class _FakeDetector:
    """Stands in for ``mp.solutions.face_detection.FaceDetection``: scripted detections per
    model, and a record of the images it was given."""

    script: dict = {}
    seen: list = []

    def __init__(self, min_detection_confidence, model_selection):
        self.model = model_selection

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def process(self, image):
        type(self).seen.append((self.model, image.copy()))
        return SimpleNamespace(detections=self.script[self.model].pop(0))


def _fake_source(monkeypatch, script):
    _FakeDetector.script, _FakeDetector.seen = script, []
    fake = SimpleNamespace(FaceDetection=_FakeDetector)
    monkeypatch.setattr(rec.MediaPipeFaceKeypoints, "_module", staticmethod(lambda: fake))
    return rec.MediaPipeFaceKeypoints()


def test_mediapipe_keypoints_follow_upstream(monkeypatch):
    pts_a = [(0.30, 0.40), (0.60, 0.41), (0.45, 0.55), (0.4599, 0.70)]
    pts_b = [(0.10, 0.20), (0.20, 0.21), (0.15, 0.25), (0.15, 0.30)]
    good = (0.2, 0.2, 0.5, 0.6)  # size (int(0.5 W) - int(0.2 W)) + ... > 0
    odd = (0.6, 0.7, 0.1, 0.1)  # "size" (width - xmin) + (height - ymin) < 0
    source = _fake_source(monkeypatch, {
        1: [[_detection(good, pts_a), _detection(good, pts_b)],  # last positive: the last
            [_detection(good, pts_a), _detection(odd, pts_b)],  # last not positive: the first
            []],
        0: []})
    video = np.zeros((3, 100, 200, 3), np.uint8)
    video[..., 0] = 255  # red frames: the detector is handed blue ones (R/B swapped)
    kps = source(video)
    assert kps.shape == (3, 4, 2) and np.isnan(kps[2]).all()
    np.testing.assert_array_equal(kps[0], [[int(x * 200), int(y * 100)] for x, y in pts_b])
    np.testing.assert_array_equal(kps[1], [[int(x * 200), int(y * 100)] for x, y in pts_a])
    assert kps[1, 3, 0] == 91  # int(0.4599 * 200) = 91: truncated, not rounded
    assert all(model == 1 for model, _ in _FakeDetector.seen)  # a face found: no short range
    assert all((img[..., 2] == 255).all() and (img[..., 0] == 0).all() for _, img in _FakeDetector.seen)


def test_mediapipe_short_range_only_when_full_range_finds_nothing(monkeypatch):
    pts = [(0.3, 0.4), (0.6, 0.4), (0.45, 0.55), (0.45, 0.7)]
    source = _fake_source(monkeypatch, {1: [[], []], 0: [[], [_detection((0.2, 0.2, 0.5, 0.6), pts)]]})
    kps = source(np.zeros((2, 10, 10, 3), np.uint8))
    assert np.isnan(kps[0]).all() and not np.isnan(kps[1]).any()
    assert [m for m, _ in _FakeDetector.seen] == [1, 1, 0, 0]


def test_mediapipe_face_detection_on_a_synthetic_face():
    require(importlib.util.find_spec("mediapipe") is not None,
            "mediapipe is not installed (.[mediapipe])")
    need_cv2()
    from avdd.synth.face import render, sample_appearance, sample_mover
    from avdd.synth.video import quantise

    rng = np.random.default_rng(0)
    clean = render(sample_appearance(rng), sample_mover(rng), np.zeros(3, np.float32),
                   np.arange(3) / 25, 256)
    video = quantise(clean.frames)
    source = rec.get_keypoint_source("mediapipe-face")
    kps = source(video)
    assert kps.shape == (3, 4, 2) and source.config()["swap_rb"] is True
    rois = rec.autoavsr_rois(video, source)
    assert rois.frames.shape == (3, 96, 96) and rois.landmark_source == "mediapipe-face"
    found = ~np.isnan(kps).any(axis=(1, 2))
    assert (kps[found] == np.round(kps[found])).all()  # integer pixels, as upstream
    if found.any():  # BlazeFace's mouth point near the renderer's mouth
        np.testing.assert_allclose(kps[found, 3], clean.mouth_centre[found], atol=12)


def test_keypoint_source_auto_never_changes_detector(monkeypatch):
    _, roi = _face_clip(3)
    assert rec.get_keypoint_source("auto", roi).name == "synthetic"
    with pytest.raises(ValueError, match="unknown Auto-AVSR keypoint source"):
        rec.get_keypoint_source("dlib")
    monkeypatch.setattr(rec.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r"MediaPipe FaceDetection.*avdd\[mediapipe\]"):
        rec.get_keypoint_source("auto", None)


# -- cache, inputs, backbone ---------------------------------------------------------------------
def test_each_recipe_has_its_own_cache_and_is_not_mixed_up(tmp_path):
    need_cv2()
    video, roi = _face_clip(6)
    clip = Clip(video=video, audio=np.zeros(6 * 640, np.float32))
    av = RoiCache(tmp_path, {"landmarks": "auto"})
    auto = RoiCache(tmp_path, {"landmarks": "auto"}, recipe="autoavsr")
    assert av.dir != auto.dir
    got = auto.load_or_compute("v", clip, roi)
    assert got.mouth.recipe == "autoavsr" and got.mouth.landmarks.shape == (6, 4, 2)
    back = auto.get("v")
    assert back.recipe == "autoavsr"
    np.testing.assert_array_equal(back.frames, got.mouth.frames)
    # An AV-HuBERT crop handed to the Auto-AVSR recipe is not used: it is recomputed.
    other = av.load_or_compute("v", clip, roi)
    assert compute_rois(clip, other, "auto", "autoavsr").recipe == "autoavsr"
    assert not np.array_equal(compute_rois(clip, other, "auto", "autoavsr").frames,
                              other.mouth.frames)


def test_auto_avsr_lengths_and_normalisation():
    """The paper's Auto-AVSR audio: AV cuts both to min(T_video, N // 640) (10 frames and 6,000
    samples -> 9) and normalises the cut waveform with eps 0; ASR alone normalises the whole
    waveform (its front-end drops the partial last frame afterwards)."""
    video, roi = _face_clip(10)
    wave = (np.random.default_rng(3).standard_normal(6000) * 0.1).astype(np.float32)
    clip = Clip(video=video, audio=wave)
    av = lip_inputs(clip, roi, audio="utterance_norm")
    assert av.video.shape == (9, 88, 88) and av.audio.shape == (9 * 640,)
    np.testing.assert_array_equal(av.audio, utterance_norm(wave[:5760]))
    asr = lip_inputs(clip, roi, audio="utterance_norm", need_video=False)
    np.testing.assert_array_equal(asr.audio, utterance_norm(wave)[:5760])
    assert not np.allclose(asr.audio, av.audio)


@pytest.mark.slow
def test_backbone_reads_the_recipe_it_records():
    need_cv2()
    video, roi = _face_clip(12)
    clip = Clip(video=video, audio=np.zeros(12 * 640, np.float32))
    paper = get_backbone("autoavsr-vsr-tiny-random:crop=autoavsr")
    demo = get_backbone("autoavsr-vsr-tiny-random")
    assert paper.config()["crop"] == paper.roi_recipe == "autoavsr"
    assert demo.config()["crop"] == "avhubert" and demo.config()["landmarks"] == "auto"
    from avdd.backbones import describe

    # The full-size (paper-profile) architectures default to the paper's crop.
    assert describe("autoavsr-vsr-random").config["crop"] == "autoavsr"
    a, b = paper(clip, roi), demo(clip, roi)
    assert a.shape == b.shape == (12, 32) and not np.allclose(a, b)
    expected = rec.autoavsr_rois(video, rec.SyntheticKeypoints(roi))
    np.testing.assert_array_equal(paper(clip, Roi(mouth=expected)), a)
