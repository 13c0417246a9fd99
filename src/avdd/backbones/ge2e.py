"""The GE2E speaker encoder: one genuinely pretrained audio encoder, beside its random twin.

The paper asks whether pretrained features carry deepfake cues that random ones do not. The
demo's other backbones are tiny and random, so it cannot ask that; this one it can. The
weights are those of Resemblyzer's voice encoder (a GE2E model, Wan et al. 2018, trained by
Resemble AI for speaker verification), which ship inside the ``resemblyzer`` wheel on PyPI
(``resemblyzer/pretrained.pt``, Apache-2.0; README.md, "Third-party weights"). It is
**supervised** (speaker verification), **not self-supervised**: Table 1 says so.

Only the weights file is read, with ``torch.load(weights_only=True)``; none of the package's
code runs (importing it would need librosa and webrtcvad, which avdd does not install). The
network and its input are written here from the package's published facts:

- input: the waveform at 16 kHz, its loudness raised (never lowered) to -30 dBFS as the
  package's ``preprocess_wav`` does (the encoder was trained on such input); the package's
  voice-activity trimming of long silences is *not* applied, as it would shift the features
  off the video's clock;
- a 40-band mel **power** spectrogram (not log): 25 ms periodic Hann windows every 10 ms
  (400 / 160 samples), 400-point FFT, centred frames with reflect padding (librosa's
  ``melspectrogram`` defaults of the versions the encoder was trained with), Slaney-scale
  filters with Slaney area normalisation over 0-8 kHz;
- ``nn.LSTM(40, 256, num_layers=3, batch_first=True)`` → ``Linear(256, 256)`` → ReLU → L2
  normalisation. Resemblyzer applies the projection to the last LSTM state of 1.6 s windows;
  here it is applied at *every* 10 ms step of one pass over the whole clip, so step t gives
  the speaker embedding of the audio up to t (the LSTM is causal).

Per-frame features at 25 Hz: each video frame (640 samples) covers four 10 ms steps; their
four L2-normalised embeddings are averaged and the mean is L2-normalised again, the rule by
which Resemblyzer combines partial embeddings into an utterance embedding. So yes, the
per-frame projection is normalised (twice: per step, then per 25 Hz frame); a frame whose
four projections are all zero (ReLU) stays zero.

Registry names:
- ``ge2e``: the pretrained weights (``pip install --no-deps resemblyzer==0.1.4``).
- ``ge2e-random``: the same architecture with seeded random init (PyTorch's default LSTM and
  Linear init), the twin that asks what the training added.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from avdd.backbones.base import Backbone, register
from avdd.backbones.checkpoints import load_checked, read_state_dict
from avdd.backbones.hub import WeightsNotFound, frozen, seeded
from avdd.media import Clip
from avdd.roi.regions import Roi

PACKAGE = "resemblyzer"  # the PyPI wheel the weights ship in
WEIGHTS_FILE = "pretrained.pt"  # inside the package folder
INSTALL = "pip install --no-deps resemblyzer==0.1.4"
#: Keys of the checkpoint that are not the encoder: GE2E's similarity scale w and bias b,
#: learned by its loss and used only in training.
LOSS_KEYS = ("similarity_weight", "similarity_bias")
NORM_EPS = 1e-12  # below this an embedding is treated as zero (not divided by)


@dataclass(frozen=True)
class GE2EConfig:
    """The encoder and its front end. Defaults: Resemblyzer 0.1.4's ``hparams`` (they are the
    pretrained weights' own; the random twin keeps them so that the two differ in weights only).

    Attributes:
        sample_rate: Hz. window: STFT window and FFT length, samples (25 ms).
        hop: STFT hop, samples (10 ms: 100 Hz). n_mels: mel bands (0 Hz to sample_rate / 2).
        target_dbfs: loudness the waveform is raised to (RMS in dB re full scale).
        hidden, layers: the LSTM's size and depth. embedding: the projection's size.
        hops_per_frame: 10 ms steps averaged into one output frame (4: 25 Hz).
    """

    sample_rate: int = 16000
    window: int = 400
    hop: int = 160
    n_mels: int = 40
    target_dbfs: float = -30.0
    hidden: int = 256
    layers: int = 3
    embedding: int = 256
    hops_per_frame: int = 4


# -- front end --------------------------------------------------------------------------------
# Slaney's mel scale (Auditory Toolbox): linear below 1 kHz (200/3 Hz per mel), logarithmic
# above (27 mels per factor 6.4), the scale librosa uses by default (htk=False).
_F_SP = 200.0 / 3.0
_LOG_HZ = 1000.0
_LOG_MEL = _LOG_HZ / _F_SP
_LOG_STEP = math.log(6.4) / 27.0


def hz_to_slaney(hz: np.ndarray | float) -> np.ndarray:
    """Hz → Slaney mels (array of float64)."""
    f = np.asarray(hz, np.float64)
    logpart = _LOG_MEL + np.log(np.maximum(f, _LOG_HZ) / _LOG_HZ) / _LOG_STEP
    return np.where(f < _LOG_HZ, f / _F_SP, logpart)


def slaney_to_hz(mel: np.ndarray | float) -> np.ndarray:
    """Slaney mels → Hz (the inverse of :func:`hz_to_slaney`)."""
    m = np.asarray(mel, np.float64)
    return np.where(m < _LOG_MEL, m * _F_SP, _LOG_HZ * np.exp(_LOG_STEP * (m - _LOG_MEL)))


def slaney_mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0,
                          fmax: float | None = None) -> np.ndarray:
    """Triangular filters on the Slaney mel scale, each scaled to unit area over Hz
    (``2 / (f_hi - f_lo)``, Slaney's normalisation): ``(n_mels, n_fft // 2 + 1)`` float32.

    The triangles are evaluated at the FFT bins' frequencies (0 .. sample_rate / 2), from
    edges equally spaced in mels between ``fmin`` and ``fmax`` (default sample_rate / 2).
    """
    fmax = sample_rate / 2 if fmax is None else fmax
    edges = slaney_to_hz(np.linspace(hz_to_slaney(fmin), hz_to_slaney(fmax), n_mels + 2))
    freqs = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs[None] - lo) / (mid - lo)
    falling = (hi - freqs[None]) / (hi - mid)
    bank = np.maximum(0.0, np.minimum(rising, falling)) * (2.0 / (hi - lo))
    return bank.astype(np.float32)


def raise_volume(wave: np.ndarray, target_dbfs: float) -> np.ndarray:
    """``(N,)`` → ``(N,)`` float32 scaled so that its RMS is ``target_dbfs`` dB re full scale,
    if it is quieter; louder or silent (all-zero) audio is returned unchanged."""
    x = np.asarray(wave, np.float32)
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0
    if rms <= 0.0:
        return x
    gain_db = target_dbfs - 20.0 * math.log10(rms)
    return x if gain_db <= 0 else (x * np.float32(10.0 ** (gain_db / 20.0)))


def frame_count(n_samples: int, cfg: GE2EConfig) -> int:
    """Output frames of a clip of ``n_samples``: one per started video frame
    (``hop * hops_per_frame`` = 640 samples), at least one."""
    return max(1, -(-n_samples // (cfg.hop * cfg.hops_per_frame)))


def mel_frames(wave: np.ndarray, cfg: GE2EConfig) -> np.ndarray:
    """The encoder's input: ``(N,)`` 16 kHz float samples → ``(4 T, n_mels)`` float32 mel
    power at 100 Hz, T = :func:`frame_count` (N).

    The waveform is loudness-raised (:func:`raise_volume`) and zero-padded at the end to
    ``640 T`` samples, so that every output frame has its four steps; step i is centred on
    sample ``160 i`` (reflect padding of half a window at both ends, as librosa centres).
    """
    t = frame_count(len(wave), cfg)
    x = raise_volume(wave, cfg.target_dbfs)
    x = np.pad(x, (0, t * cfg.hop * cfg.hops_per_frame - len(x)))
    x = np.pad(x, cfg.window // 2, mode="reflect")
    steps = t * cfg.hops_per_frame
    idx = np.arange(cfg.window)[None] + cfg.hop * np.arange(steps)[:, None]
    # Periodic Hann (scipy's get_window("hann", N), librosa's STFT window), not np.hanning's
    # symmetric one.
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(cfg.window) / cfg.window)
    power = np.abs(np.fft.rfft(x[idx] * window, n=cfg.window)) ** 2
    bank = slaney_mel_filterbank(cfg.sample_rate, cfg.window, cfg.n_mels)
    return (power @ bank.T.astype(np.float64)).astype(np.float32)


# -- network ----------------------------------------------------------------------------------
def unit_rows(x: torch.Tensor) -> torch.Tensor:
    """``(..., D)`` → the same with each row L2-normalised (zero rows stay zero)."""
    return x / x.norm(dim=-1, keepdim=True).clamp_min(NORM_EPS)


class GE2EEncoder(nn.Module):
    """``nn.LSTM(n_mels, hidden, layers)`` + ``Linear(hidden, embedding)`` + ReLU, with the
    attribute names of the released state dict (``lstm.*``, ``linear.*``)."""

    def __init__(self, cfg: GE2EConfig) -> None:
        super().__init__()
        self.lstm = nn.LSTM(cfg.n_mels, cfg.hidden, cfg.layers, batch_first=True)
        self.linear = nn.Linear(cfg.hidden, cfg.embedding)
        self.relu = nn.ReLU()

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        """``(B, F, n_mels)`` mel power → ``(B, F, embedding)``: the L2-normalised speaker
        embedding of each prefix ``mels[:, :f + 1]`` (all steps of one causal pass)."""
        states, _ = self.lstm(mels)
        return unit_rows(self.relu(self.linear(states)))


def pool_steps(steps: torch.Tensor, k: int) -> torch.Tensor:
    """``(B, k T, D)`` unit rows → ``(B, T, D)``: the mean of each k consecutive rows,
    L2-normalised (Resemblyzer's rule for combining partial embeddings)."""
    b, f, d = steps.shape
    return unit_rows(steps.reshape(b, f // k, k, d).mean(dim=2))


def weights_path() -> Path:
    """Where the installed ``resemblyzer`` package keeps ``pretrained.pt``.

    Found with ``importlib.util.find_spec``, which locates the package without importing it
    (``importlib.resources.files`` would import it, and its ``__init__`` needs librosa).

    Raises:
        WeightsNotFound: the package (or its weights file) is not installed; the one-line
            message gives the install command.
    """
    spec = importlib.util.find_spec(PACKAGE)
    path = Path(spec.origin).parent / WEIGHTS_FILE if spec and spec.origin else None
    if path is None or not path.is_file():
        raise WeightsNotFound(f"ge2e: the GE2E weights ({PACKAGE}/{WEIGHTS_FILE}) are not "
                              f"installed; run `{INSTALL}`")
    return path


def weights_source() -> str:
    """The weights' provenance for :meth:`GE2E.config`: package, version and file (no
    machine-specific path, so feature stores keep their key across machines)."""
    weights_path()
    return f"{PACKAGE}=={importlib.metadata.version(PACKAGE)}:{PACKAGE}/{WEIGHTS_FILE}"


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    """The encoder's state dict from Resemblyzer's checkpoint (``{"step", "model_state",
    "optimizer_state"}``), read with ``weights_only=True`` and without the loss's keys."""
    state = read_state_dict(path, "GE2E (resemblyzer)", INSTALL)
    return {k: v for k, v in state.items() if k not in LOSS_KEYS}


# -- backbones --------------------------------------------------------------------------------
@register("ge2e")
class GE2E(Backbone):
    """Pretrained GE2E speaker encoder → ``(T, 256)`` L2-normalised rows at 25 Hz,
    T = ceil(N / 640) for N samples."""

    modality = "audio"
    weights = "pretrained"
    version = 1

    def __init__(self) -> None:
        self._describe("ge2e")
        self.source = weights_source()
        net = GE2EEncoder(self.cfg)
        load_checked(net, load_weights(weights_path()), self.source)
        self.net = frozen(net)

    @classmethod
    def unbuilt(cls) -> GE2E:
        """For :func:`avdd.backbones.describe`: the description, the weights located (so a
        missing package fails here as the build would) but not read, no network."""
        self = cls._shell()
        self._describe("ge2e")
        self.source = weights_source()
        return self

    def _describe(self, name: str) -> None:
        self.cfg = GE2EConfig()
        self.name = name
        self.dim = self.cfg.embedding
        self.fps = self.cfg.sample_rate / (self.cfg.hop * self.cfg.hops_per_frame)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "weights": self.weights,
                "source": self.source, **asdict(self.cfg)}

    def _check(self, clip: Clip) -> None:
        if clip.sample_rate != self.cfg.sample_rate:
            raise ValueError(f"{self.name} expects {self.cfg.sample_rate} Hz audio, got "
                             f"{clip.sample_rate}")

    def _features(self, waves: list[np.ndarray]) -> list[np.ndarray]:
        """Equal-length waveforms → one ``(T, dim)`` float32 array each, one forward pass."""
        mels = torch.from_numpy(np.stack([mel_frames(w, self.cfg) for w in waves]))
        with torch.inference_mode():
            out = pool_steps(self.net(mels.to(self.device)), self.cfg.hops_per_frame)
        return list(out.float().cpu().numpy())

    def __call__(self, clip: Clip, roi: Roi | None = None) -> np.ndarray:
        self._check(clip)
        return self._features([clip.audio])[0]

    def batch_key(self, clip: Clip) -> int:
        # Equal lengths share a pass without padding, which would run the LSTM on extra steps.
        return len(clip.audio)

    def batch(self, clips, rois) -> list[np.ndarray]:
        for c in clips:
            self._check(c)
        return self._features([c.audio for c in clips])


@register("ge2e-random")
class GE2ERandom(GE2E):
    """The GE2E architecture and front end with weights drawn from ``seed`` (PyTorch's
    default LSTM/Linear init: uniform in ±1/√256)."""

    weights = "random"

    def __init__(self, *, seed: int = 0) -> None:
        self._describe("ge2e-random")
        self.seed = seed
        self.net = frozen(seeded(lambda: GE2EEncoder(self.cfg), seed))

    @classmethod
    def unbuilt(cls, *, seed: int = 0) -> GE2ERandom:
        """For :func:`avdd.backbones.describe`: the description without the network."""
        self = cls._shell()
        self._describe("ge2e-random")
        self.seed = seed
        return self

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "weights": self.weights,
                "seed": self.seed, **asdict(self.cfg)}
