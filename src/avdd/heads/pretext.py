"""Do the anomaly proxies solve their pretext tasks? (a reviewers' question, SPEC.md)

An anomaly detector trained on reals only is useful if (1) it solves its pretext task on
held-out real videos, and (2) it solves it worse where the video is manipulated. These reports
put numbers on both, per group of frames:

* ``real videos`` / ``fake videos``: all frames of real (label 0) / fake (label 1) videos;
* ``fake frames of fakes`` / ``real frames of fakes``: frames of fake videos inside / outside
  their ``fake_segments`` (metadata, [[start_s, end_s], ...]); a segment covers frames
  floor(fps * start) .. floor(fps * end) inclusive, as the localisation labels (SPEC.md,
  "Temporal explanations"), up to a 1e-6-frame tolerance for rounding. These rows appear
  only when some fake has ``fake_segments``.

Videos labelled -1 (unknown) are left out.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

from avdd.features.featureset import FeatureSet
from avdd.heads.ntp import NextTokenPredictor
from avdd.heads.sequences import Aligned
from avdd.heads.sync import SyncDetector

__all__ = ["fake_frame_mask", "ntp_pretext_report", "sync_pretext_report"]


def fake_frame_mask(meta: dict, length: int, fps: float) -> np.ndarray | None:
    """(length,) bool: frames inside any of ``meta["fake_segments"]`` (seconds), frames
    floor(fps * start) .. floor(fps * end) inclusive, clipped to the video. None when the
    metadata has no ``fake_segments`` key."""
    if "fake_segments" not in meta:
        return None
    mask = np.zeros(length, bool)
    for start, end in meta["fake_segments"]:
        # +1e-6 frame: a time written as frame / fps maps back to that frame despite rounding
        # (25 * 0.28 = 6.9999...).
        lo = max(math.floor(fps * start + 1e-6), 0)
        hi = min(math.floor(fps * end + 1e-6), length - 1)
        mask[lo:hi + 1] = True  # empty when the segment lies outside the video
    return mask


def _groups(data: Aligned) -> list[tuple[str, list[tuple[int, np.ndarray]]]]:
    """[(group name, [(video index, (T,) bool frames to count)])]."""
    n = [int(t) for t in data.lengths]
    groups = [(name, [(i, np.ones(n[i], bool)) for i in np.flatnonzero(data.labels == label)])
              for name, label in (("real videos", 0), ("fake videos", 1))]
    masks = [(i, fake_frame_mask(data.meta(i), n[i], data.fps)) for i in np.flatnonzero(data.labels == 1)]
    masks = [(i, m) for i, m in masks if m is not None]
    if masks:
        groups.append(("fake frames of fakes", [(i, m) for i, m in masks]))
        groups.append(("real frames of fakes", [(i, ~m) for i, m in masks]))
    return groups


def ntp_pretext_report(model: NextTokenPredictor, X: FeatureSet | Sequence[FeatureSet]) -> pd.DataFrame:
    """Next-frame prediction error of a fitted NTP model, by group.

    Columns: ``group``, ``n_videos`` (with at least one counted frame), ``n_frames``,
    ``mean_error`` (per-frame MSE averaged over all counted frames; frame 0, which has no
    prediction, is never counted), ``video_mean_error`` (mean over videos of their mean
    counted error), ``mean_score`` (mean video score, max error over the whole video; the
    same for both frame groups of fakes).
    """
    data = Aligned(X)
    errors = model.frame_errors(X)
    rows = []
    for name, members in _groups(data):
        per_video = [(errors[i][1:][m[1:]], errors[i]) for i, m in members]
        per_video = [(e, full) for e, full in per_video if len(e)]
        frames = np.concatenate([e for e, _ in per_video]) if per_video else np.empty(0)
        rows.append({
            "group": name, "n_videos": len(per_video), "n_frames": len(frames),
            "mean_error": float(frames.astype(np.float64).mean()) if len(frames) else math.nan,
            "video_mean_error": float(np.mean([e.mean() for e, _ in per_video])) if per_video else math.nan,
            "mean_score": float(np.mean([full[1:].max() for _, full in per_video])) if per_video else math.nan,
        })
    return pd.DataFrame(rows)


def sync_pretext_report(model: SyncDetector, V: FeatureSet, A: FeatureSet) -> pd.DataFrame:
    """Synchronisation accuracy of a fitted sync detector, by group.

    Columns: ``group``, ``n_videos``, ``n_frames``, ``sync_accuracy`` (fraction of counted
    frames whose top-ranked audio offset within ±tau is 0, pooled over frames), ``chance``
    (1 / (2 tau + 1)), ``mean_frame_score`` (mean of -φ(v_t, a_t) over counted frames;
    higher = less synchronised).
    """
    data = Aligned((V, A))
    offsets = model.predicted_offsets(V, A)
    scores = model.frame_scores(V, A)
    rows = []
    for name, members in _groups(data):
        members = [(i, m) for i, m in members if m.any()]
        hits = np.concatenate([offsets[i][m] == 0 for i, m in members]) if members else np.empty(0)
        s = np.concatenate([scores[i][m] for i, m in members]) if members else np.empty(0)
        rows.append({
            "group": name, "n_videos": len(members), "n_frames": len(hits),
            "sync_accuracy": float(hits.mean()) if len(hits) else math.nan,
            "chance": 1.0 / (2 * model.tau + 1),
            "mean_frame_score": float(s.astype(np.float64).mean()) if len(s) else math.nan,
        })
    return pd.DataFrame(rows)
