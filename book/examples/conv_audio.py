"""A backbone that lives outside avdd: a small convolutional audio encoder read from a local
directory (the example of the book's chapter "Adding a representation").

The model directory holds two files:

- ``config.json``: the architecture (:class:`ConvAudioConfig`) and what its weights are
  (``"weights": "pretrained"`` for trained ones, ``"random"`` for an untrained draw);
- ``weights.pt``: the PyTorch ``state_dict`` (read with ``weights_only=True``: a weights file
  cannot run code).

``python conv_audio.py DIR`` writes a randomly initialised model there, to try the plugin
before a trained one exists. The distribution that ships this module declares it in its
``pyproject.toml`` (``book/examples/pyproject.toml``)::

    [project.entry-points."avdd.backbones"]
    conv-audio = "conv_audio:ConvAudio"

after which ``avdd backbones`` lists ``conv-audio`` and ``conv-audio:model=DIR`` is a backbone
spec wherever avdd takes one.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avdd.backbones import Backbone
from avdd.media import Clip
from avdd.roi.regions import Roi

#: The registry name: the entry point's name, which the backbone must also call itself.
NAME = "conv-audio"


@dataclass(frozen=True)
class ConvAudioConfig:
    """The encoder's architecture, as ``config.json`` stores it.

    Attributes:
        sample_rate: the audio rate it reads (avdd decodes audio at 16 kHz).
        hop: samples per output frame: 640 at 16 kHz is 25 Hz, the rate of avdd's video frames.
        channels: feature size D.
        layers: convolution layers after the strided input layer.
        weights: ``"pretrained"`` (trained weights) or ``"random"`` (an untrained draw).
    """

    sample_rate: int = 16000
    hop: int = 640
    channels: int = 32
    layers: int = 2
    weights: str = "pretrained"

    @classmethod
    def read(cls, model: Path) -> ConvAudioConfig:
        path = model / "config.json"
        if not path.is_file():
            raise FileNotFoundError(f"conv-audio: {path} not found; model= must be a directory "
                                    "with config.json and weights.pt (python conv_audio.py DIR "
                                    "writes a random one)")
        cfg = cls(**json.loads(path.read_text()))
        if cfg.weights not in ("pretrained", "random"):
            raise ValueError(f"conv-audio: {path}: weights={cfg.weights!r}; give 'pretrained' "
                             "or 'random'")
        return cfg


def network(cfg: ConvAudioConfig) -> torch.nn.Sequential:
    """Waveform ``(1, 1, N)`` → features ``(1, channels, ~N / hop)``."""
    mods: list[torch.nn.Module] = [
        torch.nn.Conv1d(1, cfg.channels, kernel_size=2 * cfg.hop, stride=cfg.hop,
                        padding=cfg.hop // 2), torch.nn.GELU()]
    for _ in range(cfg.layers):
        mods += [torch.nn.Conv1d(cfg.channels, cfg.channels, kernel_size=3, padding=1),
                 torch.nn.GELU()]
    return torch.nn.Sequential(*mods)


class ConvAudio(Backbone):
    """Frozen convolutional audio features, ``(T, channels)`` at ``sample_rate / hop`` Hz.

    Args:
        model: the model directory (``config.json`` and ``weights.pt``).
        layer: how many layers to run (-1: all; 0: the strided input layer only), for a
            per-layer probe as the paper does for its Transformers.
    """

    modality = "audio"
    weights = "pretrained"  # the class default; each model's config.json says what it holds
    version = 1  # bump when a change of this code changes the features

    def __init__(self, model: str, layer: int = -1) -> None:
        self._describe(model, layer)
        self.net = network(self.cfg)
        state = torch.load(self.model / "weights.pt", map_location="cpu", weights_only=True)
        self.net.load_state_dict(state)
        self.net.eval().requires_grad_(False)

    @classmethod
    def unbuilt(cls, model: str, layer: int = -1) -> ConvAudio:
        """What avdd reads to name the feature stores and plan the extraction, without
        building the network: the same attributes and config as the built backbone."""
        self = cls._shell()
        self._describe(model, layer)
        return self

    def _describe(self, model: str, layer: int) -> None:
        self.model = Path(model).expanduser().resolve()
        self.cfg = ConvAudioConfig.read(self.model)
        if not -1 <= layer <= self.cfg.layers:
            raise ValueError(f"conv-audio: layer={layer}; this model has layers "
                             f"0..{self.cfg.layers} (-1: the last)")
        self.layer = self.cfg.layers if layer == -1 else layer
        self.name, self.dim = NAME, self.cfg.channels
        self.fps = self.cfg.sample_rate / self.cfg.hop
        self.weights = self.cfg.weights
        weights = self.model / "weights.pt"
        # The weights' hash, not the directory's path, keys the feature stores: the same model
        # in another folder reuses its features, new weights under the same path do not.
        self.weights_sha256 = hashlib.sha256(weights.read_bytes()).hexdigest() \
            if weights.is_file() else None

    def config(self) -> dict[str, Any]:
        """Everything that changes the features (avdd adds this plugin's distribution, version
        and code hash)."""
        return {"name": self.name, "version": self.version, **asdict(self.cfg),
                "layer": self.layer, "weights_sha256": self.weights_sha256}

    def __call__(self, clip: Clip, roi: Roi | None = None) -> np.ndarray:
        if clip.sample_rate != self.cfg.sample_rate:
            raise ValueError(f"conv-audio expects {self.cfg.sample_rate} Hz audio, got "
                             f"{clip.sample_rate}")
        audio = np.asarray(clip.audio, dtype=np.float32)
        # At least one frame's worth of samples, so that a very short clip still has a feature.
        audio = np.pad(audio, (0, max(0, 2 * self.cfg.hop - len(audio))))
        x = torch.from_numpy(audio).to(self.device)[None, None]
        with torch.inference_mode():
            y = self.net[: 2 * (self.layer + 1)](x)  # each layer is a (conv, GELU) pair
        return y[0].T.float().cpu().numpy()


def save_random(directory: Path | str, cfg: ConvAudioConfig = ConvAudioConfig(weights="random"),
                seed: int = 0) -> Path:
    """Write a randomly initialised model (``config.json``, ``weights.pt``) to ``directory``."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = network(cfg)
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
    torch.save(net.state_dict(), out / "weights.pt")
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python conv_audio.py DIR  (writes a random-weight model to DIR)")
    print(f"wrote a random conv-audio model to {save_random(sys.argv[1])}")
