"""Fig. 3: one video's temporal explanation, the frame scores of a probe over time with the
ground-truth fake segments, and the media shown under them (the audio of audio models, a few
frames of visual ones: :func:`timeline_media`). Compute only: the page plots with
:func:`avdd.report.plots.plot_timeline`.

Which video: the paper's Fig. 3 shows hand-picked AV1M test videos, one per representation,
with hand-picked spectrogram windows (audio) or fake segments (visual), :data:`PAPER_FIG3`;
:func:`timeline` uses a pick when its video is in the test store (the paper profile), else
the top-scoring fake (the demo, whose synthetic videos are not the paper's). Which frames:
the paper's rule around one fake segment, :func:`segment_frames`.
"""

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
from avdd.backbones.base import parse_spec
from avdd.backbones.layers.audio import silence_frames
from avdd.config import Profile
from avdd.features.prepare import feature_set
from avdd.heads.scoring import probability


@dataclass(frozen=True)
class Fig3Pick:
    """One hand-picked panel of the paper's Fig. 3 (github ``danoneata/veridiq``,
    ``scripts/show_results_temporal_explanations.py``, ``make_table_examples_a`` and ``_v``;
    read, not copied).

    Attributes:
        backbone: the avdd backbone name it applies to (a spec's name before ``:``; the
            pretrained family, not its ``-random`` variants).
        video_id: the AV1M test video (a path of the official ``val`` folder, as in the
            paper's test list).
        mel_windows: audio panels: the ``(start_s, end_s)`` windows of the spectrogram shown.
        segment: visual panels: the index of the fake segment whose frames are shown
            (:func:`segment_frames`).
        in_figure: False for a pick the paper's script defines but does not plot.
    """

    backbone: str
    video_id: str
    mel_windows: tuple[tuple[float, float], ...] = ()
    segment: int | None = None
    in_figure: bool = True


#: The paper's Fig. 3 picks (published scores, ssr-dfd's figure: AV-H (A) 13.53, W2V2 16.54,
#: AV-H (V) 9.54, CLIP 7.17). All five videos are in the shipped AV1M test list.
PAPER_FIG3: tuple[Fig3Pick, ...] = (
    Fig3Pick("avhubert-a", "id05256/BVlAlH9JHBw/00073/fake_video_fake_audio.mp4",
             mel_windows=((0.0, 0.25), (1.3, 1.8))),
    Fig3Pick("wav2vec2", "id03854/vWv5GCtZMqE/00146/fake_video_fake_audio.mp4",
             mel_windows=((0.0, 0.75),)),
    Fig3Pick("avhubert-v", "id01096/RPR5JA7_PVM/00088/fake_video_fake_audio.mp4", segment=0),
    Fig3Pick("clip", "id08993/NMtZSqGb4DQ/00431/fake_video_fake_audio.mp4", segment=1),
    # defined upstream, but VideoMAE is not among the representations the script loads
    Fig3Pick("videomae", "id07558/c7LpfmgkjXw/00044/fake_video_fake_audio.mp4", segment=0,
             in_figure=False),
)


def paper_pick(backbone: str, picks: Sequence[Fig3Pick] = PAPER_FIG3) -> Fig3Pick | None:
    """The pick of ``picks`` for a backbone spec (matched on its name), or None."""
    name = parse_spec(backbone)[0]
    return next((p for p in picks if p.backbone == name), None)


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
        offset: index of the video frame (at ``fps``) the first score belongs to (a
            silence-trimmed store starts late; else 0).
        pick: the paper's pick this video is (:data:`PAPER_FIG3`), or None (top-scoring, or
            a video asked for by id).
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
    offset: int = 0
    pick: Fig3Pick | None = None

    @property
    def peak_time(self) -> float:
        """Start of the peak frame (s)."""
        return float(self.times[self.peak])


def timeline(profile: Profile, backbone: str, *, train: str = "av1m", test: str = "av1m",
             seed: int = 43, video_id: str | None = None,
             picks: Sequence[Fig3Pick] = PAPER_FIG3) -> Timeline:
    """Frame scores of one fake test video under the ``train``-trained probe
    (:func:`avdd.analysis.probes.trained_probe`).

    The video: ``video_id`` when given; else the pick of ``picks`` for this backbone when
    ``test`` is AV1M and the pick's video is in the test store (the paper profile); else the
    top-scoring one, the highest video score among the ``test`` fakes that have fake segments
    (so that the figure can shade them). ``picks=()`` always takes the top-scoring video.
    """
    from avdd.datasets import load_items

    probe = trained_probe(profile, backbone, train, seed=seed)
    fs = feature_set(profile, backbone, test, "test")
    pick = paper_pick(backbone, picks) if video_id is None and test == "av1m" else None
    if pick is not None and pick.video_id in set(fs.ids.tolist()):
        video_id = pick.video_id
    else:
        pick = None
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
    fps = fs.video_fps(i)  # a natively decoded video may have its own rate
    return Timeline(backbone=backbone, modality=describe(backbone).modality,
                    video_id=vid, path=Path(paths[vid]), fps=fps,
                    times=(off + np.arange(len(z))) / fps, scores=z,
                    probability=probability(z),
                    labels=frame_labels(segs, off + len(z), fps)[off:], fake_segments=segs,
                    video_score=float(logsumexp(z)), peak=int(np.argmax(z)), offset=off,
                    pick=pick)


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


def segment_frames(probability: np.ndarray, segment: Sequence[float], fps: float, *,
                   offset: int = 0) -> tuple[int, int, int] | None:
    """The paper's three frames of one fake segment: the frame before it, its most probable
    frame, and one after it (``idx_l, idx_c, idx_r`` of the paper's code).

    Args:
        probability: ``(T,)`` per-frame P(fake) (or scores: only their order matters).
        segment: ``(start_s, end_s)``.
        fps: rate of ``probability``; entry 0 is frame ``offset`` of the video at that rate.
    Returns:
        Indices into ``probability``: with ``s, e`` the frames of start and end
        (:func:`avdd.analysis.temporal.frame_index`, less ``offset``), ``(s − 1, s +
        argmax(probability[s:e]), e + 1)``, as the paper's code (which skips frame ``e``);
        None when ``[s, e)`` holds no entry (the paper's code skips such a segment). The
        outer indices may fall outside the video: the caller skips those frames, as the
        paper's code does.
    """
    start = frame_index(float(segment[0]), fps) - offset
    end = frame_index(float(segment[1]), fps) - offset
    lo, hi = max(start, 0), min(end, len(probability))
    if lo >= hi:
        return None
    return start - 1, lo + int(np.argmax(np.asarray(probability)[lo:hi])), end + 1


def shown_segment(tl: Timeline) -> int | None:
    """The fake segment whose frames Fig. 3 shows: the paper's pick's, else the segment that
    holds the highest probability (None when no segment holds a frame)."""
    if tl.pick is not None and tl.pick.segment is not None:
        if tl.pick.segment >= len(tl.fake_segments):
            raise ValueError(f"{tl.video_id}: the paper shows fake segment #{tl.pick.segment} "
                             f"but the metadata has {len(tl.fake_segments)}; is this AV1M's "
                             "official val_metadata.json?")
        return tl.pick.segment
    best, top = None, -np.inf
    for k, seg in enumerate(tl.fake_segments):
        trio = segment_frames(tl.probability, seg, tl.fps, offset=tl.offset)
        if trio is not None and tl.probability[trio[1]] > top:
            best, top = k, float(tl.probability[trio[1]])
    return best


def frames_at(path: str | Path, times_s: Sequence[float], *,
              fps: float = 25.0) -> list[tuple[float, np.ndarray]]:
    """Video frames at the given times (decoded at ``fps``), skipping times outside the clip:
    ``[(time_s, (H, W, 3) uint8), ...]``."""
    from avdd.media import read_clip

    video = read_clip(path, fps=fps, audio=False).video
    out = []
    for t in times_s:
        k = frame_index(t, fps)
        if 0 <= k < len(video):
            out.append((k / fps, video[k]))
    return out


@dataclass(frozen=True)
class TimelineMedia:
    """What Fig. 3 shows under one timeline's traces (:func:`avdd.report.plots.plot_timeline`'s
    ``spectrogram_audio``, ``spectrogram_windows`` and ``frames``).

    Attributes:
        audio: ``(N,)`` float32 mono audio at 16 kHz for audio and audio-visual models, else
            None.
        mel_windows: the spectrogram windows ``(start_s, end_s)`` the paper shows for its
            picks; empty: the whole spectrogram.
        frames: ``[(time_s, (H, W, 3) uint8), ...]`` for visual and audio-visual models, else
            None.
        segment: the fake segment the frames show (:func:`shown_segment`), or None (frames
            around the score peak).
    """

    audio: np.ndarray | None
    frames: list[tuple[float, np.ndarray]] | None
    mel_windows: tuple[tuple[float, float], ...] = ()
    segment: int | None = None


#: Which frames Fig. 3 shows for a visual model: ``"segment"`` (the paper's rule,
#: :func:`segment_frames` on :func:`shown_segment`) or ``"peak"`` (around the score peak).
FRAME_RULES = ("segment", "peak")


def timeline_media(tl: Timeline, *, frames: str = "segment",
                   offsets_s: Sequence[float] = (-0.2, 0.0, 0.2)) -> TimelineMedia:
    """Decode what Fig. 3 draws under ``tl``: its video's audio if the model hears (with the
    paper's spectrogram windows for a pick), frames if it sees: by rule ``frames``
    (:data:`FRAME_RULES`; ``"segment"`` falls back to ``"peak"`` when no fake segment holds
    a frame), ``"peak"`` at ``tl.peak_time + offset`` for each of ``offsets_s``."""
    from avdd.media import read_clip

    if frames not in FRAME_RULES:
        raise ValueError(f"unknown frame rule {frames!r}; expected one of {FRAME_RULES}")
    hears = tl.modality in ("audio", "audio-visual")
    sees = tl.modality in ("visual", "audio-visual")
    windows = tl.pick.mel_windows if hears and tl.pick is not None else ()
    shown, segment = None, None
    if sees:
        segment = shown_segment(tl) if frames == "segment" else None
        trio = (None if segment is None else
                segment_frames(tl.probability, tl.fake_segments[segment], tl.fps,
                               offset=tl.offset))
        if trio is None:
            segment = None
            shown = frames_around(tl.path, tl.peak_time, offsets_s=offsets_s)
        else:
            shown = frames_at(tl.path, [(tl.offset + i) / tl.fps for i in trio])
    return TimelineMedia(audio=read_clip(tl.path, video=False).audio if hears else None,
                         frames=shown, mel_windows=tuple(windows), segment=segment)


def peak_summary(tl: Timeline, leading_silence_s: float) -> dict[str, object]:
    """Fig. 3's table row of one timeline: ``video``, ``pick`` (``"paper"``: the paper's
    hand-picked video; ``"top-scoring"``), ``video_score`` and its ``probability``
    σ(2s), ``peak_s`` (start of the top frame), whether that frame is in a fake segment
    (``peak_in_fake``) or in the video's leading silence of ``leading_silence_s`` seconds
    (``peak_in_silence``, the frames AVH-Align's trimming drops), and ``leading_silence_s``."""
    return {"video": tl.video_id, "pick": "paper" if tl.pick is not None else "top-scoring",
            "video_score": tl.video_score,
            "probability": float(probability(tl.video_score)), "peak_s": tl.peak_time,
            "peak_in_fake": bool(tl.labels[tl.peak]),
            "peak_in_silence": bool(tl.peak < silence_frames(leading_silence_s, tl.fps)),
            "leading_silence_s": float(leading_silence_s)}
