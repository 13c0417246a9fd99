"""Temporal explanation plot: a probe's per-frame score and probability over time.

One figure, used by ``avdd score --plot`` and by the paper's Fig. 3: the frame score trace,
the probability trace σ(2·score) with the decision threshold, shaded time spans (detected
ranges or ground-truth fake segments), and below them either a log-mel spectrogram (audio
models) or a few frames (visual models). Figures are built on ``matplotlib.figure.Figure``
(no pyplot state), so plotting works in worker processes and headless machines.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from avdd.heads.scoring import probability

__all__ = ["plot_timeline", "log_mel"]

#: The paper's Fig. 3 spectrogram settings (16 kHz audio, n_fft 1024, hop 512, 128 mels).
SAMPLE_RATE, N_FFT, HOP, N_MELS = 16000, 1024, 512, 128


def log_mel(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> tuple[np.ndarray, np.ndarray]:
    """Log-mel spectrogram of mono audio.

    Returns:
        ``(spec (N_MELS, F) float32 in dB, frame times (F,) seconds)``; frames of ``N_FFT``
        samples every ``HOP`` samples (32 ms at 16 kHz), Hann window.
    """
    from avdd.backbones.handcrafted import mel_filterbank

    x = np.asarray(audio, np.float32)
    n = max(1, 1 + (len(x) - N_FFT) // HOP) if len(x) >= N_FFT else 1
    x = np.pad(x, (0, max(0, (n - 1) * HOP + N_FFT - len(x))))
    idx = np.arange(N_FFT)[None] + HOP * np.arange(n)[:, None]
    power = np.abs(np.fft.rfft(x[idx] * np.hanning(N_FFT), axis=1)) ** 2
    fb = mel_filterbank(sample_rate, N_FFT, N_MELS, 0.0, sample_rate / 2)
    spec = 10 * np.log10(power @ fb.T + 1e-10)
    times = (np.arange(n) * HOP + N_FFT / 2) / sample_rate
    return spec.T.astype(np.float32), times


def _shade(ax, segments: Sequence[tuple[float, float]]) -> None:
    for a, b in segments:
        ax.axvspan(a, b, color="tab:red", alpha=0.15, lw=0)


def plot_timeline(times: np.ndarray, frame_scores: np.ndarray, *, threshold: float = 0.5,
                  segments: Sequence[tuple[float, float]] | None = None,
                  spectrogram_audio: np.ndarray | None = None,
                  spectrogram_windows: Sequence[tuple[float, float]] = (),
                  frames: Sequence[tuple[float, np.ndarray]] | None = None,
                  title: str = "") -> Figure:
    """Score and probability of every frame over time.

    Args:
        times: ``(T,)`` seconds, the time of each frame score (e.g. ``t / fps``).
        frame_scores: ``(T,)`` per-frame probe logits (w.x_t/||x_t|| + b).
        threshold: probability drawn as a dashed line on the probability panel.
        segments: ``[(start_s, end_s), ...]`` shaded on the traces (detected ranges, or the
            ground-truth fake segments for Fig. 3).
        spectrogram_audio: ``(N,)`` float mono audio at 16 kHz, aligned with ``times`` (sample 0
            at 0 s): adds a log-mel panel (n_fft 1024, hop 512, 128 mels) under the traces.
        spectrogram_windows: ``[(start_s, end_s), ...]``: show only these windows of the
            spectrogram, side by side, each as wide as it is long (the paper's Fig. 3 panels);
            empty: the whole spectrogram on the traces' time axis.
        frames: ``[(time_s, (H, W, 3) uint8 image), ...]``: adds a row of images (e.g. before,
            at and after the peak), each titled with its time and marked on the traces.
        title: figure title.

    Returns:
        The figure (save with ``fig.savefig(path)``).
    """
    times = np.asarray(times, float)
    scores = np.asarray(frame_scores, float)
    if times.shape != scores.shape or times.ndim != 1:
        raise ValueError(f"times {times.shape} and frame_scores {scores.shape} must both be (T,)")
    segments = list(segments or [])
    frames = list(frames or [])
    rows = 2 + (spectrogram_audio is not None) + bool(frames)
    ratios = [1.0, 1.0] + ([1.2] if spectrogram_audio is not None else []) + \
        ([1.4] if frames else [])
    fig = Figure(figsize=(9, 2.0 * sum(ratios)), layout="constrained")
    grid = fig.add_gridspec(rows, max(1, len(frames)), height_ratios=ratios)
    ax_s = fig.add_subplot(grid[0, :])
    ax_p = fig.add_subplot(grid[1, :], sharex=ax_s)
    prob = probability(scores)
    ax_s.plot(times, scores, color="tab:blue", lw=1.2)
    ax_s.axhline(0.0, color="grey", lw=0.6)
    ax_s.set_ylabel("frame score")
    ax_p.plot(times, prob, color="tab:orange", lw=1.2)
    ax_p.axhline(threshold, color="black", ls="--", lw=0.8, label=f"threshold {threshold:g}")
    ax_p.set_ylim(-0.02, 1.02)
    ax_p.set_ylabel("P(fake)")
    ax_p.legend(loc="upper right", fontsize="small")
    for ax in (ax_s, ax_p):
        _shade(ax, segments)
        for t, _ in frames:
            ax.axvline(t, color="tab:green", lw=0.8, ls=":")
    last = ax_p
    if spectrogram_audio is not None and spectrogram_windows:
        spec, st = log_mel(spectrogram_audio)
        windows = [(float(a), float(b)) for a, b in spectrogram_windows]
        if any(b <= a for a, b in windows):
            raise ValueError(f"spectrogram windows must end after they start: {windows}")
        sub = grid[2, :].subgridspec(1, len(windows), width_ratios=[b - a for a, b in windows],
                                     wspace=0.05)
        for k, (a, b) in enumerate(windows):
            ax_w = fig.add_subplot(sub[0, k])
            keep = (st >= a) & (st < b)
            ax_w.imshow(spec[:, keep] if keep.any() else np.zeros((N_MELS, 1)), origin="lower",
                        aspect="auto", cmap="magma", extent=(a, b, 0, N_MELS))
            _shade(ax_w, [(max(s0, a), min(s1, b)) for s0, s1 in segments if s0 < b and s1 > a])
            ax_w.set_xlabel("time (s)")
            if k:
                ax_w.set_yticks([])
            else:
                ax_w.set_ylabel("mel bin")
        last = None
    elif spectrogram_audio is not None:
        spec, st = log_mel(spectrogram_audio)
        ax_m = fig.add_subplot(grid[2, :], sharex=ax_s)
        half = HOP / SAMPLE_RATE / 2
        ax_m.imshow(spec, origin="lower", aspect="auto", cmap="magma",
                    extent=(st[0] - half, st[-1] + half, 0, N_MELS))
        ax_m.set_ylabel("mel bin")
        last = ax_m
    (ax_p if last is None else last).set_xlabel("time (s)")
    if len(times):
        ax_s.set_xlim(min(times[0], 0.0), times[-1] + (times[1] - times[0] if len(times) > 1 else 1))
    for j, (t, img) in enumerate(frames):
        ax_f = fig.add_subplot(grid[rows - 1, j])
        ax_f.imshow(np.asarray(img))
        ax_f.set_title(f"{t:.2f} s", fontsize="small")
        ax_f.axis("off")
    if title:
        fig.suptitle(title)
    return fig
