"""Per-video facts the feature stores do not hold: duration and leading silence of every
video of a split, measured on the decoded audio (cached: real data has to be decoded).

The temporal checks (Figs. 2-3) need them: the leading-silence shortcut is judged against the
silence each video really starts with.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from avdd.analysis.cache import cached
from avdd.backbones.layers.audio import SILENCE_THRESHOLD, leading_silence_seconds, silence_frames
from avdd.config import Profile
from avdd.datasets import load_items
from avdd.features.featureset import FeatureSet
from avdd.media import read_clip


def video_info(profile: Profile, dataset: str, split: str, *,
               force: bool = False) -> pd.DataFrame:
    """Duration and leading silence of every video of one split (cached: real data is decoded).

    Returns a table indexed by ``video_id`` with ``label``, ``duration_s`` (decoded audio
    length), ``video_frames`` (the metadata's frame count, as the paper's temporal evaluation
    uses: AV1M ``video_frames``; else the audio duration at 25 fps) and ``frames_source``,
    ``leading_silence_s`` (the ground truth used by the checks: the synthetic
    benchmark's annotation when it has one, else ``measured_silence_s``),
    ``measured_silence_s`` (AVH-Align's rule on the decoded 16 kHz audio: first sample with
    ``|x| > 0.0005``; what ``trim_silence=true`` trims) and ``silence_source``.
    """
    config = {"dataset": dataset, "split": split, "silence_threshold": SILENCE_THRESHOLD}

    def compute() -> pd.DataFrame:
        rows = []
        for item in load_items(profile, dataset, split):
            clip = read_clip(item.path, video=False)
            measured = leading_silence_seconds(clip.audio, threshold=SILENCE_THRESHOLD,
                                               sample_rate=clip.sample_rate)
            note = item.annotation or {}
            known = "leading_silence" in note
            rows.append({"video_id": item.video_id, "label": item.label,
                         "duration_s": len(clip.audio) / clip.sample_rate,
                         # the metadata's frame count (AV1M), else the decoded one
                         "video_frames": item.video_frames if item.video_frames is not None
                         else int(round(len(clip.audio) / clip.sample_rate * 25.0)),
                         "frames_source": "metadata" if item.video_frames is not None
                         else "audio duration",
                         "leading_silence_s": float(note["leading_silence"]) if known
                         else measured,
                         "measured_silence_s": measured,
                         "silence_source": "annotation" if known else "audio"})
        return pd.DataFrame(rows)

    return cached(profile, "video_info", config, compute, code=__name__, force=force).set_index("video_id")


def without_leading_silence(profile: Profile, fs: FeatureSet, dataset: str,
                            split: str) -> tuple[FeatureSet, np.ndarray]:
    """``fs`` (the store of ``dataset``/``split``) without each video's leading-silence frames:
    :func:`~avdd.backbones.layers.audio.silence_frames` of its ``leading_silence_s`` at the
    store's rate, at least one frame kept (:meth:`FeatureSet.drop_leading`).

    Frame-level trimming, for any backbone: what ``trim_silence=true`` does to a lip model's
    input, done on the features instead (a frame's features may still have heard the silence
    through the model's receptive field). Returns ``(trimmed set, (N,) frames dropped)``.
    """
    info = video_info(profile, dataset, split)
    missing = sorted(set(fs.ids) - set(info.index))
    if missing:
        raise ValueError(f"{len(missing)} videos of the {dataset}/{split} store are not in its "
                         f"split list (e.g. {missing[0]}); re-extract the store")
    seconds = info.loc[list(fs.ids), "leading_silence_s"].to_numpy()
    trimmed = fs.drop_leading([silence_frames(float(s), fs.fps) for s in seconds])
    return trimmed, fs.lengths - trimmed.lengths  # drop_leading keeps one frame of each
