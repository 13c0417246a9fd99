"""Audio inputs of the lip-reading backbones (BACKBONES.md, steps 7-8).

* AV-HuBERT: ``python_speech_features.logfbank`` with its defaults (re-implemented here in
  numpy, parity-tested against the package), 4 frames stacked -> (T, 104) at 25 Hz, layer norm
  per frame without affine parameters (``torch.nn.functional.layer_norm``, eps 1e-5).
* Auto-AVSR: the raw 16 kHz waveform normalised over the whole utterance
  (``layer_norm(x, x.shape, eps=0)`` in the paper's copy of the pipeline; Auto-AVSR's own
  repository uses eps 1e-8). BRAVEn: the raw waveform as is.
* AVH-Align's optional "trim leading silence".

Waveforms are float in [-1, 1] (as :class:`avdd.media.Clip` holds them). AV-HuBERT read int16
wav files (32768x larger); after the per-frame layer norm the scale only moves every log
energy by the same constant, which the normalisation removes (up to the 1e-5 eps and the
all-zero-frame floor).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["logfbank", "mel_filterbank", "stack_frames", "avhubert_audio", "utterance_norm",
           "leading_silence_seconds", "trim_leading_silence", "SAMPLE_RATE", "FPS", "HOP", "SILENCE_THRESHOLD"]

SAMPLE_RATE = 16000  # Hz: every lip model's audio rate
FPS = 25.0  # video frames per second
HOP = 640  # audio samples per video frame (16000 / 25)
STACK = 4  # logfbank frames (100 Hz) per video frame (25 Hz)
LAYER_NORM_EPS = 1e-5  # torch.nn.functional.layer_norm's default, as AV-HuBERT calls it
UTTERANCE_EPS = 0.0  # the paper's Auto-AVSR transform: layer_norm(x, x.shape, eps=0)
#: AVH-Align's silence rule: audio is silent until the first sample with ``|x| > 0.0005``.
SILENCE_THRESHOLD = 0.0005


def _hz2mel(hz):
    return 2595 * np.log10(1 + np.asarray(hz, np.float64) / 700.0)


def _mel2hz(mel):
    return 700 * (10 ** (np.asarray(mel, np.float64) / 2595.0) - 1)


def mel_filterbank(nfilt: int = 26, nfft: int = 512, sample_rate: int = SAMPLE_RATE,
                   lowfreq: float = 0.0, highfreq: float | None = None) -> np.ndarray:
    """Triangular mel filters ``(nfilt, nfft // 2 + 1)`` as python_speech_features builds them:
    edges at ``floor((nfft + 1) * hz / sr)`` FFT bins, peaks of 1 at the centre bins."""
    highfreq = highfreq or sample_rate / 2
    mels = np.linspace(_hz2mel(lowfreq), _hz2mel(highfreq), nfilt + 2)
    bins = np.floor((nfft + 1) * _mel2hz(mels) / sample_rate)
    bank = np.zeros((nfilt, nfft // 2 + 1))
    for j in range(nfilt):
        lo, mid, hi = bins[j], bins[j + 1], bins[j + 2]
        up = np.arange(int(lo), int(mid))
        bank[j, up] = (up - lo) / (mid - lo)
        down = np.arange(int(mid), int(hi))
        bank[j, down] = (hi - down) / (hi - mid)
    return bank


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def _frames(signal: np.ndarray, frame_len: int, step: int) -> np.ndarray:
    """``(F, frame_len)`` frames; the tail is zero-padded so the last frame is whole, and a
    signal shorter than one frame still gives one frame (python_speech_features' framesig)."""
    n = len(signal)
    count = 1 if n <= frame_len else 1 + math.ceil((n - frame_len) / step)
    padded = np.concatenate([signal, np.zeros(max(0, (count - 1) * step + frame_len - n))])
    starts = np.arange(count)[:, None] * step
    return padded[starts + np.arange(frame_len)[None, :]]


def logfbank(wave: np.ndarray, sample_rate: int = SAMPLE_RATE, *, winlen: float = 0.025,
             winstep: float = 0.01, nfilt: int = 26, nfft: int = 512, lowfreq: float = 0.0,
             highfreq: float | None = None, preemph: float = 0.97) -> np.ndarray:
    """Log mel filterbank energies, python_speech_features 0.6 ``logfbank`` with its defaults.

    Pre-emphasis ``y[n] = x[n] - 0.97 x[n-1]`` (y[0] = x[0]); 25 ms rectangular frames every
    10 ms (400 / 160 samples at 16 kHz); power spectrum ``|rfft(frame, 512)|^2 / 512``; 26 mel
    filters over [0, sr / 2]; natural log, with exact zeros replaced by float64 eps (so silence
    gives log(eps) = -36.04, not -inf).

    Args:
        wave: ``(N,)`` samples (any float dtype; integers are read as float64).
    Returns:
        ``(F, nfilt)`` float64, F = 1 + ceil((N - 400) / 160) (1 when N <= 400, including
        N = 0, where python_speech_features raises).
    """
    x = np.asarray(wave).reshape(-1)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    if x.size:
        # In the input's precision, as upstream (float32 from librosa / Clip): bit-level parity.
        x = np.append(x[0], x[1:] - preemph * x[:-1])
    frame_len, step = _round_half_up(winlen * sample_rate), _round_half_up(winstep * sample_rate)
    frames = _frames(x.astype(np.float64), frame_len, step)
    power = np.square(np.abs(np.fft.rfft(frames, nfft))) / nfft
    feat = power @ mel_filterbank(nfilt, nfft, sample_rate, lowfreq, highfreq).T
    feat = np.where(feat == 0, np.finfo(float).eps, feat)
    return np.log(feat)


def stack_frames(feats: np.ndarray, order: int = STACK) -> np.ndarray:
    """``(F, D)`` -> ``(ceil(F / order), order * D)``: zero-pad F to a multiple of ``order``,
    then concatenate each group of ``order`` consecutive frames (AV-HuBERT's ``stacker``)."""
    pad = (-len(feats)) % order
    if pad:
        feats = np.concatenate([feats, np.zeros((pad, feats.shape[1]), feats.dtype)])
    return feats.reshape(-1, order * feats.shape[1])


def avhubert_audio(wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """AV-HuBERT's audio input: ``(N,)`` 16 kHz samples -> ``(T, 104)`` float32 at 25 Hz,
    T = ceil(F / 4) with F logfbank frames (N = 640 T samples give exactly T frames).
    Each row is layer-normalised over its 104 values (biased variance, eps 1e-5, no affine)."""
    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"AV-HuBERT's filterbank expects {SAMPLE_RATE} Hz audio, got {sample_rate} Hz; "
                         "resample first (avdd.media.read_clip does)")
    feats = stack_frames(logfbank(wave, sample_rate).astype(np.float32))
    mean = feats.mean(axis=1, keepdims=True)
    var = feats.var(axis=1, keepdims=True)
    return ((feats - mean) / np.sqrt(var + LAYER_NORM_EPS)).astype(np.float32)


def utterance_norm(wave: np.ndarray, eps: float = UTTERANCE_EPS) -> np.ndarray:
    """Auto-AVSR's waveform normalisation: ``(x - mean) / sqrt(var + eps)`` over the whole
    utterance (biased variance; eps 0 as the paper's pipeline ran it), ``(N,)`` -> ``(N,)``
    float32.

    Raises:
        ValueError: a constant (e.g. all-zero) waveform with eps 0, where upstream's layer
            norm divides by zero and gives NaN features.
    """
    x = np.asarray(wave, np.float64)
    if x.size == 0:
        return x.astype(np.float32)
    var = x.var()
    if var + eps <= 0:
        raise ValueError("the audio is constant (silent): Auto-AVSR's utterance normalisation "
                         "(layer norm with eps 0, as upstream) is undefined; upstream's "
                         "features would be NaN")
    return ((x - x.mean()) / np.sqrt(var + eps)).astype(np.float32)


def leading_silence_seconds(wave: np.ndarray, threshold: float = SILENCE_THRESHOLD,
                            sample_rate: int = SAMPLE_RATE) -> float:
    """Time (s) of the first sample with ``|x| > threshold``; the whole duration when none
    is (AVH-Align's ``compute_starting_silence``)."""
    loud = np.flatnonzero(np.abs(np.asarray(wave)) > threshold)
    return (int(loud[0]) if loud.size else len(wave)) / sample_rate


def silence_frames(seconds: float, fps: float = FPS) -> int:
    """Leading frames a silence of ``seconds`` covers, the one rule every part of avdd uses
    (the lip models' trimming, the leading-silence checks, Fig. 3's clock):
    ``int(fps * seconds) + 1`` when ``seconds > 0`` (the silent frames and the frame in which
    sound starts), else 0.

    The arithmetic is AVH-Align's, float rounding included: 1.16 s at 25 fps is 29 frames
    (``25 * 1.16`` is ``28.999...``), 0.32 s is 9. Matching it exactly keeps our trimmed
    features equal to upstream's, and the analyses' silence equal to what those features lack.
    """
    return int(seconds * fps) + 1 if seconds > 0 else 0


def trim_leading_silence(video_frames: np.ndarray, wave: np.ndarray, threshold: float = SILENCE_THRESHOLD,
                         sample_rate: int = SAMPLE_RATE, fps: float = FPS
                         ) -> tuple[np.ndarray, np.ndarray, float]:
    """Drop the leading silence from both streams, with AVH-Align's frame arithmetic.

    With s = :func:`leading_silence_seconds` > 0: drop ``int(fps * s) + 1`` video frames and
    ``(int(fps * s) + 1) * hop`` audio samples (hop = sr / fps = 640), i.e. the silent frames
    plus the frame in which the sound starts. s = 0: nothing is dropped.

    Args:
        video_frames: ``(T, ...)`` per-frame array (frames, mouth crops, features).
        wave: ``(N,)`` samples.
    Returns:
        (video_frames[k:], wave[k * hop:], s) with k the number of dropped frames.
    """
    s = leading_silence_seconds(wave, threshold, sample_rate)
    if s <= 0:
        return video_frames, wave, s
    hop = int(round(sample_rate / fps))
    k = silence_frames(s, fps)
    return video_frames[k:], wave[k * hop:], s
