"""Temporal explanations (Fig. 2, Fig. 3): where in time do the linear probes fire?

A probe's per-frame logit ``w.x_t / ||x_t|| + b`` is its temporal explanation (SPEC.md,
"Temporal explanations"). This module compares those frame scores with the ground-truth fake
segments of AV1M-like test videos (localisation AUC), checks the *leading-silence shortcut*
(fakes that start with silence, on which audio probes may fire); Fig. 3's single video is
:mod:`avdd.analysis.timeline`. Compute only: the notebooks plot.

Conventions:

- frame ``t`` of a store at ``fps`` covers ``[t / fps, (t + 1) / fps)`` seconds;
- a fake segment ``[start, end]`` (seconds) labels frames ``floor(fps*start)..floor(fps*end)``
  inclusive, as the paper's evaluation does (12.5 Hz labels for VideoMAE);
- the leading silence of ``s`` seconds covers the frames that AVH-Align's trimming drops,
  ``int(fps * s) + 1`` when ``s > 0`` (the silent frames and the one in which sound starts:
  :func:`avdd.backbones.layers.audio.silence_frames`, the one rule for trimming and checks);
- AUCs are in percent, as in the paper.

Why one module: the localisation AUC and the leading-silence check are computed together, by
one cached evaluation per probe (:func:`evaluate_temporal`), under the conventions above.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import logsumexp

from avdd.analysis import metrics
from avdd.analysis.cache import cached
from avdd.analysis.probes import FrameSelection, study_probe, trained_probe
from avdd.analysis.video_info import video_info, without_leading_silence
from avdd.backbones import describe
from avdd.backbones.layers.audio import silence_frames
from avdd.config import Profile
from avdd.features.prepare import feature_set

#: The rate at which the lip backbones cut their inputs when ``trim_silence=true``
#: (video frames; their features are at the same rate).
LIP_FPS = 25.0


def frame_index(seconds: float, fps: float) -> int:
    """Index of the frame that contains time ``seconds``: ``int(fps * seconds)``, the paper's
    arithmetic, float rounding included (1.16 s at 25 fps is frame 28: ``25 * 1.16`` is
    ``28.999...``)."""
    return math.floor(fps * seconds)


def expected_frames(config: dict[str, Any], video_frames: int) -> int:
    """Feature frames a backbone gives for a video of ``video_frames`` frames (the length the
    paper's evaluation holds its scores against): the frames themselves for per-frame
    backbones; for windowed ones (VideoMAE: ``window``, ``tubelet``, ``trailing`` in its
    config) the steps of the windows kept, ``8 * ((T - 16) // 16 + 1)`` with the trailing
    partial window dropped, as upstream."""
    if "window" in config and "tubelet" in config:
        from avdd.backbones.videomae import windows

        return sum(keep for _, keep in windows(int(video_frames), int(config["window"]),
                                               int(config["tubelet"]),
                                               config.get("trailing", "drop")))
    return int(video_frames)


def frame_labels(fake_segments: Sequence[Sequence[float]], n_frames: int,
                 fps: float) -> np.ndarray:
    """Per-frame ground truth of one video.

    Args:
        fake_segments: ``[(start_s, end_s), ...]`` in seconds (may be empty).
        n_frames: number of frames T of the feature sequence.
        fps: frame rate of the feature sequence (25 Hz; 12.5 Hz for VideoMAE).
    Returns:
        ``(T,)`` int64, 1 for frames ``floor(fps*start)..floor(fps*end)`` (inclusive) of any
        segment, else 0. Segments are clipped to ``[0, T - 1]``; ones past the end are ignored.
    """
    if n_frames < 0:
        raise ValueError(f"n_frames must be >= 0, got {n_frames}")
    labels = np.zeros(n_frames, np.int64)
    for seg in fake_segments:
        start, end = float(seg[0]), float(seg[1])
        if end < start:
            raise ValueError(f"fake segment {list(seg)} ends before it starts")
        a, b = max(0, frame_index(start, fps)), min(n_frames - 1, frame_index(end, fps))
        if a <= b:
            labels[a:b + 1] = 1
    return labels


@dataclass(frozen=True)
class LocalisationResult:
    """Frame-level localisation of a set of videos (AUCs in percent).

    Attributes:
        mean: mean per-video ROC-AUC over the videos used (NaN if none).
        ci_low, ci_high: bootstrap percentile interval of ``mean`` over videos (95 % unless
            asked otherwise; NaN without resamples or videos).
        per_video: ``(N,)`` per-video AUC, NaN for videos not used.
        n_used: videos whose AUC enters the mean.
        n_skipped_length: videos skipped because their feature length differs from the
            expected one by more than the tolerance.
        n_single_class: videos skipped because all their frames have one label.
    """

    mean: float
    ci_low: float
    ci_high: float
    per_video: np.ndarray
    n_used: int
    n_skipped_length: int
    n_single_class: int


def _rows(frame_logits, lengths) -> list[np.ndarray]:
    """Rows of a list of ``(T_i,)`` arrays or a padded ``(N, T_max)`` array, cut to
    ``lengths``."""
    out = []
    for i, (z, n) in enumerate(zip(frame_logits, lengths, strict=True)):
        z = np.asarray(z, np.float64).reshape(-1)
        if n > len(z):
            raise ValueError(f"video {i}: lengths says {n} frames but its logits have {len(z)}")
        out.append(z[:int(n)])
    return out


def localisation_auc(frame_logits: Sequence[np.ndarray] | np.ndarray,
                     fake_segments_per_video: Sequence[Sequence[Sequence[float]]],
                     lengths: Sequence[int], fps: float, *,
                     expected_lengths: Sequence[float] | None = None, tolerance: float = 2,
                     offsets: Sequence[int] | None = None, n_bootstrap: int = 1000,
                     random_state: int = 0, level: float = metrics.LEVEL) -> LocalisationResult:
    """Per-video ROC-AUC of frame scores against frame labels, averaged over videos.

    Args:
        frame_logits: N per-frame score arrays ``(T_i,)`` (a list, or a padded ``(N, T_max)``
            array).
        fake_segments_per_video: N lists of ``(start_s, end_s)`` fake segments (seconds on the
            original video's clock).
        lengths: ``(N,)`` valid frames of each row of ``frame_logits``.
        fps: frame rate of the scores (labels are made at this rate).
        expected_lengths: ``(N,)`` frames each video should have (:func:`expected_frames` of
            the metadata's frame count, minus ``offsets``); as in the paper's evaluation, videos
            off by more than ``tolerance`` frames are skipped and counted, and the others are
            compared on their first ``min(T_i, expected)`` frames. None: no check, all frames.
        offsets: ``(N,)`` leading frames of the original video that the scores do not cover
            (a silence-trimmed input): score ``j`` is compared with label ``j + offset``.
        n_bootstrap: resamples of the used videos for the interval (0: no interval).
        random_state: seed of the bootstrap.
        level: percent coverage of the interval (95 by default).
    Returns:
        :class:`LocalisationResult`; videos with both classes present are the ones averaged.
    """
    rows = _rows(frame_logits, lengths)
    n = len(rows)
    if len(fake_segments_per_video) != n:
        raise ValueError(f"{n} score sequences but {len(fake_segments_per_video)} segment lists")
    offsets = np.zeros(n, np.int64) if offsets is None else np.asarray(offsets, np.int64)
    if expected_lengths is not None:
        expected_lengths = np.asarray(expected_lengths, np.float64)
        if expected_lengths.shape != (n,):
            raise ValueError(f"expected_lengths has shape {expected_lengths.shape}, not ({n},)")
    per_video = np.full(n, np.nan)
    skipped_length = single = 0
    for i, (z, segs) in enumerate(zip(rows, fake_segments_per_video)):
        if expected_lengths is not None and abs(len(z) - expected_lengths[i]) > tolerance:
            skipped_length += 1
            continue
        if expected_lengths is not None:
            z = z[:max(0, int(min(len(z), expected_lengths[i])))]
        labels = frame_labels(segs, len(z) + int(offsets[i]), fps)[int(offsets[i]):]
        auc = metrics.auc(labels, z)
        if math.isnan(auc):
            single += 1
            continue
        per_video[i] = 100 * auc
    used = per_video[~np.isnan(per_video)]
    mean = float(used.mean()) if used.size else float("nan")
    lo, hi = metrics.bootstrap_mean_interval(used, n_bootstrap=n_bootstrap,
                                             rng=np.random.default_rng(random_state),
                                             level=level)
    return LocalisationResult(mean=mean, ci_low=lo, ci_high=hi, per_video=per_video,
                              n_used=int(used.size), n_skipped_length=skipped_length,
                              n_single_class=single)


@dataclass(frozen=True)
class SilenceCheck:
    """Where the top-scoring frame of videos that start with silence lies.

    Attributes:
        fraction: share of those videos whose highest-scoring frame lies in the leading
            silence (NaN if no video has a leading silence).
        n_videos: videos with a leading silence (the only ones that can count).
        n_in_silence: of those, how many peak inside it.
        chance: the expected ``fraction`` if the peak were a uniformly random frame (mean
            share of silent frames), the level a probe blind to silence would show.
    """

    fraction: float
    n_videos: int
    n_in_silence: int
    chance: float


def leading_silence_check(frame_logits: Sequence[np.ndarray],
                          leading_silence_seconds: Sequence[float], fps: float, *,
                          offsets: Sequence[int] | None = None) -> SilenceCheck:
    """Fraction of videos whose highest-scoring frame lies in their leading silence.

    Args:
        frame_logits: N arrays ``(T_i,)`` of frame scores.
        leading_silence_seconds: ``(N,)`` silence at the start of each video (s; 0 = none).
        fps: frame rate of the scores.
        offsets: ``(N,)`` leading frames already cut from the scores (a trimmed input); only
            the silence left after them counts.
    Returns:
        :class:`SilenceCheck` over the videos that still start with silence.
    """
    n = len(frame_logits)
    if len(leading_silence_seconds) != n:
        raise ValueError(f"{n} score sequences but {len(leading_silence_seconds)} silences")
    offsets = np.zeros(n, np.int64) if offsets is None else np.asarray(offsets, np.int64)
    hits, shares = [], []
    for z, s, off in zip(frame_logits, leading_silence_seconds, offsets):
        z = np.asarray(z).reshape(-1)
        k = min(len(z), max(0, silence_frames(float(s), fps) - int(off)))
        if k == 0 or len(z) == 0:
            continue
        hits.append(int(np.argmax(z)) < k)
        shares.append(k / len(z))
    if not hits:
        return SilenceCheck(fraction=float("nan"), n_videos=0, n_in_silence=0,
                            chance=float("nan"))
    return SilenceCheck(fraction=float(np.mean(hits)), n_videos=len(hits),
                        n_in_silence=int(np.sum(hits)), chance=float(np.mean(shares)))


def drop_leading_silence(frame_logits: Sequence[np.ndarray],
                         leading_silence_seconds: Sequence[float],
                         fps: float) -> tuple[list[np.ndarray], np.ndarray]:
    """Score-level trimming (the ablation for backbones without a ``trim_silence`` option):
    cut each video's leading-silence frames from its frame scores.

    At least one frame is kept, so a video that is silent throughout still gets a score.
    Returns ``(kept scores, (N,) frames dropped)``.
    """
    kept, dropped = [], []
    for z, s in zip(frame_logits, leading_silence_seconds, strict=True):
        k = min(silence_frames(float(s), fps), max(0, len(z) - 1))
        kept.append(np.asarray(z)[k:])
        dropped.append(k)
    return kept, np.asarray(dropped, np.int64)


def video_scores(frame_logits: Sequence[np.ndarray]) -> np.ndarray:
    """``(N,)`` video scores ``logsumexp_t`` of frame logits (which include the bias): the
    probe's :meth:`~avdd.heads.probe.LinearProbe.decision_function` on whatever frames are given."""
    return np.array([float(logsumexp(np.asarray(z, np.float64))) for z in frame_logits])


def top_in_fake(frame_logits: Sequence[np.ndarray], fake_segments_per_video, fps: float, *,
                offsets: Sequence[int] | None = None) -> float:
    """Share of videos whose highest-scoring frame lies in a fake segment (NaN if none)."""
    offsets = np.zeros(len(frame_logits), np.int64) if offsets is None else offsets
    hits = []
    for z, segs, off in zip(frame_logits, fake_segments_per_video, offsets, strict=True):
        if len(z):
            labels = frame_labels(segs, len(z) + int(off), fps)[int(off):]
            hits.append(bool(labels[int(np.argmax(z))]))
    return float(np.mean(hits)) if hits else float("nan")


def trim_spec(backbone: str) -> str | None:
    """The silence-trimming variant of a lip backbone spec (``trim_silence=true``), or None for
    backbones without that option (their ablation trims the frame scores instead)."""
    cfg = describe(backbone).config
    if "trim_silence" not in cfg or cfg["trim_silence"]:
        return None
    return backbone + ("," if ":" in backbone else ":") + "trim_silence=true"


def feature_offsets(backbone: str, measured_silence: np.ndarray) -> np.ndarray:
    """Leading frames a ``trim_silence=true`` lip backbone cut from each video (0 otherwise):
    ``int(25 * s) + 1`` for a measured silence ``s > 0``, as ``lipread.inputs`` computes it."""
    if not describe(backbone).config.get("trim_silence"):
        return np.zeros(len(measured_silence), np.int64)
    return np.array([silence_frames(s, LIP_FPS) for s in measured_silence], np.int64)


# -- study level -----------------------------------------------------------------------------

#: The frames the "frames" ablation trains its probe on: each video's own, after its leading
#: silence (:func:`avdd.analysis.video_info.without_leading_silence`).
WITHOUT_LEADING_SILENCE = FrameSelection(
    "without the leading silence (silence_frames of leading_silence_s)",
    lambda profile, fs, dataset, split: without_leading_silence(profile, fs, dataset, split)[0],
    ("avdd.analysis.video_info",))

#: The rows of the leading-silence ablation.
ABLATIONS = {
    "none": "no trimming: the probe's scores as they are",
    "scores": "test time: the leading-silence frames are cut from the frame scores before "
              "the peak and the video score are taken (probe unchanged)",
    "frames": "training and test: the leading-silence frames are cut from every video's "
              "features (train, val and test), and the probe is retrained on what is left, "
              "so the silence cannot be one of its cues",
    "features": "input: the backbone drops the silence before encoding (`trim_silence=true`, "
                "AVH-Align's threshold rule), and the probe is trained on trimmed features",
}


def evaluate_temporal(profile: Profile, backbone: str, *, train: str = "av1m",
                      test: str = "av1m", seed: int = 43, n_bootstrap: int = 1000,
                      ablation: str = "none", tolerance: float = 2) -> dict[str, Any]:
    """Classification and localisation of one backbone's ``train``-trained probe on ``test``.

    Args:
        backbone: a backbone spec; a ``trim_silence=true`` spec is the "features" ablation.
        ablation: ``"none"``, ``"scores"`` or ``"frames"`` (see :data:`ABLATIONS`).
    Returns:
        One table row: classification ``auc`` (video level, all test videos) with its
        bootstrap interval; ``loc_auc`` over test fakes (:func:`localisation_auc`) with its
        interval and counts; the leading-silence check (``silence_top``, ``silence_chance``,
        ``silence_videos``), the same localisation with the leading silence as the segment
        (``silence_loc_auc``, its interval and ``silence_loc_n_used``: how far the frame scores
        rank the silence above the rest of the fakes that start with one) and
        ``top_in_fake`` over test fakes. Percentages except counts.
    """
    if ablation not in ("none", "scores", "frames"):
        raise ValueError(f"ablation must be 'none', 'scores' or 'frames', got {ablation!r}")
    bb = describe(backbone)
    if ablation != "none" and bb.config.get("trim_silence"):
        raise ValueError(f"{backbone} drops the leading silence from its input already "
                         f"(trim_silence=true): ablation {ablation!r} would cut it twice; use "
                         "ablation='none' for it")
    probe = trained_probe(profile, backbone, train, seed=seed,
                          frames=WITHOUT_LEADING_SILENCE if ablation == "frames" else None)
    fs = feature_set(profile, backbone, test, "test")
    info = video_info(profile, test, "test")
    missing = sorted(set(fs.ids) - set(info.index))
    if missing:
        raise ValueError(f"{len(missing)} videos of the {backbone} store for {test}/test are "
                         f"not in the split list (e.g. {missing[0]}); re-extract the store")
    info = info.loc[list(fs.ids)]
    rates = {fs.video_fps(i) for i in range(len(fs))}
    if rates != {fs.fps}:
        raise ValueError(f"the {backbone} store of {test}/test holds videos at several frame "
                         f"rates ({sorted(rates)}): localisation needs one rate per store; "
                         "extract it at a fixed rate (the demo's 25 fps)")
    offsets = feature_offsets(backbone, info["measured_silence_s"].to_numpy())
    if ablation == "frames":
        fs, dropped = without_leading_silence(profile, fs, test, "test")
        offsets = offsets + dropped
    logits = probe.frame_logits(fs)
    if ablation == "scores":
        logits, dropped = drop_leading_silence(logits, info["leading_silence_s"].to_numpy(),
                                               fs.fps)
        offsets = offsets + dropped
        scores = video_scores(logits)
    else:
        scores = probe.decision_function(fs)
    labels = fs.labels
    cls = metrics.evaluate(labels, scores, n_bootstrap=n_bootstrap, random_state=seed,
                           one_class="nan")
    fake = np.flatnonzero(labels == 1)
    segs = [fs.meta(int(i)).get("fake_segments", []) for i in fake]
    z = [logits[i] for i in fake]
    expected = np.array([expected_frames(bb.config, n) for n in
                         info["video_frames"].to_numpy()[fake]], np.float64) - offsets[fake]
    loc = localisation_auc(z, segs, [len(v) for v in z], fs.fps, expected_lengths=expected,
                           tolerance=tolerance, offsets=offsets[fake], n_bootstrap=n_bootstrap,
                           random_state=seed)
    lead = info["leading_silence_s"].to_numpy()[fake]
    chk = leading_silence_check(z, lead, fs.fps, offsets=offsets[fake])
    # The silence as a "segment" [0, s]: its frames are silence_frames(s), the trimming rule
    # (frame_labels marks 0..floor(fps * s)). Where the silence was cut, nothing is left of it
    # and the video counts as single-class.
    silent = np.flatnonzero(lead > 0)
    sil = localisation_auc([z[j] for j in silent], [[[0.0, float(lead[j])]] for j in silent],
                           [len(z[j]) for j in silent], fs.fps,
                           expected_lengths=expected[silent], tolerance=tolerance,
                           offsets=offsets[fake][silent], n_bootstrap=n_bootstrap,
                           random_state=seed)
    return {"backbone": backbone, "modality": bb.modality, "weights": bb.weights,
            "fps": fs.fps, "train": train, "test": test,
            **{k: 100 * cls[k] for k in ("auc", "auc_ci_low", "auc_ci_high")},
            "n_real": int((labels == 0).sum()), "n_fake": int(len(fake)),
            "loc_auc": loc.mean, "loc_ci_low": loc.ci_low, "loc_ci_high": loc.ci_high,
            "loc_n_used": loc.n_used, "loc_n_skipped_length": loc.n_skipped_length,
            "loc_n_single_class": loc.n_single_class,
            "silence_top": 100 * chk.fraction, "silence_chance": 100 * chk.chance,
            "silence_videos": chk.n_videos,
            "silence_loc_auc": sil.mean, "silence_loc_ci_low": sil.ci_low,
            "silence_loc_ci_high": sil.ci_high, "silence_loc_n_used": sil.n_used,
            "top_in_fake": 100 * top_in_fake(z, segs, fs.fps, offsets=offsets[fake])}


def _table_config(profile: Profile, backbones: Sequence[str], **kw) -> dict:
    return {"backbones": {b: describe(b).config for b in backbones},
            "probe": study_probe(profile, kw.get("seed", 43)).get_params(), **kw}


def localisation_table(profile: Profile, backbones: Sequence[str], *, train: str = "av1m",
                       test: str = "av1m", seed: int = 43, n_bootstrap: int = 1000,
                       force: bool = False) -> pd.DataFrame:
    """Fig. 2: classification AUC (``train`` → ``test``) beside localisation AUC, per backbone.

    One row per backbone (see :func:`evaluate_temporal` for the columns), probes from
    :func:`avdd.analysis.linear_probing.trained_probe` (shared with the other pages). Features must exist
    (:func:`avdd.features.prepare.prepare`). Cached (:func:`avdd.analysis.cache.cached`); ``force`` recomputes.
    """
    config = _table_config(profile, backbones, train=train, test=test, seed=seed,
                           n_bootstrap=n_bootstrap)
    return cached(profile, "localisation", config,
                  lambda: pd.DataFrame([evaluate_temporal(profile, b, train=train, test=test,
                                                          seed=seed, n_bootstrap=n_bootstrap)
                                        for b in backbones]),
                  code=__name__, force=force)


def silence_specs(backbones: Sequence[str]) -> list[str]:
    """``backbones`` plus the ``trim_silence=true`` variants the ablation needs (to prepare)."""
    return list(backbones) + [t for t in map(trim_spec, backbones) if t]


def leading_silence_table(profile: Profile, backbones: Sequence[str], *, train: str = "av1m",
                          test: str = "av1m", seed: int = 43, n_bootstrap: int = 1000,
                          force: bool = False) -> pd.DataFrame:
    """The leading-silence check with and without trimming, per backbone.

    Rows per backbone: ``ablation`` = ``"none"``, ``"scores"``, ``"frames"`` and, for lip
    backbones, ``"features"`` (its ``trim_silence=true`` store, which must be prepared:
    :func:`silence_specs`); :data:`ABLATIONS` says what each does. ``base`` names the
    untrimmed backbone. Columns as :func:`evaluate_temporal`. Cached (:func:`avdd.analysis.cache.cached`).
    """
    kw = {"train": train, "test": test, "seed": seed, "n_bootstrap": n_bootstrap}

    def compute() -> pd.DataFrame:
        rows = []
        for b in backbones:
            rows.append({"base": b, "ablation": "none", **evaluate_temporal(profile, b, **kw)})
            for ablation in ("scores", "frames"):
                rows.append({"base": b, "ablation": ablation,
                             **evaluate_temporal(profile, b, ablation=ablation, **kw)})
            trimmed = trim_spec(b)
            if trimmed:
                rows.append({"base": b, "ablation": "features",
                             **evaluate_temporal(profile, trimmed, **kw)})
        return pd.DataFrame(rows)

    return cached(profile, "leading_silence", _table_config(profile, silence_specs(backbones), **kw),
                  compute, code=__name__, force=force)


