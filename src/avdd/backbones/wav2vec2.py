"""Wav2Vec2-family audio features (the paper's XLS-R 2B row), 25 Hz.

``last_hidden_state`` (after the final LayerNorm) is 50 Hz; consecutive frames are concatenated
into 25 Hz vectors of ``2 * hidden`` dims (3840 for XLS-R 2B), an odd last frame duplicated
(:func:`avdd.backbones.layers.frames.pair_frames`). Any Wav2Vec2 / HuBERT / WavLM checkpoint
loads through ``AutoModel``; the feature extractor's per-utterance normalisation is applied
when its config asks for it (``do_normalize``).

``layer=k`` takes the encoder's hidden state ``k`` instead (a reviewer's multi-layer
question): 0 = the projected CNN features plus the convolutional position embedding (the
Transformer's input), k = 1..L the output of Transformer layer k; ``None`` / -1 / L is the
default last layer (for these pre-LN models ``hidden_states[L]`` is ``last_hidden_state``, with
the final LayerNorm). Intermediate states (0 < k < L) are the raw residual stream, before any
LayerNorm. The per-frame L2 normalisation of every head makes their scale irrelevant.

Registry names:
- ``wav2vec2``: pretrained, ``model=`` hub name or local directory.
- ``wav2vec2-random``: the same architecture (config only) with seeded random weights.
- ``wav2vec2-tiny-random``: a 32-d, 2-layer model for demos and tests.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from avdd.backbones.base import Backbone, describe, register
from avdd.backbones.hub import RandomInit, from_pretrained, frozen
from avdd.backbones.layers.frames import pair_frames
from avdd.media import Clip
from avdd.roi.regions import Roi

DEFAULT_MODEL = "facebook/wav2vec2-xls-r-2b"
SAMPLE_RATE = 16000
MIN_SAMPLES = 400  # receptive field of the conv stack: shorter audio gives no frame at all


def tiny_config() -> Any:
    """The tiny config of BACKBONES.md (hidden 32, 2 layers, 16-channel conv stack)."""
    from transformers import Wav2Vec2Config

    return Wav2Vec2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                          intermediate_size=64, conv_dim=(16,) * 7, do_stable_layer_norm=True,
                          feat_extract_norm="layer", num_conv_pos_embeddings=16,
                          num_conv_pos_embedding_groups=4)


def _resolve_layer(layer: int | None, n_layers: int) -> int | None:
    """``layer`` as an index 0..L-1 into ``hidden_states``, or ``None`` for the last layer
    (given as ``None``, -1 or L: all three are ``last_hidden_state``)."""
    if layer is None:
        return None
    layer = int(layer)
    if not -(n_layers + 1) <= layer <= n_layers:
        raise ValueError(f"layer={layer}: this model has hidden states 0..{n_layers} "
                         "(0 = Transformer input, k = output of layer k)")
    layer %= n_layers + 1
    return None if layer == n_layers else layer


@register("wav2vec2")
class Wav2Vec2(Backbone):
    """Pretrained Wav2Vec2-style encoder → ``(ceil(T50 / 2), 2 * hidden)`` at 25 Hz."""

    modality = "audio"
    weights = "pretrained"
    #: 2: the whole decoded waveform, as the paper's extractor reads it (audio was cut to the
    #: video's length when a job decoded both streams, so features depended on the job).
    version = 2

    def __init__(self, model: str = DEFAULT_MODEL, *, layer: int | None = None,
                 name: str = "wav2vec2") -> None:
        from transformers import AutoFeatureExtractor, AutoModel

        self.source = str(model)
        self.name = name
        net = from_pretrained(AutoModel.from_pretrained, self.source, "Wav2Vec2 model")
        extractor = from_pretrained(AutoFeatureExtractor.from_pretrained, self.source,
                                    "Wav2Vec2 feature extractor")
        self._setup(net, bool(getattr(extractor, "do_normalize", True)), layer)

    @classmethod
    def unbuilt(cls, model: str = DEFAULT_MODEL, *, layer: int | None = None,
                name: str = "wav2vec2") -> Wav2Vec2:
        """What ``cls(model, ...)`` describes itself by, from ``config.json`` and the
        feature extractor's config only (no network, no weights): for
        :func:`avdd.backbones.describe`."""
        from transformers import AutoConfig, AutoFeatureExtractor

        self = cls._shell()
        self.source = str(model)
        self.name = name
        config = from_pretrained(AutoConfig.from_pretrained, self.source, "Wav2Vec2 config")
        extractor = from_pretrained(AutoFeatureExtractor.from_pretrained, self.source,
                                    "Wav2Vec2 feature extractor")
        self._describe(config, bool(getattr(extractor, "do_normalize", True)), layer)
        return self

    def _setup(self, net: torch.nn.Module, normalize: bool, layer: int | None = None) -> None:
        self.net = frozen(net)
        self._describe(net.config, normalize, layer)

    def _describe(self, config: Any, normalize: bool, layer: int | None) -> None:
        """Every attribute :meth:`config` and the description read, from the model config."""
        self.normalize = normalize
        self.hidden = int(config.hidden_size)
        self.layer = _resolve_layer(layer, int(config.num_hidden_layers))
        self.dim = 2 * self.hidden
        self.fps = SAMPLE_RATE / 320 / 2  # conv stack hop 320 samples = 50 Hz, paired → 25 Hz

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version,
                "model": self.source, "weights": self.weights,
                "hidden": self.hidden, "dim": self.dim, "fps": self.fps,
                "normalize": self.normalize, "pairing": "concat-50Hz-pairs-dup-odd-last",
                # Only a non-default layer is recorded: last-layer stores keep their old keys.
                **({} if self.layer is None else {"layer": self.layer})}

    def _prepare(self, audio: np.ndarray) -> np.ndarray:
        """``(N,)`` float 16 kHz → the model input (padded to one frame, normalised)."""
        x = np.asarray(audio, dtype=np.float32)
        if len(x) < MIN_SAMPLES:  # pad silence so a very short clip still gives one frame
            x = np.pad(x, (0, MIN_SAMPLES - len(x)))
        if self.normalize:  # = Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm
            x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
        return x

    def _frames50(self, inputs: list[np.ndarray]) -> np.ndarray:
        """``B`` prepared inputs of one length → ``(B, T50, hidden)`` float32."""
        x = torch.from_numpy(np.stack(inputs)).to(self.device)
        with torch.inference_mode():
            if self.layer is None:
                return self.net(x).last_hidden_state.float().cpu().numpy()
            out = self.net(x, output_hidden_states=True)
            return out.hidden_states[self.layer].float().cpu().numpy()

    def frames50(self, audio: np.ndarray) -> np.ndarray:
        """``(N,)`` float 16 kHz → ``(T50, hidden)`` float32, T50 = ⌊(N − 400) / 320⌋ + 1
        (N < 400 is zero-padded to one frame)."""
        return self._frames50([self._prepare(audio)])[0]

    def _check(self, clip: Clip) -> None:
        if clip.sample_rate != SAMPLE_RATE:
            raise ValueError(f"{self.name} expects {SAMPLE_RATE} Hz audio, got {clip.sample_rate}")

    def __call__(self, clip: Clip, roi: Roi | None = None) -> np.ndarray:
        self._check(clip)
        return pair_frames(self.frames50(clip.audio)).astype(np.float32)

    def batch_key(self, clip: Clip) -> int:
        # Equal-length clips go through one forward pass without padding: padding would
        # change the per-utterance normalisation and, without an attention mask, the features.
        return max(len(clip.audio), MIN_SAMPLES)

    def batch(self, clips, rois) -> list[np.ndarray]:
        for c in clips:
            self._check(c)
        out = self._frames50([self._prepare(c.audio) for c in clips])
        return [pair_frames(f).astype(np.float32) for f in out]


@register("wav2vec2-random")
class Wav2Vec2Random(RandomInit, Wav2Vec2):
    """The architecture of ``model`` (its config only) with random weights seeded by ``seed``."""

    weights = "random"

    def __init__(self, model: str = DEFAULT_MODEL, *, seed: int = 0, config: Any = None,
                 layer: int | None = None, name: str = "wav2vec2-random") -> None:
        from transformers import AutoConfig, AutoModel

        _, net = self._random_net(model, config, seed, name, AutoConfig.from_pretrained,
                                  AutoModel.from_config, "Wav2Vec2 config")
        self._setup(net, normalize=True, layer=layer)

    @classmethod
    def unbuilt(cls, model: str = DEFAULT_MODEL, *, seed: int = 0, config: Any = None,
                layer: int | None = None, name: str = "wav2vec2-random") -> Wav2Vec2Random:
        """``cls(...)`` without its network (the config is resolved as the build resolves it)."""
        from transformers import AutoConfig

        self = cls._shell()
        config = self._random_arch(model, config, seed, name, AutoConfig.from_pretrained,
                                   "Wav2Vec2 config")
        self._describe(config, normalize=True, layer=layer)
        return self


def _tiny_unbuilt(*, seed: int = 0, layer: int | None = None) -> Wav2Vec2Random:
    return Wav2Vec2Random.unbuilt(config=tiny_config(), seed=seed, layer=layer,
                                  name="wav2vec2-tiny-random")


@register("wav2vec2-tiny-random", unbuilt=_tiny_unbuilt)
def wav2vec2_tiny_random(*, seed: int = 0, layer: int | None = None) -> Wav2Vec2Random:
    """Tiny random Wav2Vec2 (hidden 32 → 64-d at 25 Hz): fast on CPU. ``layer`` 0..2."""
    return Wav2Vec2Random(config=tiny_config(), seed=seed, layer=layer,
                          name="wav2vec2-tiny-random")


def layer_specs(spec: str, layers: list[int]) -> list[str]:
    """Registry specs of ``spec``'s backbone at each hidden state in ``layers``.

    The default (last) layer is returned as ``spec`` itself, not ``spec:layer=L``: both have
    one configuration and so one feature store, and the store records the spec it was created
    with, so the same features must always be asked for by the same name.
    """
    default = describe(spec).config
    sep = "," if ":" in spec else ":"
    out = []
    for k in layers:
        with_layer = f"{spec}{sep}layer={int(k)}"
        out.append(spec if describe(with_layer).config == default else with_layer)
    return out
