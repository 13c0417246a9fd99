"""The one entry point the lip-reading backbones call: a clip -> video and audio inputs.

AV-HuBERT, Auto-AVSR and BRAVEn share the video normalisation (grey / 255, centre crop
88 x 88, (x - 0.421) / 0.165) of a 96 x 96 mouth crop, made by one of two recipes
(:mod:`avdd.roi.mouth`): AV-HuBERT's (``recipe="avhubert"``, also BRAVEn's) or Auto-AVSR's
(``"autoavsr"``). They differ in audio: AV-HuBERT takes stacked log filterbanks
(``audio="avhubert"``), Auto-AVSR the raw waveform normalised over the utterance
(``"utterance_norm"``, eps 0) and BRAVEn the raw waveform as is (``"raw"``, as RAVEn's data
pipeline feeds it).

Lengths, as each upstream pipeline cuts them: with both streams, to a common number of frames
T (AV-HuBERT: the shorter of video frames and stacked filterbank frames; Auto-AVSR:
``min(T_video, N // 640)``; BRAVEn's raw audio counts a partial last frame). AV-HuBERT cuts
both streams to that length *before* its three passes, so its audio-only and video-only
features have it too (``common_length=True``). Every video frame is one step of 640 audio
samples (25 Hz): a clip decoded at its native rate (``Clip.native``) is taken as it is, as the
paper's extractors took every decoded frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from avdd.backbones.layers.audio import (
    FPS,
    HOP,
    SAMPLE_RATE,
    avhubert_audio,
    trim_leading_silence,
    utterance_norm,
)
from avdd.media import Clip
from avdd.roi.mouth import compute_rois
from avdd.roi.regions import MouthRois, Roi

__all__ = ["LipInputs", "lip_inputs", "video_input", "lip_feature_rate", "AUDIO_KINDS"]

CROP = 88  # centre crop side (px) of the 96 x 96 mouth ROI
MEAN, STD = 0.421, 0.165  # grey-level statistics of LRS3 mouth crops (after / 255)
AUDIO_KINDS = ("avhubert", "raw", "utterance_norm")
AVHUBERT_DIM = 104  # 26 filters x 4 stacked frames


@dataclass(frozen=True, eq=False)
class LipInputs:
    """Inputs of a lip backbone for one clip, both cut to T frames.

    Attributes:
        video: ``(T, 88, 88)`` float32 normalised mouth crops; ``(0, 88, 88)`` when not asked for.
        audio: kind ``"avhubert"``: ``(T, 104)`` float32; ``"raw"`` / ``"utterance_norm"``:
            ``(T * 640,)`` float32 at 16 kHz. Empty (0 rows) when not asked for.
        fps: 25.0.
        rois: the clip's full-length mouth ROIs (before silence trimming and the common-length
            cut), or None when video was not asked for.
        trimmed_frames: leading frames dropped by ``trim_silence`` (0 otherwise).
    """

    video: np.ndarray
    audio: np.ndarray
    fps: float
    rois: MouthRois | None
    trimmed_frames: int = 0

    @property
    def num_frames(self) -> int:
        """T: the common number of 25 Hz frames."""
        return int(self.video.shape[0]) if self.video.size else self._audio_frames()

    def _audio_frames(self) -> int:
        return int(self.audio.shape[0]) if self.audio.ndim == 2 else int(self.audio.shape[0]) // HOP


def video_input(frames96: np.ndarray) -> np.ndarray:
    """``(T, 96, 96)`` uint8 grey mouth crops -> ``(T, 88, 88)`` float32: / 255, centre crop
    (offset (96 - 88) / 2 = 4 px, AV-HuBERT's CenterCrop), then (x - 0.421) / 0.165."""
    frames = np.asarray(frames96)
    if frames.ndim != 3:
        raise ValueError(f"expected (T, H, W) grey frames, got {frames.shape}")
    h, w = frames.shape[1:]
    if h < CROP or w < CROP:
        raise ValueError(f"frames {h}x{w} are smaller than the {CROP}x{CROP} centre crop")
    dy, dx = int(round((h - CROP) / 2)), int(round((w - CROP) / 2))
    # In place on one float32 copy: the same float32 operations as
    # ``((crop / 255 - MEAN) / STD).astype(np.float32)``, which held three (T, 88, 88) arrays
    # at once (31 KB a frame each: 0.7 GB for a 300 s clip).
    crop = frames[:, dy:dy + CROP, dx:dx + CROP].astype(np.float32)
    crop /= 255.0
    crop -= MEAN
    crop /= STD
    return crop


def lip_feature_rate(clip: Clip, reads_video: bool) -> float:
    """Rows per second of a lip model's features of ``clip``: one row per video frame when the
    model reads video (the clip's own rate when it was decoded natively), else 25 Hz."""
    return float(clip.fps) if reads_video and clip.native else FPS


def _check_clip(clip: Clip, need_video: bool, need_audio: bool) -> None:
    where = clip.path or "clip"
    # A natively decoded clip is taken frame by frame (upstream's practice); a clip resampled
    # to another fixed rate would only be a mistake.
    if need_video and abs(clip.fps - FPS) > 1e-6 and not clip.native:
        raise ValueError(f"{where}: lip models read {FPS:g} fps video, the clip is {clip.fps:g} fps; "
                         "decode it with avdd.media.read_clip(path, fps=25), or natively (fps=None)")
    if clip.sample_rate != SAMPLE_RATE:
        raise ValueError(f"{where}: lip models read {SAMPLE_RATE} Hz audio, the clip is {clip.sample_rate} Hz; "
                         "decode it with avdd.media.read_clip(path, sample_rate=16000)")
    if need_video and clip.num_frames == 0:
        raise ValueError(f"{where}: no video frames; decode the clip with video=True")
    if need_audio and clip.audio.size == 0:
        raise ValueError(f"{where}: no audio samples; decode the clip with audio=True")


def _audio_features(wave: np.ndarray, kind: str) -> tuple[np.ndarray, int]:
    """(features, number of 25 Hz frames they cover)."""
    if kind == "avhubert":
        feats = avhubert_audio(wave)
        return feats, len(feats)
    if kind == "utterance_norm":
        # Auto-AVSR counts whole frames only: min(len(video), len(audio) // 640).
        return np.asarray(wave, np.float32), len(wave) // HOP
    # BRAVEn's raw audio: a partial last frame counts (it is zero-padded).
    return np.asarray(wave, np.float32), math.ceil(len(wave) / HOP)


def _cut_audio(feats: np.ndarray, kind: str, t: int, with_video: bool) -> np.ndarray:
    if kind == "avhubert":
        return feats[:t]
    if kind == "utterance_norm":
        # Auto-AVSR normalises the waveform its model reads: the cut one in the audio-visual
        # loader, the whole one for ASR (whose front-end then drops the partial last frame).
        if with_video:
            return utterance_norm(feats[: t * HOP])
        return utterance_norm(feats)[: t * HOP]
    wave = np.zeros(t * HOP, np.float32)  # cut or zero-pad to t * 640 samples
    n = min(len(feats), t * HOP)
    wave[:n] = feats[:n]
    return wave


def lip_inputs(clip: Clip, roi: Roi | None, *, audio: str = "avhubert", need_video: bool = True,
               need_audio: bool = True, landmarks: str = "auto", trim_silence: bool = False,
               recipe: str = "avhubert", common_length: bool = False) -> LipInputs:
    """Video and audio inputs of a lip backbone, cut to a common length.

    Args:
        clip: decoded clip (RGB uint8 at 25 fps or at its native rate, mono float32 at
            16 kHz).
        roi: its regions; ``roi.mouth`` (precomputed by :class:`~avdd.roi.mouth.RoiCache`)
            is used as is when made by ``recipe``, ``roi.landmarks`` skip detection,
            synthetic annotations feed the ``"auto"`` / ``"synthetic"`` landmark source.
        audio: ``"avhubert"``, ``"raw"`` or ``"utterance_norm"`` (see :class:`LipInputs`).
        need_video, need_audio: which streams to prepare (at least one).
        landmarks: landmark source name (:func:`~avdd.roi.mouth.compute_rois`).
        trim_silence: drop the leading silence of the audio and the matching video frames
            (AVH-Align's optional step; :func:`~avdd.backbones.layers.audio.trim_leading_silence`).
        recipe: the mouth-crop recipe, ``"avhubert"`` or ``"autoavsr"``.
        common_length: cut to the shorter of *both* streams even when only one is asked for
            (AV-HuBERT's rule); the clip must then hold both (the other one is only counted:
            no mouth crop is made for an audio-only pass).
    Returns:
        :class:`LipInputs` with T = the shorter stream's number of frames (the only
        stream's, when one is asked for and ``common_length`` is False).
    Raises:
        ValueError: wrong rates, missing streams, unknown audio kind, or nothing left (T = 0).
    """
    if audio not in AUDIO_KINDS:
        raise ValueError(f"unknown audio kind {audio!r}; expected one of {AUDIO_KINDS}")
    if not (need_video or need_audio):
        raise ValueError("nothing to prepare: need_video and need_audio are both False")
    count_video = need_video or common_length
    _check_clip(clip, count_video, need_audio or trim_silence or common_length)
    rois = compute_rois(clip, roi, landmarks, recipe) if need_video else None
    frames = rois.frames if rois is not None else np.zeros((0, 96, 96), np.uint8)
    wave = np.asarray(clip.audio, np.float32)
    n_video = len(frames) if need_video else clip.num_frames
    skipped = 0
    if trim_silence:
        # Per-frame arrays are cut after ROI extraction, as upstream crops the whole video first.
        frames, wave, silence = trim_leading_silence(frames, wave)
        skipped = int(silence * FPS) + 1 if silence > 0 else 0
        n_video = max(0, n_video - skipped)
    lengths = []
    if count_video:
        lengths.append(n_video)
    if need_audio or common_length:
        feats, n_audio = _audio_features(wave, audio)
        lengths.append(n_audio)
    t = min(lengths)
    if t <= 0:
        raise ValueError(f"{clip.path or 'clip'}: no frame left after "
                         f"{'trimming the leading silence' if trim_silence else 'aligning the streams'}")
    video = video_input(frames[:t]) if need_video else np.zeros((0, CROP, CROP), np.float32)
    if need_audio:
        audio_out = _cut_audio(feats, audio, t, with_video=need_video)
    else:
        audio_out = np.zeros((0, AVHUBERT_DIM) if audio == "avhubert" else (0,), np.float32)
    return LipInputs(video=video, audio=audio_out, fps=FPS, rois=rois, trimmed_frames=skipped)
