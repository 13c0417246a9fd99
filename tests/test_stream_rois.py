"""Issue 14.5 for the lip models and mouth-pixels: a long clip's mouth ROIs are made a window
at a time (:mod:`avdd.roi.stream`), and mouth-pixels reads its windows through its own
:meth:`~avdd.backbones.Backbone.window_reader`, so ``avdd extract`` and ``avdd score`` never
hold its full-size frames, and the crops and features are those of the whole clip, bit for
bit."""

from __future__ import annotations

import importlib.util
from dataclasses import replace

import numpy as np
import pytest
from conftest import require

from avdd import media
from avdd.media import read_clip, write_clip
from avdd.roi.regions import Roi

FRAMES, H, W = 90, 96, 128
WINDOW = 7  # frames per decoded window in these tests
FULL = 96 * 96  # pixels of the smallest frames the tests decode (the demo's are 128 x 128)


def _pattern(n: int, h: int, w: int) -> np.ndarray:
    """``(n, h, w, 3)`` frames that differ from each other: smooth noise (upsampled 8x, so
    that H.264 keeps it) shifted 2 px per frame."""
    coarse = np.random.default_rng(0).integers(0, 256, (h // 8 + 2, w // 8 + n + 2, 3))
    fine = np.repeat(np.repeat(coarse, 8, axis=0), 8, axis=1).astype(np.uint8)
    return np.stack([fine[:h, 2 * i:2 * i + w] for i in range(n)])


def _annotation(n: int) -> Roi:
    """A face box drifting right and a mouth in its lower half, as the synthetic benchmark
    annotates its clips (one row short: annotations and decodes can differ by a frame)."""
    t = np.arange(n - 1, dtype=np.float32)
    x0 = 30 + 0.3 * t
    box = np.stack([x0, np.full_like(t, 20), x0 + 60, np.full_like(t, 90)], axis=1)
    mouth = np.stack([x0 + 30, np.full_like(t, 70) + np.sin(t / 5)], axis=1)
    return Roi(mouth_centre=mouth, face_box=box)


@pytest.fixture
def stacked(monkeypatch):
    """The frame counts of every array of full-size frames (at least ``FULL`` pixels: the
    test clips' frames, not those resized as decoded) that the decoder builds."""
    seen: list[int] = []
    real = media._stack

    def spy(frames):
        out = real(frames)
        if out.size and out.shape[1] * out.shape[2] >= FULL:
            seen.append(len(out))
        return out

    monkeypatch.setattr(media, "_stack", spy)
    return seen


def _same(a, b) -> None:
    assert np.array_equal(a.frames, b.frames)
    assert np.array_equal(a.face_boxes, b.face_boxes)
    assert np.array_equal(a.landmarks, b.landmarks, equal_nan=True)
    assert (a.fallback, a.reason, a.landmark_source, a.recipe) == (
        b.fallback, b.reason, b.landmark_source, b.recipe)


@pytest.mark.parametrize("recipe", ["avhubert", "autoavsr"])
@pytest.mark.parametrize("given", ["synthetic", "no face"])
def test_streamed_mouth_rois_equal_the_whole_clips(tmp_path, recipe, given, stacked):
    from avdd.roi.mouth import compute_rois
    from avdd.roi.stream import stream_rois

    if recipe == "autoavsr":
        require(importlib.util.find_spec("cv2") is not None, "OpenCV is not installed")
    path = write_clip(tmp_path / "clip.mp4", _pattern(FRAMES, H, W), None)
    roi = (_annotation(FRAMES) if given == "synthetic"
           else Roi(landmarks=np.full((FRAMES, 68, 2), np.nan, np.float32)))
    whole = compute_rois(read_clip(path, audio=False), roi, "auto", recipe)
    stacked.clear()
    streamed = stream_rois(path, recipe, "auto", roi, budget=WINDOW * H * W * 3)
    _same(whole, streamed)
    assert whole.fallback == (given == "no face")
    assert stacked and max(stacked) <= WINDOW  # never more than a window of frames


@pytest.mark.parametrize("recipe,landmarks", [("avhubert", "dlib"), ("avhubert", "mediapipe"),
                                              ("autoavsr", "mediapipe-face")])
@pytest.mark.slow
def test_streamed_rois_of_detectors_equal_the_whole_clips(tiny_profile, recipe, landmarks):
    """Detected landmarks (dlib per frame, FaceMesh tracking across windows, BlazeFace with
    its short-range retry) on a rendered face."""
    from avdd.datasets import load_items
    from avdd.roi.mouth import compute_rois
    from avdd.roi.stream import stream_rois

    module = "dlib" if landmarks == "dlib" else "mediapipe"
    require(importlib.util.find_spec(module) is not None, f"{module} is not installed")
    item = load_items(tiny_profile, "avlips", "test")[0]
    clip = read_clip(item.path, audio=False)
    whole = compute_rois(clip, None, landmarks, recipe)
    streamed = stream_rois(item.path, recipe, landmarks, None,
                           budget=WINDOW * clip.video[0].nbytes)
    _same(whole, streamed)
    assert not whole.fallback  # the detector found the face: the warp was compared


LIP_JOB = ["avhubert-av-tiny-random", "avhubert-a-tiny-random",
           "autoavsr-vsr-tiny-random:crop=autoavsr", "clip-tiny-random", "logmel"]


@pytest.mark.slow
def test_extract_of_a_long_clip_never_decodes_it_whole(tiny_profile, tmp_path, monkeypatch,
                                                      stacked):
    """Lip models (both crop recipes), AV-HuBERT's audio-only pass (it counts frames) and a
    windowed CLIP in one job: with clips longer than the budget, no decode holds more than a
    window, on the CPU path and the device path, and the stores equal those of whole decodes."""
    require(importlib.util.find_spec("cv2") is not None, "OpenCV is not installed")
    _streamed_stores_equal_whole(tiny_profile, tmp_path, monkeypatch, stacked, LIP_JOB)


def _streamed_stores_equal_whole(profile, tmp_path, monkeypatch, stacked, backbones) -> None:
    """Extract two AVLips test clips with ``backbones`` whole, then with a budget of
    ``WINDOW`` frames on the CPU and the device paths: no decode of more than a window of
    full-size frames, and every stored array equal to the whole decode's."""
    from avdd.datasets import load_items
    from avdd.features import extract as runner
    from avdd.features.featureset import FeatureSet

    job = [("avlips", "test")]
    whole = runner.extract_many(replace(profile, cache_dir=tmp_path / "whole"), backbones, job,
                                limit=2, progress=False)
    longest = max(stacked)
    item = load_items(profile, "avlips", "test")[0]
    frame = read_clip(item.path, audio=False).video[0].nbytes
    monkeypatch.setattr("avdd.media.STREAM_BYTES", WINDOW * frame)
    for name, kwargs in (("cpu", {}), ("device", {"device": "cpu", "workers": 0})):
        stacked.clear()
        streamed = runner.extract_many(replace(profile, cache_dir=tmp_path / name), backbones,
                                       job, limit=2, progress=False, **kwargs)
        assert all(r.failed == 0 and r.extracted == 2 for r in streamed), name
        assert max(stacked) <= WINDOW < longest, name
        for a, b in zip(whole, streamed, strict=True):
            fa, fb = FeatureSet.open(a.store), FeatureSet.open(b.store)
            assert list(fa.ids) == list(fb.ids)
            for i in range(len(fa.ids)):
                assert np.array_equal(fa[i], fb[i]), (name, a.backbone)


def _scorer(tmp_path, spec: str):
    """A :class:`avdd.score.Scorer` of ``spec`` with a probe fitted on random features."""
    from avdd.backbones import describe
    from avdd.features.featureset import FeatureSet
    from avdd.heads.probe import LinearProbe
    from avdd.heads.probe_io import save_probe
    from avdd.score import load_scorer

    probe = LinearProbe(max_epochs=2).fit(FeatureSet.from_arrays(
        [np.random.default_rng(i).standard_normal((8, describe(spec).dim)) for i in range(4)],
        [0, 1] * 2))
    return load_scorer(save_probe(probe, tmp_path / "p.safetensors", backbone=spec))


def test_score_of_a_long_clip_with_a_lip_model_never_decodes_it_whole(tmp_path, monkeypatch,
                                                                     stacked):
    from avdd.score import streams_rois

    require(importlib.util.find_spec("dlib") is not None, "dlib is not installed (.[dlib])")
    wav = (0.1 * np.sin(np.arange(FRAMES * 640) / 7)).astype(np.float32)
    path = write_clip(tmp_path / "long.mp4", _pattern(FRAMES, H, W), wav)
    _scores_equal_whole(path, _scorer(tmp_path, "avhubert-av-tiny-random"), monkeypatch,
                        stacked, streams_rois)


def _scores_equal_whole(path, scorer, monkeypatch, stacked, streams) -> None:
    """Score ``path`` whole (its 3 MB of frames fit the budget), then with a budget of
    ``WINDOW`` frames, where ``streams(backbone, path)`` says it is not read whole: no decode
    of more than a window, the probe's input features equal bit for bit (a spy), and so the
    scores."""
    from avdd.features.featureset import FeatureSet
    from avdd.score import score_video

    seen: list[np.ndarray] = []
    real = FeatureSet.from_arrays.__func__

    def spy(cls, arrays, *args, **kwargs):
        seen.extend(np.array(a) for a in arrays)
        return real(cls, arrays, *args, **kwargs)

    monkeypatch.setattr(FeatureSet, "from_arrays", classmethod(spy))
    assert not streams(scorer.backbone, path)
    whole, clip = score_video(path, scorer)
    assert clip is not None and max(stacked) == FRAMES
    monkeypatch.setattr("avdd.media.STREAM_BYTES", WINDOW * H * W * 3)
    assert streams(scorer.backbone, path)
    stacked.clear()
    streamed, clip = score_video(path, scorer)
    assert clip is None and max(stacked) <= WINDOW
    assert len(seen) == 2 and len(seen[0]) > 0 and np.array_equal(seen[0], seen[1])
    assert streamed.score == whole.score
    assert np.array_equal(streamed.frame_scores, whole.frame_scores)


def test_fsfm_reads_long_clips_in_windows_of_full_size_frames(tiny_profile, tmp_path,
                                                               monkeypatch, stacked):
    """FSFM crops each frame by its own box: it reads windows of whole batches of frames at
    full size, at most STREAM_BYTES of them, each with its own rows of the annotation, and
    its features equal those of the whole decode it shares with mouth-pixels."""
    from avdd.backbones import get_backbone
    from avdd.datasets import load_items
    from avdd.features.extract import extract_many
    from avdd.features.featureset import FeatureSet

    job, spec = [("avlips", "test")], "fsfm-tiny-random"
    step = get_backbone(spec).stream_frames
    whole = extract_many(replace(tiny_profile, cache_dir=tmp_path / "whole"),
                         [spec, "mouth-pixels"], job, limit=2, progress=False)[0]
    longest = max(stacked)
    frame = read_clip(load_items(tiny_profile, "avlips", "test")[0].path,
                      audio=False).video[0].nbytes
    monkeypatch.setattr("avdd.media.STREAM_BYTES", (step + 1) * frame)
    stacked.clear()
    streamed = extract_many(replace(tiny_profile, cache_dir=tmp_path / "windows"), [spec], job,
                            limit=2, progress=False)[0]
    assert streamed.failed == 0 and max(stacked) <= step + 1 < longest
    fa, fb = FeatureSet.open(whole.store), FeatureSet.open(streamed.store)
    assert list(fa.ids) == list(fb.ids)
    assert all(np.array_equal(fa[i], fb[i]) for i in range(len(fa.ids)))


def _padded_crops(video: np.ndarray, centres: np.ndarray, s: int) -> np.ndarray:
    """mouth-pixels' crops as the code before session 7 cut them: from a copy of the whole
    video edge-padded by the crop side ``s``, ``(T, s, s, 3)`` uint8."""
    t, h, w, _ = video.shape
    padded = np.pad(video, ((0, 0), (s, s), (s, s), (0, 0)), mode="edge")
    x0 = np.clip(np.round(centres[:, 0] - s / 2).astype(int) + s, 0, w + s)
    y0 = np.clip(np.round(centres[:, 1] - s / 2).astype(int) + s, 0, h + s)
    return np.stack([padded[i, y0[i]:y0[i] + s, x0[i]:x0[i] + s] for i in range(t)])


def _mouth_regions(n: int, h: int, w: int) -> dict[str, Roi | None]:
    """Regions of every kind mouth-pixels reads: none (the centre box), a mouth without a
    face box (35 % of the width), the synthetic annotation (one row short), and mouths that
    wander past every edge of the frame with a face growing wider than it (crops clamped;
    each window's median width differs from the clip's)."""
    t = np.arange(n + 2, dtype=np.float32)
    wild = np.stack([np.cos(t) * w * 0.9 + w / 2, np.sin(t / 2) * h * 0.9 + h / 2], axis=1)
    grow = 0.3 * w + 1.5 * w * t / n
    wide = np.stack([-20 + 0 * t, 0 * t, grow - 20, h + 0 * t], axis=1)
    return {"none": None, "no face box": Roi(mouth_centre=_annotation(n).mouth_centre),
            "annotation": _annotation(n), "past the edges": Roi(mouth_centre=wild,
                                                                face_box=wide)}


@pytest.mark.parametrize("kind", ["none", "no face box", "annotation", "past the edges"])
def test_mouth_pixels_windows_equal_the_whole_clip(kind):
    """mouth-pixels' crops by per-frame clamping equal those of the edge-padded video, and
    its window reader, fed windows of 1, 7 or all frames, gives the whole clip's features bit
    for bit; it counts the clip's frames only when a face box needs it."""
    from avdd.backbones import get_backbone
    from avdd.media import Clip
    from avdd.roi.regions import mouth_crops, mouth_side, per_frame

    n = 40
    video = _pattern(n, H, W)
    roi = _mouth_regions(n, H, W)[kind]
    b = get_backbone("mouth-pixels")
    g = b.cfg.grid
    k = mouth_side(roi, n, W, grid=g, rel_size=b.cfg.rel_size)
    centres = (np.tile([[W / 2, 0.7 * H]], (n, 1)) if roi is None
               else per_frame(roi.mouth_centre, n))
    old = _padded_crops(video, centres, k * g).reshape(n, g, k, g, k, 3).mean(
        axis=(2, 4), dtype=np.float32) / 255.0
    assert np.array_equal(mouth_crops(video, roi), old)
    whole = b(Clip(video=video, audio=np.zeros(0, np.float32)), roi)
    for window in (1, WINDOW, n):
        counted: list[int] = []
        reader = b.window_reader(roi, lambda: counted.append(n) or n)
        for start in range(0, n, window):
            reader.add(Clip(video=video[start:start + window], audio=np.zeros(0, np.float32)))
        assert np.array_equal(reader.features(), whole), window
        assert len(counted) == (1 if kind in ("annotation", "past the edges") else 0)


MOUTH_JOB = ["mouth-pixels", "logmel", "clip-tiny-random", "avhubert-av-tiny-random"]


@pytest.mark.parametrize("job,annotated", [(MOUTH_JOB, True), (["mouth-pixels"], True),
                                           (["mouth-pixels", "logmel"], False)])
def test_extract_with_mouth_pixels_of_a_long_clip_never_decodes_it_whole(
        tiny_profile, tmp_path, monkeypatch, stacked, job, annotated):
    """mouth-pixels alone, or beside an audio model, a windowed CLIP and a lip model, with and
    without annotations (the centre box): with clips longer than the budget, no decode holds
    more than a window on the CPU path or the device path, and the stores equal those of the
    whole decodes (mouth-pixels' own path for clips that fit)."""
    from avdd.datasets import load_items
    from avdd.features import extract as runner

    items = load_items(tiny_profile, "avlips", "test")
    assert all(i.annotation.get("face_box") for i in items)  # the crop side: their boxes
    if not annotated:
        monkeypatch.setattr(runner, "load_items", lambda *a: [
            replace(i, annotation=None) for i in load_items(*a)])
    _streamed_stores_equal_whole(tiny_profile, tmp_path, monkeypatch, stacked, job)


def test_score_with_mouth_pixels_of_a_long_clip_never_decodes_it_whole(tmp_path, monkeypatch,
                                                                      stacked):
    """``avdd score`` (no annotations: the centre box): a clip that fits is decoded whole as
    before; a long one is read in windows, with the same features, bit for bit."""
    from avdd.score import reads_windows

    path = write_clip(tmp_path / "long.mp4", _pattern(FRAMES, H, W), None)
    _scores_equal_whole(path, _scorer(tmp_path, "mouth-pixels"), monkeypatch, stacked,
                        reads_windows)
