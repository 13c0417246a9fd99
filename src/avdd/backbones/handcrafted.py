"""Handcrafted 25 Hz features that need no weights: the demo's stand-ins for real backbones.

- ``logmel``: log-mel spectrogram at 50 Hz with each frame's mean log-energy removed (its
  spectral shape, whatever its level), consecutive frame pairs concatenated to 25 Hz (the
  same 50 → 25 Hz pairing the paper applies to Wav2Vec2). Each frame depends on its own 25 ms
  only: per-clip normalisation (CMVN, versions 2-3) made every frame depend on the whole clip,
  so that a cue in a few frames (a replaced word's missing high band) moved every *other*
  frame of the clip, and the probe's frame scores pointed away from the fake segment (Fig. 2's
  localisation AUC fell below chance on the synthetic benchmark).
- ``mouth-pixels``: a small colour image of the mouth region (its spatial pattern and its mean
  colour) plus its signed frame-to-frame change. A long clip is read a window at a time
  (:attr:`~avdd.backbones.base.Backbone.streams_long_clips`): the crop side is one for the
  whole clip (from its face boxes), and the motion crosses windows, so each window's crops
  (1.7 KB a frame) are kept and the features made from all of them.

Both are centred: the probe L2-normalises every frame, and features dominated by a constant
offset (raw log-energies are all negative, raw pixels all positive) would point every frame
in nearly the same direction and leave the probe little to separate.

They are honest baselines, not imitations of SSL features: whatever the probe finds in them is
what the book shows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from avdd.backbones.base import Backbone, WindowReader, register
from avdd.backbones.layers.frames import pair_frames
from avdd.media import Clip
from avdd.roi.regions import Roi, mouth_crops, mouth_side


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float,
                   fmax: float) -> np.ndarray:
    """Triangular HTK-mel filters, ``(n_mels, n_fft // 2 + 1)``."""

    def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def mel_to_hz(m: np.ndarray) -> np.ndarray:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs[None] - lo) / (mid - lo)
    down = (hi - freqs[None]) / (hi - mid)
    return np.maximum(0.0, np.minimum(up, down)).astype(np.float32)


@dataclass(frozen=True)
class LogMelConfig:
    """Log-mel settings. Defaults: 25 ms windows every 20 ms (50 Hz), 80 mels, 20–7600 Hz."""

    sample_rate: int = 16000
    n_fft: int = 512
    win_length: int = 400
    hop_length: int = 320
    n_mels: int = 80
    fmin: float = 20.0
    fmax: float = 7600.0


@register("logmel")
class LogMel(Backbone):
    """Log-mel spectrogram, 25 Hz, ``2 * n_mels`` dims (160 by default)."""

    modality = "audio"
    weights = "handcrafted"
    version = 4  # 2: per-clip CMVN; 3: the whole waveform whatever else the job decodes;
    # 4: per-frame level removal instead of per-clip CMVN (module docstring)

    def __init__(self, config: LogMelConfig | None = None) -> None:
        self.cfg = config or LogMelConfig()
        self.name = "logmel"
        self.dim = 2 * self.cfg.n_mels
        self.fps = self.cfg.sample_rate / (2 * self.cfg.hop_length)
        self._fb = mel_filterbank(self.cfg.sample_rate, self.cfg.n_fft, self.cfg.n_mels,
                                  self.cfg.fmin, self.cfg.fmax)
        self._window = np.hanning(self.cfg.win_length).astype(np.float32)

    @classmethod
    def unbuilt(cls, config: LogMelConfig | None = None) -> LogMel:
        """For :func:`avdd.backbones.describe`: the backbone itself, as it has no network
        (building it is computing one 80 × 257 filterbank)."""
        return cls(config)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, **asdict(self.cfg)}

    def __call__(self, clip: Clip, roi: Roi | None = None) -> np.ndarray:
        c = self.cfg
        if clip.sample_rate != c.sample_rate:
            raise ValueError(f"logmel expects {c.sample_rate} Hz audio, got {clip.sample_rate}")
        x = np.asarray(clip.audio, dtype=np.float32)
        n = max(1, -(-len(x) // c.hop_length))  # one 50 Hz frame per started hop
        x = np.pad(x, (0, n * c.hop_length + c.win_length - len(x)))
        idx = np.arange(c.win_length)[None] + c.hop_length * np.arange(n)[:, None]
        spec = np.abs(np.fft.rfft(x[idx] * self._window, n=c.n_fft)) ** 2
        mel = np.log(spec.astype(np.float32) @ self._fb.T + 1e-6)
        # Each frame's mean log-energy removed: the level (and the constant negative offset
        # that would point every frame one way) goes, the spectral shape stays, and no frame
        # depends on the rest of the clip.
        mel = mel - mel.mean(1, keepdims=True)
        return pair_frames(mel.astype(np.float32))


@dataclass(frozen=True)
class MouthPixelsConfig:
    """Mouth-region descriptor. Defaults: a 12×12 colour crop of 0.6 face widths."""

    grid: int = 12
    rel_size: float = 0.6


@register("mouth-pixels")
class MouthPixels(Backbone):
    """Per frame, 25 Hz, ``4 grid² + 3`` dims (579 by default):

    - the mouth crop's spatial pattern: colour values minus the crop's mean colour (``3 grid²``);
    - the crop's mean colour, centred on mid-grey and weighted by ``grid`` so that these three
      numbers weigh like a block of ``grid²`` pixels after L2 normalisation (``3``);
    - the signed change of its grey image since the previous frame (``grid²``).
    """

    modality = "visual"
    weights = "handcrafted"
    version = 2  # 2: centred pattern + weighted mean colour + signed motion

    def __init__(self, config: MouthPixelsConfig | None = None, fps: float = 25.0) -> None:
        self.cfg = config or MouthPixelsConfig()
        self.name = "mouth-pixels"
        self.dim = 4 * self.cfg.grid**2 + 3
        self.fps = fps

    @classmethod
    def unbuilt(cls, config: MouthPixelsConfig | None = None, fps: float = 25.0) -> MouthPixels:
        """For :func:`avdd.backbones.describe`: the backbone itself, as it has no network."""
        return cls(config, fps)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "fps": self.fps, **asdict(self.cfg)}

    def feature_rate(self, clip: Clip) -> float:
        # One row per decoded frame: a natively decoded clip's features are at its own rate.
        return float(clip.fps) if clip.native else self.fps

    #: Its crop side is the median face width of the whole clip and its motion the change
    #: since the previous frame: a long clip goes to :class:`MouthWindows`.
    streams_long_clips = True

    def window_reader(self, roi: Roi | None, frames: Callable[[], int]) -> MouthWindows:
        return MouthWindows(self, roi, frames)

    def __call__(self, clip: Clip, roi: Roi | None = None) -> np.ndarray:
        return self.features_of(mouth_crops(clip.video, roi, grid=self.cfg.grid,
                                            rel_size=self.cfg.rel_size))

    def features_of(self, crops: np.ndarray) -> np.ndarray:
        """``(T, dim)`` float32 features of a clip's ``(T, grid, grid, 3)`` mouth crops
        (:func:`avdd.roi.regions.mouth_crops`)."""
        g = self.cfg.grid
        t = len(crops)
        colour = crops.mean(axis=(1, 2))  # (T, 3)
        pattern = (crops - colour[:, None, None]).reshape(t, -1)
        grey = crops.mean(axis=-1).reshape(t, -1)
        # Motion of the first frame is unknown: use that of the second (zero for 1 frame).
        diff = np.diff(grey, axis=0, prepend=grey[:1])
        if t > 1:
            diff[0] = diff[1]
        return np.concatenate([pattern, g * (colour - 0.5), diff], axis=1).astype(np.float32)


class MouthWindows(WindowReader):
    """mouth-pixels of a clip read in windows: each window's ``(n, grid, grid, 3)`` crops
    at the whole clip's crop side (:func:`avdd.roi.regions.mouth_side`: its face boxes and
    frame count, known before any pixel), the features from all crops at the end (the same
    :meth:`MouthPixels.features_of` as a whole clip's, so the same bits; its first frame's
    motion is the second's). Holds one window's crops being made and 1.7 KB a frame."""

    def __init__(self, backbone: MouthPixels, roi: Roi | None,
                 frames: Callable[[], int]) -> None:
        super().__init__(backbone, roi)
        self.mouth = backbone
        self._frames = frames
        self._k: int | None = None  # pixels per grid cell, from the first window on
        self._crops: list[np.ndarray] = []

    def read(self, window: Clip, roi: Roi | None) -> None:
        cfg = self.mouth.cfg
        if self._k is None:
            self._k = mouth_side(self.roi, self._frames, window.video.shape[2], grid=cfg.grid,
                                 rel_size=cfg.rel_size)
        self._crops.append(mouth_crops(window.video, roi, grid=cfg.grid, rel_size=cfg.rel_size,
                                       k=self._k))

    def features(self) -> np.ndarray:
        return self.mouth.features_of(np.concatenate(self._crops))
