"""Fig. 3: one video's temporal explanation, the frame scores of a probe over time with the
ground-truth fake segments, and the media shown under them (the audio of audio models, the
frames around the peak of visual ones: :func:`timeline_media`). Compute only: the page plots
with :func:`avdd.report.plots.plot_timeline`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import logsumexp

from avdd.analysis.probes import trained_probe
from avdd.analysis.temporal import feature_offsets, frame_index, frame_labels
from avdd.analysis.video_info import video_info
from avdd.backbones import describe
from avdd.backbones.layers.audio import silence_frames
from avdd.config import Profile
from avdd.features.prepare import feature_set
from avdd.heads.scoring import probability


@dataclass(frozen=True)
class Timeline:
    """One test video's frame scores under one probe (what Fig. 3 draws).

    Attributes:
        backbone, modality: the representation.
        video_id, path: the video (``path`` is the media file).
        fps: frame rate of the scores.
        times: ``(T,)`` start time of each frame on the video's clock (s; a silence-trimmed
            store's first frame starts after the trimmed frames).
        scores: ``(T,)`` frame logits (incl. bias).
        probability: ``(T,)`` ``sigmoid(2 * score)``, the probe's P(fake) of a one-frame video.
        labels: ``(T,)`` ground-truth labels of these frames (:func:`frame_labels`).
        fake_segments: ``[(start_s, end_s), ...]``.
        video_score: the probe's video score (logsumexp of ``scores``).
        peak: index (into ``scores``) of the highest-scoring frame.
    """

    backbone: str
    modality: str
    video_id: str
    path: Path
    fps: float
    times: np.ndarray
    scores: np.ndarray
    probability: np.ndarray
    labels: np.ndarray
    fake_segments: list[tuple[float, float]]
    video_score: float
    peak: int

    @property
    def peak_time(self) -> float:
        """Start of the peak frame (s)."""
        return float(self.times[self.peak])


def timeline(profile: Profile, backbone: str, *, train: str = "av1m", test: str = "av1m",
             seed: int = 43, video_id: str | None = None) -> Timeline:
    """Frame scores of the top-scoring fake test video (or of ``video_id``).

    "Top-scoring" is the highest video score among the ``test`` fakes that have fake segments
    (so that the figure can shade them); the probe is :func:`avdd.analysis.linear_probing.trained_probe`'s.
    """
    from avdd.datasets import load_items

    probe = trained_probe(profile, backbone, train, seed=seed)
    fs = feature_set(profile, backbone, test, "test")
    if video_id is None:
        cand = [i for i in range(len(fs))
                if fs.labels[i] == 1 and fs.meta(i).get("fake_segments")]
        if not cand:
            raise ValueError(f"{test}/test has no fake video with fake segments in the "
                             f"{backbone} store; Fig. 3 needs AV1M-like annotations")
        sub = fs.subset(np.asarray(cand))
        i = cand[int(np.argmax(probe.decision_function(sub)))]
    else:
        where = np.flatnonzero(fs.ids == video_id)
        if not where.size:
            raise ValueError(f"{video_id!r} is not in the {backbone} store of {test}/test")
        i = int(where[0])
    z = probe.frame_logits(fs.subset(np.array([i])))[0].astype(np.float64)
    vid = str(fs.ids[i])
    segs = [tuple(map(float, s)) for s in fs.meta(i).get("fake_segments", [])]
    paths = {it.video_id: it.path for it in load_items(profile, test, "test")}
    off = 0  # a silence-trimmed store starts `off` frames into the video: keep its clock
    if describe(backbone).config.get("trim_silence"):
        silence = video_info(profile, test, "test").loc[vid, "measured_silence_s"]
        off = int(feature_offsets(backbone, np.array([silence]))[0])
    return Timeline(backbone=backbone, modality=describe(backbone).modality,
                    video_id=vid, path=Path(paths[vid]), fps=fs.fps,
                    times=(off + np.arange(len(z))) / fs.fps, scores=z,
                    probability=probability(z),
                    labels=frame_labels(segs, off + len(z), fs.fps)[off:], fake_segments=segs,
                    video_score=float(logsumexp(z)), peak=int(np.argmax(z)))


def frames_around(path: str | Path, time_s: float, *,
                  offsets_s: Sequence[float] = (-0.2, 0.0, 0.2),
                  fps: float = 25.0) -> list[tuple[float, np.ndarray]]:
    """Video frames at ``time_s + offset`` for each offset (clipped to the clip), e.g. before,
    at and after a score peak: ``[(time_s, (H, W, 3) uint8), ...]``."""
    from avdd.media import read_clip

    video = read_clip(path, fps=fps, audio=False).video
    out = []
    for off in offsets_s:
        t = min(len(video) - 1, max(0, frame_index(time_s + off, fps)))
        out.append((t / fps, video[t]))
    return out


@dataclass(frozen=True)
class TimelineMedia:
    """What Fig. 3 shows under one timeline's traces (:func:`avdd.report.plots.plot_timeline`'s
    ``spectrogram_audio`` and ``frames``).

    Attributes:
        audio: ``(N,)`` float32 mono audio at 16 kHz for audio and audio-visual models, else
            None.
        frames: ``[(time_s, (H, W, 3) uint8), ...]`` around the peak for visual and
            audio-visual models (:func:`frames_around`), else None.
    """

    audio: np.ndarray | None
    frames: list[tuple[float, np.ndarray]] | None


def timeline_media(tl: Timeline, *,
                   offsets_s: Sequence[float] = (-0.2, 0.0, 0.2)) -> TimelineMedia:
    """Decode what Fig. 3 draws under ``tl``: its video's audio if the model hears, the frames
    at ``tl.peak_time + offset`` if it sees."""
    from avdd.media import read_clip

    hears = tl.modality in ("audio", "audio-visual")
    sees = tl.modality in ("visual", "audio-visual")
    return TimelineMedia(
        audio=read_clip(tl.path, video=False).audio if hears else None,
        frames=frames_around(tl.path, tl.peak_time, offsets_s=offsets_s) if sees else None)


def peak_summary(tl: Timeline, leading_silence_s: float) -> dict[str, object]:
    """Fig. 3's table row of one timeline: ``video``, ``video_score`` and its ``probability``
    σ(2s), ``peak_s`` (start of the top frame), whether that frame is in a fake segment
    (``peak_in_fake``) or in the video's leading silence of ``leading_silence_s`` seconds
    (``peak_in_silence``, the frames AVH-Align's trimming drops), and ``leading_silence_s``."""
    return {"video": tl.video_id, "video_score": tl.video_score,
            "probability": float(probability(tl.video_score)), "peak_s": tl.peak_time,
            "peak_in_fake": bool(tl.labels[tl.peak]),
            "peak_in_silence": bool(tl.peak < silence_frames(leading_silence_s, tl.fps)),
            "leading_silence_s": float(leading_silence_s)}
