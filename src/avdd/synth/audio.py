"""Audio building blocks of the synthetic benchmark: levels, splicing, pitch and channel effects.

All functions take and return float32 mono arrays ``(N,)`` in [-1, 1] at 16 kHz unless stated.
Manipulations are ordinary signal processing (linear-interpolation time stretching, granular
pitch shifting, crossfaded splices), chosen because their artefacts resemble those of cheap
real-world edits; none is tuned to be easy or hard to detect.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter, resample_poly

__all__ = [
    "rms_db", "set_level", "noise_floor", "stretch", "splice", "pitch_shift", "add_noise", "band_limit",
]


def rms_db(x: np.ndarray) -> float:
    """Root-mean-square level in dBFS (-120 for silence)."""
    return float(10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-12)) if len(x) else -120.0


def set_level(x: np.ndarray, target_db: float) -> np.ndarray:
    """Scale ``x`` so that its RMS over audible samples (within 40 dB of the peak) is ``target_db``."""
    peak = np.abs(x).max() if len(x) else 0.0
    if peak == 0:
        return x.astype(np.float32)
    active = x[np.abs(x) > peak * 0.01]
    gain = 10 ** ((target_db - rms_db(active)) / 20)
    return np.clip(x * gain, -1, 1).astype(np.float32)


def noise_floor(rng: np.random.Generator, n: int, level_db: float) -> np.ndarray:
    """``(n,)`` room/microphone noise: gently low-passed Gaussian noise at ``level_db`` dBFS RMS."""
    white = rng.standard_normal(n).astype(np.float32)
    coloured = lfilter([1.0], [1.0, -0.7], white)  # one-pole low-pass: rooms hum more than they hiss
    return (coloured / (coloured.std() + 1e-9) * 10 ** (level_db / 20)).astype(np.float32)


def stretch(x: np.ndarray, n: int) -> np.ndarray:
    """Resample ``x`` to exactly ``n`` samples by linear interpolation (tempo and pitch change
    together, by len(x) / n, as in a naive speed change)."""
    if n <= 0:
        return np.zeros(0, np.float32)
    src = np.linspace(0, len(x) - 1, n)
    return np.interp(src, np.arange(len(x)), x).astype(np.float32)


def splice(base: np.ndarray, insert: np.ndarray, start: int, fade: int = 80) -> np.ndarray:
    """Replace ``base[start : start + len(insert)]`` with ``insert``, crossfading ``fade``
    samples (5 ms at 16 kHz) at both ends *inside* the replaced span, so samples outside it are
    untouched."""
    out = base.copy()
    n = len(insert)
    fade = min(fade, n // 2)
    w = np.ones(n, np.float32)
    if fade:
        ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, fade, dtype=np.float32))
        w[:fade], w[-fade:] = ramp, ramp[::-1]
    out[start : start + n] = w * insert + (1 - w) * base[start : start + n]
    return out


def pitch_shift(x: np.ndarray, factor: float, sample_rate: int = 16000, grain_s: float = 0.04) -> np.ndarray:
    """Granular pitch shift by ``factor`` (> 1 raises pitch) keeping the duration.

    Each Hann-windowed grain (``grain_s`` long, 50 % overlap) is read ``factor`` times faster
    and overlap-added at its original place: a cheap effect whose phasiness and grain
    discontinuities are typical of low-cost voice changers.
    """
    length = int(grain_s * sample_rate)
    hop = length // 2
    window = np.hanning(length).astype(np.float32)
    padded = np.concatenate([x, np.zeros(int(length * factor) + length, np.float32)])
    out = np.zeros(len(x) + length, np.float32)
    norm = np.zeros(len(x) + length, np.float32)
    read = np.arange(length) * factor
    for start in range(0, len(x), hop):
        grain = np.interp(start + read, np.arange(len(padded)), padded)
        out[start : start + length] += window * grain
        norm[start : start + length] += window
    return (out[: len(x)] / np.maximum(norm[: len(x)], 1e-3)).astype(np.float32)


def add_noise(x: np.ndarray, rng: np.random.Generator, snr_db: float, colour: str = "white") -> np.ndarray:
    """Add white or pink-ish ("pink") noise at ``snr_db`` below the signal's RMS."""
    noise = rng.standard_normal(len(x)).astype(np.float32)
    if colour == "pink":
        noise = lfilter([1.0], [1.0, -0.95], noise).astype(np.float32)
    noise *= 10 ** ((rms_db(x) - snr_db) / 20) / (noise.std() + 1e-9)
    return np.clip(x + noise, -1, 1).astype(np.float32)


def band_limit(x: np.ndarray, sample_rate: int = 16000, narrow_rate: int = 8000) -> np.ndarray:
    """Pass through a ``narrow_rate`` channel (telephone / low-quality upload) and back."""
    down = resample_poly(x, narrow_rate, sample_rate)
    up = resample_poly(down, sample_rate, narrow_rate)[: len(x)]
    return np.pad(up, (0, len(x) - len(up))).astype(np.float32)
