"""Score any video with a saved probe: video score, P(fake) and the time ranges that fire.

    avdd score clip.mp4 other.mp4 --probe wav2vec2-av1m.safetensors --json out.json --plot p.png

The probe file names its backbone (``metadata["backbone"]``, a spec string); the backbone is
built from it, the clip decoded with :func:`avdd.media.read_clip` (25 fps video, 16 kHz audio,
only the streams the backbone needs; frame-wise video models, and on a long clip those that
read long clips in windows (mouth-pixels), :func:`reads_windows`, get it in windows from
:func:`avdd.media.stream_video`, and lip models of a long clip read a mouth ROI made a window
at a time, :func:`streams_rois`, so memory does not grow with the clip),
features extracted and the probe applied:

- video score s = b + logsumexp_t(w.x_t/||x_t||), P(fake) = σ(2 s) (the paper's convention);
- frame score z_t = w.x_t/||x_t|| + b at the backbone's rate (25 Hz; 12.5 Hz for VideoMAE), and
  the ranges where σ(2 z_t) > threshold, in seconds (frame t covers [t/fps, (t+1)/fps)).

Scoring many videos records each failure (with its message) and goes on.

Why one module: it is the command's whole path for one video (read by the backbone's rule:
whole, in windows or by streamed ROIs; features; the probe; the JSON / CSV / plot written), and
every step raises the same :class:`ScoreError` naming the file, which the batch records.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from avdd.heads.scoring import probability
from avdd.media import Clip, MediaError, MissingStream, read_clip, stream_video

__all__ = ["Scorer", "VideoScore", "fake_ranges", "load_scorer", "reads_windows", "score_video",
           "score_videos", "streams_rois"]


class ScoreError(ValueError):
    """A video or probe cannot be scored; the message names the file and the fix."""


@dataclass
class VideoScore:
    """The result for one video.

    Attributes:
        path: the video file.
        score: video score s (logit scale; > 0 means P(fake) > 0.5).
        probability: P(fake) = σ(2 s).
        ranges: ``[(start_s, end_s), ...]`` where the frame probability exceeds the threshold.
        times: ``(T,)`` seconds, start time of each feature frame.
        frame_scores: ``(T,)`` per-frame logits z_t (incl. bias).
        fps: feature frame rate (Hz). threshold: the frame-probability threshold used.
        peak_time: time (s) of the highest frame score.
        fake: the decision at the probe's stored threshold (its operating point, chosen on
            its validation set) or, for a probe without one, P(fake) > 0.5.
        calibrated_probability: P(fake) through the probe's fitted temperature (NaN when the
            probe has none).
        error: the failure message when the video could not be scored (other fields empty).
    """

    path: str
    score: float = math.nan
    probability: float = math.nan
    ranges: list[tuple[float, float]] = field(default_factory=list)
    times: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    frame_scores: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    fps: float = math.nan
    threshold: float = 0.5
    peak_time: float = math.nan
    fake: bool | None = None
    calibrated_probability: float = math.nan
    error: str | None = None

    def to_dict(self, *, frames: bool = True) -> dict[str, Any]:
        """JSON-able fields (``frame_scores``/``times`` included when ``frames``)."""
        d = {"path": self.path, "score": _num(self.score), "probability": _num(self.probability),
             "fake": None if self.error else bool(self.fake),
             "calibrated_probability": _num(self.calibrated_probability),
             "ranges": [[round(a, 3), round(b, 3)] for a, b in self.ranges],
             "fps": _num(self.fps), "threshold": self.threshold,
             "peak_time": _num(self.peak_time), "error": self.error}
        if frames:
            d["frame_scores"] = [round(float(z), 5) for z in self.frame_scores]
        return d


def _num(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


@dataclass
class Scorer:
    """A loaded probe and the backbone its metadata names."""

    probe: Any  # avdd.heads.probe.LinearProbe
    backbone: Any  # avdd.backbones.Backbone
    spec: str
    metadata: dict[str, Any]
    probe_path: Path
    #: avdd.analysis.operating_points.OperatingPoint stored with the probe (``avdd fit``),
    #: or None (the paper's P(fake) > 0.5).
    operating_point: Any = None


def load_scorer(probe_path: str | Path) -> Scorer:
    """Read a probe file and build its backbone.

    Raises:
        FileNotFoundError: no probe file. ValueError: not an avdd probe, no ``backbone`` in its
            metadata, or its dimension differs from the backbone's.
        avdd.backbones.hub.WeightsNotFound: the backbone's pretrained weights are not here.
    """
    from avdd.backbones import describe, get_backbone
    from avdd.heads.probe_io import load_probe

    probe_path = Path(probe_path)
    if not probe_path.is_file():
        raise FileNotFoundError(f"probe file {probe_path} not found: train one (study."
                                "trained_probe) or import the official release with "
                                "`avdd import-probe CKPT OUT --backbone SPEC`")
    probe, meta = load_probe(probe_path)
    spec = meta.get("backbone")
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"{probe_path}: the probe's metadata names no backbone; re-save it "
                         "with save_probe(..., backbone=SPEC) or import it with --backbone SPEC")
    # Checked on the description first: a wrong spec fails before a large model is built.
    dim = describe(spec).dim
    if dim != probe.n_features_in_:
        raise ValueError(f"{probe_path}: probe expects {probe.n_features_in_}-d features but "
                         f"backbone {spec!r} gives {dim}-d; the backbone spec is wrong")
    backbone = get_backbone(spec)
    if backbone.uses_mouth_roi and backbone.needs_video:
        from avdd.roi.mouth import check_detector

        try:  # once, before any video: without a detector every video would fail the same way
            check_detector(backbone.landmarks, backbone.roi_recipe)
        except ImportError as e:
            raise ValueError(f"{probe_path}: {spec} reads a mouth crop located by face "
                             f"landmarks on real videos, and {e}") from e
    from avdd.analysis.operating_points import OperatingPoint

    op = meta.get("operating_point")
    return Scorer(probe, backbone, spec, meta, probe_path,
                  OperatingPoint.from_dict(op) if op else None)


def fake_ranges(frame_scores: np.ndarray, fps: float, threshold: float = 0.5
                ) -> list[tuple[float, float]]:
    """Maximal runs of frames with σ(2 z_t) > ``threshold``, as ``(start_s, end_s)``;
    frame t spans [t/fps, (t+1)/fps)."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold {threshold} must be a probability in (0, 1)")
    z_thr = 0.5 * math.log(threshold / (1.0 - threshold))  # σ(2 z) > p  ⇔  z > logit(p)/2
    above = np.concatenate([[False], np.asarray(frame_scores) > z_thr, [False]])
    edges = np.flatnonzero(np.diff(above.astype(np.int8)))
    return [(float(a / fps), float(b / fps)) for a, b in zip(edges[::2], edges[1::2])]


@contextlib.contextmanager
def _media_errors(path: Path, scorer: Scorer):
    """MediaError → ScoreError naming what is wrong: the file, or a stream the model needs."""
    bb = scorer.backbone
    try:
        yield
    except MediaError as e:
        if not isinstance(e, MissingStream):
            raise ScoreError(str(e)) from e  # the file itself is the problem: its message says
        need = {"audio": "an audio stream", "visual": "a video stream"}.get(
            bb.modality, "both audio and video streams")
        article = "an" if bb.modality[0] in "aeiou" else "a"
        raise ScoreError(f"cannot score {path} with {scorer.spec} ({article} {bb.modality} "
                         f"model, needs {need}): {e}") from e


def _decode(path: Path, scorer: Scorer) -> Clip:
    bb = scorer.backbone
    video, audio = bb.decodes
    with _media_errors(path, scorer):
        return read_clip(path, video=video, audio=audio, resize=bb.frame_resize if video else None)


def reads_windows(backbone: Any, path: Path | None = None) -> bool:
    """Whether ``avdd score`` feeds this backbone the clip at ``path`` in windows
    (:meth:`~avdd.backbones.Backbone.reads_windows`): every clip of a video-only model whose
    :attr:`~avdd.backbones.Backbone.stream_frames` is set, and a long clip
    (:func:`avdd.roi.stream.is_long`)
    of one that :attr:`~avdd.backbones.Backbone.streams_long_clips` (``path`` None: only
    the former). Memory is then bounded by a window, whatever the clip's length."""
    if backbone.reads_windows(long=False):
        return True
    from avdd.roi.stream import is_long

    return path is not None and backbone.reads_windows(long=True) and is_long(path)


def _short(path: Path, frames: int, fps: float, scorer: Scorer) -> ScoreError:
    return ScoreError(f"{path}: {frames} video frame(s) at {fps:g} fps, but {scorer.spec} needs "
                      f"at least {scorer.backbone.min_frames} (its temporal context): too "
                      "short to score; use a longer clip")


def _windowed_features(path: Path, scorer: Scorer) -> np.ndarray:
    """Features of a clip decoded in windows (:func:`avdd.media.stream_video`) and fed to the
    backbone's :meth:`~avdd.backbones.Backbone.window_reader`: those of the whole clip."""
    import functools

    from avdd.features.threads import one_thread
    from avdd.media import count_frames, read_header

    bb = scorer.backbone
    with _media_errors(path, scorer):
        size = None if bb.frame_resize is not None else read_header(path).frame_bytes()
        reader = bb.window_reader(None, functools.cache(lambda: count_frames(path)))
        for piece in stream_video(path, window=bb.stream_window(25.0, size),
                                  resize=bb.frame_resize, min_last=bb.min_frames):
            if piece.num_frames < bb.min_frames:  # only a whole clip can be this short
                raise _short(path, piece.num_frames, piece.fps, scorer)
            with one_thread():  # the kernels of extraction, as in _features
                reader.add(piece)
        with one_thread():
            return _checked(reader.features(), path, scorer)


def streams_rois(backbone: Any, path: Path) -> bool:
    """Whether ``avdd score`` reads this clip for this backbone without decoding it whole: a
    lip model (its mouth ROI is made a window at a time, :func:`avdd.roi.stream.stream_rois`)
    or a model that only counts the video's frames, on a clip whose full-size RGB frames
    exceed :data:`avdd.media.STREAM_BYTES`."""
    if not (backbone.decodes[0] and (backbone.uses_mouth_roi or not backbone.needs_video)):
        return False
    from avdd.roi.stream import is_long

    return is_long(path)


def _streamed_features(path: Path, scorer: Scorer) -> np.ndarray:
    """Features of a long clip read by a lip model (:func:`streams_rois`): the mouth ROI a
    window at a time, the audio alone, and a frameless clip (its frame count and audio) for
    the model: the same features as from the whole clip."""
    from avdd.media import count_frames, frameless_clip
    from avdd.roi.regions import Roi
    from avdd.roi.stream import stream_rois

    bb, roi = scorer.backbone, None
    with _media_errors(path, scorer):
        audio = read_clip(path, video=False, audio=True).audio if bb.decodes[1] else None
        if bb.uses_mouth_roi and bb.needs_video:
            roi = Roi(mouth=stream_rois(path, bb.roi_recipe, bb.landmarks, None))
            frames = len(roi.mouth)
        else:
            frames = count_frames(path)
        clip = frameless_clip(path, frames, audio=audio)
    if clip.num_frames < bb.min_frames:
        raise _short(path, clip.num_frames, clip.fps, scorer)
    return _features(clip, scorer, roi)


def _features(clip: Clip, scorer: Scorer, roi: Any = None) -> np.ndarray:
    from avdd.roi.regions import Roi

    bb = scorer.backbone
    if roi is None and bb.uses_mouth_roi and bb.needs_video:
        # Lip models read a mouth ROI; without dataset annotations it comes from landmarks.
        from avdd.roi.mouth import compute_rois

        roi = Roi(mouth=compute_rois(clip, None, bb.landmarks, bb.roi_recipe))
    from avdd.features.threads import one_thread

    with one_thread():  # the kernels of extraction, so a score matches the stored features
        return _checked(bb(clip, roi), clip.path, scorer)


def _checked(feats: Any, path: Path | None, scorer: Scorer) -> np.ndarray:
    feats = np.asarray(feats, np.float32)
    dim = scorer.backbone.dim
    if feats.ndim != 2 or feats.shape[1] != dim or len(feats) == 0:
        raise ScoreError(f"{path}: {scorer.spec} returned features {feats.shape}, "
                         f"expected (T>0, {dim}); the clip may be too short")
    return feats


def score_video(path: str | Path, scorer: Scorer, *, threshold: float = 0.5,
                clip: Clip | None = None) -> tuple[VideoScore, Clip]:
    """Score one video (raises :class:`ScoreError`/MediaError on failure).

    Returns:
        ``(result, clip)``; the decoded clip is returned for plotting, or None when the
        backbone read it in windows (:func:`reads_windows`, :func:`streams_rois`: it was
        never whole in memory; :func:`plot_result` then decodes the frames it shows).
    """
    from avdd.features.featureset import FeatureSet

    path = Path(path)
    if clip is None and reads_windows(scorer.backbone, path):
        feats = _windowed_features(path, scorer)
    elif clip is None and streams_rois(scorer.backbone, path):
        feats = _streamed_features(path, scorer)
    else:
        clip = clip if clip is not None else _decode(path, scorer)
        if scorer.backbone.needs_video and clip.num_frames < scorer.backbone.min_frames:
            raise _short(path, clip.num_frames, clip.fps, scorer)
        feats = _features(clip, scorer)
    # Through a FeatureSet so that features are cast to fp16 exactly as in the stores the
    # probe was trained and evaluated on.
    fs = FeatureSet.from_arrays([feats], fps=scorer.backbone.fps)
    s = float(scorer.probe.decision_function(fs)[0])
    z = np.asarray(scorer.probe.frame_logits(fs)[0], np.float64)
    fps = float(scorer.backbone.fps)
    times = np.arange(len(z)) / fps
    op = scorer.operating_point
    return VideoScore(path=str(path), score=s, probability=probability(s),
                      ranges=fake_ranges(z, fps, threshold), times=times, frame_scores=z,
                      fps=fps, threshold=threshold, peak_time=float(times[int(np.argmax(z))]),
                      fake=bool(s >= op.threshold) if op else bool(s > 0),
                      calibrated_probability=op.probability(s) if op and op.calibrated
                      else math.nan), clip


def score_videos(paths: list[str | Path], scorer: Scorer, *, threshold: float = 0.5,
                 on_result: Callable[[int, VideoScore, Clip | None], None] | None = None
                 ) -> list[VideoScore]:
    """Score many videos; a video that fails gets a result with ``error`` set, the run goes on.

    Args:
        on_result: optional ``(index, result, clip or None)`` callback after each video (to
            print progress or plot while the decoded clip is still in memory; None when the
            video failed or was read in windows).
    """
    out = []
    for i, p in enumerate(paths):
        clip = None
        try:
            r, clip = score_video(p, scorer, threshold=threshold)
        except (ValueError, OSError, RuntimeError, ImportError, MemoryError) as e:
            # MediaError/ScoreError are ValueErrors; a missing optional package or a clip too
            # large for memory (media.OutOfMemory says how large) must not end the batch either
            r = VideoScore(path=str(p), threshold=threshold, error=f"{type(e).__name__}: {e}")
        out.append(r)
        if on_result is not None:
            on_result(i, r, clip)
    return out


def plot_result(result: VideoScore, clip: Clip | None, scorer: Scorer):
    """The :func:`avdd.report.plots.plot_timeline` figure of one scored video: log-mel
    spectrogram for audio models, frames 0.5 s before, at and after the peak for the others.
    ``clip`` None (a video read in windows): those three frames are decoded from the file
    again, one frame in memory at a time."""
    from avdd.report.plots import plot_timeline

    ts = [result.peak_time - 0.5, result.peak_time, result.peak_time + 0.5]
    audio = frames = None
    if clip is None:
        frames = _frames_at(Path(result.path), ts) if scorer.backbone.needs_video else None
    else:
        audio = clip.audio if scorer.backbone.modality == "audio" and clip.audio.size else None
        if scorer.backbone.needs_video and clip.num_frames:
            last = clip.num_frames - 1
            frames = [(min(max(t, 0.0), last / clip.fps),
                       clip.video[min(max(round(t * clip.fps), 0), last)]) for t in ts]
    title = (f"{Path(result.path).name}: score {result.score:.2f}, "
             f"P(fake) {result.probability:.2f} ({scorer.spec})")
    return plot_timeline(result.times, result.frame_scores, threshold=result.threshold,
                         segments=result.ranges, spectrogram_audio=audio, frames=frames,
                         title=title)


def _frames_at(path: Path, times: list[float], fps: float = 25.0
               ) -> list[tuple[float, np.ndarray]]:
    """``(time, frame)`` at each of ``times`` (clamped to the clip) as :func:`plot_result`
    picks them from a whole clip, decoding one frame at a time."""
    want = [max(round(t * fps), 0) for t in times]
    got: dict[int, np.ndarray] = {}
    n, frame = 0, None
    for piece in stream_video(path, window=1, fps=fps):
        frame = piece.video[0]
        if n in want:
            got[n] = frame
        n += 1
    return [(min(max(t, 0.0), (n - 1) / fps), got.get(i, frame)) for t, i in zip(times, want)]


def write_json(path: str | Path, results: list[VideoScore], scorer: Scorer) -> Path:
    """``{"probe", "backbone", "fps", "videos": [VideoScore.to_dict(), ...]}`` as JSON."""
    import json

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    op = scorer.operating_point
    doc = {"probe": str(scorer.probe_path), "backbone": scorer.spec,
           "fps": float(scorer.backbone.fps),
           "operating_point": op.to_dict() if op else None,
           "videos": [r.to_dict() for r in results]}
    path.write_text(json.dumps(doc, indent=1))
    return path


def write_csv(path: str | Path, results: list[VideoScore]) -> Path:
    """One row per video: path, score, probability, fake, ranges (``a-b;c-d`` seconds),
    peak_time, error."""
    import pandas as pd

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for r in results:
        d = r.to_dict(frames=False)
        d["ranges"] = ";".join(f"{a:.3f}-{b:.3f}" for a, b in r.ranges)
        rows.append(d)
    pd.DataFrame(rows).to_csv(path, index=False)
    return path
