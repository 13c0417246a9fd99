"""Table 1: the representations the study compares, described and measured.

Two kinds of columns:

- **Descriptive facts** (input, temporal context, pretraining modality and data, supervision)
  are typed constants in :data:`REPRESENTATIONS`. Source: the project's transcription of the
  paper and of the upstream code (``shared/paper/SPEC.md``, "Representations";
  ``shared/paper/BACKBONES.md``), plus the checkpoints' own names (``LRS3_V_WER19.1``,
  ``..._prelrs3vox2avs_...``). They cannot be computed, so they are written once, here.
- **Numbers** (feature dimension, frame rate, parameter count) are read from the instantiated
  architecture: every full-size model is built on PyTorch's ``meta`` device (shapes only, no
  weight memory: XLS-R 2B would need 8.6 GB in fp32), and its parameters are counted over every
  ``nn.Module`` attribute of the backbone. Random-init variants share the pretrained models'
  architectures, so they are built instead of needing any checkpoint.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass

import pandas as pd
import torch

from avdd.analysis.health import health_summary, health_table
from avdd.backbones import Backbone, get_backbone
from avdd.config import DEMO_BACKBONES, Profile

SOURCE_NOTE = ("Descriptive columns: shared/paper/SPEC.md ('Representations') and "
               "shared/paper/BACKBONES.md (checkpoint files, preprocessing); dimension, frame "
               "rate and parameters: computed from the instantiated architectures "
               "(avdd.analysis.representations).")


@dataclass(frozen=True)
class Representation:
    """One row of the paper's Table 2 / our Table 1, as facts.

    Attributes:
        label: the paper's row name (as in ``reference/table2_linear_probing_auc.csv``).
        modality: what the probe sees: ``"audio"``, ``"visual"`` or ``"audio-visual"``.
        input: what the backbone is fed.
        context: temporal context of one output frame (what it can attend to).
        pretraining_modality: the data the weights were learned from (``"none"``: random).
        pretraining_data: the domain / datasets of that pretraining.
        supervision: how the weights were learned (SSL, supervised, fine-tuned…).
        architecture: registry spec whose architecture equals the paper's model (a ``-random``
            variant: same shapes, no checkpoint needed), or a key of :data:`_UNREGISTERED`.
        paper_dim: output dimension the paper/SPEC states (a check on the computed one).
    """

    label: str
    modality: str
    input: str
    context: str
    pretraining_modality: str
    pretraining_data: str
    supervision: str
    architecture: str
    paper_dim: int


_WHOLE_CLIP = "whole clip (self-attention)"
_AVH_DATA = "talking faces: LRS3 + VoxCeleb2"
_AVH_SUP = "AV SSL, then VSR fine-tuned (LRS3 433 h)"
_BRAVEN_DATA = "talking faces: LRS3 + VoxCeleb2 + AVSpeech"
_BRAVEN_SUP = "AV SSL, then VSR fine-tuned (self-training)"

#: The paper's 14 representations, in its Table 2 order.
REPRESENTATIONS: tuple[Representation, ...] = (
    Representation("AV-HuBERT (A) random", "audio", "log filterbanks (104-d, 25 Hz)",
                   _WHOLE_CLIP, "none", "—", "none (random init.)", "avhubert-a-random", 1024),
    Representation("AV-HuBERT (V) random", "visual", "mouth ROI 88×88 grey",
                   _WHOLE_CLIP, "none", "—", "none (random init.)", "avhubert-v-random", 1024),
    Representation("Wav2Vec2", "audio", "raw audio 16 kHz", _WHOLE_CLIP, "audio",
                   "speech (XLS-R: multilingual)", "SSL", "wav2vec2-random", 3840),
    Representation("Auto-AVSR (ASR)", "audio", "raw audio 16 kHz", _WHOLE_CLIP, "audio",
                   "speech: LRS3", "supervised ASR (not SSL)", "autoavsr-asr-random", 768),
    Representation("AV-HuBERT (A)", "audio", "log filterbanks (104-d, 25 Hz)", _WHOLE_CLIP,
                   "audio-visual", _AVH_DATA, _AVH_SUP, "avhubert-a-random", 1024),
    Representation("BRAVEn (A)", "audio", "raw audio 16 kHz", _WHOLE_CLIP, "audio-visual",
                   _BRAVEN_DATA, _BRAVEN_SUP, "braven-a-random", 1024),
    Representation("CLIP ViT-L/14", "visual", "full frame 224²", "one frame", "image–text",
                   "web images with captions", "language-supervised (contrastive)",
                   "clip-random", 768),
    Representation("FSFM", "visual", "face crop 224²", "one frame", "images",
                   "faces", "face SSL, checkpoint fine-tuned on FF++", "fsfm-random", 768),
    Representation("Video-MAE-large", "visual", "full frames 224², 16-frame chunks",
                   "16 frames (0.64 s)", "video", "general video (Kinetics-400)", "SSL",
                   "videomae-random", 1024),
    Representation("Auto-AVSR (VSR)", "visual", "mouth ROI 88×88 grey", _WHOLE_CLIP, "video",
                   "talking faces: LRS3", "supervised VSR (not SSL)", "autoavsr-vsr-random",
                   768),
    Representation("AV-HuBERT (V)", "visual", "mouth ROI 88×88 grey", _WHOLE_CLIP,
                   "audio-visual", _AVH_DATA, _AVH_SUP, "avhubert-v-random", 1024),
    Representation("BRAVEn (V)", "visual", "mouth ROI 88×88 grey", _WHOLE_CLIP,
                   "audio-visual", _BRAVEN_DATA, _BRAVEN_SUP, "braven-v-random", 1024),
    Representation("Auto-AVSR", "audio-visual", "raw audio + mouth ROI", _WHOLE_CLIP,
                   "audio-visual", "talking faces: LRS3", "supervised AVSR (not SSL)",
                   "autoavsr-av-random", 768),
    Representation("AV-HuBERT", "audio-visual", "log filterbanks + mouth ROI", _WHOLE_CLIP,
                   "audio-visual", _AVH_DATA, _AVH_SUP, "avhubert-av-random", 1024),
)


def _avhubert_av() -> Backbone:
    from avdd.backbones.avhubert import AVHubertRandom

    return AVHubertRandom(modality="audio-visual", name="avhubert-av-random")


def _autoavsr_av() -> Backbone:
    from avdd.backbones.autoavsr import AutoAVSRConfig, AutoAVSRRandom

    return AutoAVSRRandom(config=AutoAVSRConfig(modality="av"), name="autoavsr-av-random")


#: Full-size architectures the registry does not list (the paper has no random AV baselines),
#: built from the families' classes with their default (full-size) configurations.
_UNREGISTERED: dict[str, Callable[[], Backbone]] = {
    "avhubert-av-random": _avhubert_av,
    "autoavsr-av-random": _autoavsr_av,
}


@contextlib.contextmanager
def _hub_offline() -> Iterator[None]:
    """Resolve hub configs from the local cache or the shipped copies, never the network:
    counting parameters must not wait on ~30 s of retries per model on an offline machine."""
    old = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        yield
    finally:
        if old is None:
            del os.environ["HF_HUB_OFFLINE"]
        else:
            os.environ["HF_HUB_OFFLINE"] = old


def build(spec: str, *, meta: bool) -> Backbone:
    """Instantiate ``spec`` (a registry spec or a key of :data:`_UNREGISTERED`); on the
    ``meta`` device when ``meta`` (parameters have shapes but no storage)."""
    factory = _UNREGISTERED.get(spec) or (lambda: get_backbone(spec))
    with _hub_offline(), (torch.device("meta") if meta else contextlib.nullcontext()):
        return factory()


def count_parameters(backbone: Backbone) -> int:
    """Number of parameters (scalars) of every ``torch.nn.Module`` attribute of ``backbone``,
    each parameter counted once even if two attributes share it; 0 for handcrafted features."""
    seen: dict[int, int] = {}
    for value in vars(backbone).values():
        if isinstance(value, torch.nn.Module):
            for p in value.parameters():
                seen[id(p)] = p.numel()
    return int(sum(seen.values()))


def measure(spec: str, *, meta: bool) -> dict[str, object]:
    """``{"dim", "fps", "params", "weights", "modality"}`` of the instantiated ``spec``."""
    b = build(spec, meta=meta)
    return {"modality": b.modality, "weights": b.weights, "dim": int(b.dim),
            "fps": float(b.fps), "params": count_parameters(b)}


def representation_table(rows: Iterable[Representation] = REPRESENTATIONS) -> pd.DataFrame:
    """Table 1: one row per paper representation (index = the paper's label).

    Columns: the descriptive facts of :class:`Representation`, then the computed ``dim``
    (features per frame), ``fps`` (Hz), ``params`` (count, full-size architecture built on the
    meta device; for the single-modality AV-HuBERT rows it is the whole AV network, which is
    what runs with the other modality zeroed) and ``params_M`` (millions), and ``dim_matches``
    (computed dim == the paper's). Takes a few seconds (no weights are allocated).
    """
    out = []
    for r in rows:
        m = measure(r.architecture, meta=True)
        facts = asdict(r)
        out.append({**facts, "dim": m["dim"], "fps": m["fps"], "params": m["params"],
                    "params_M": m["params"] / 1e6, "dim_matches": m["dim"] == r.paper_dim})
    return pd.DataFrame(out).set_index("label")


#: How the weights of a demo backbone were learned, by weights kind; a pretrained backbone
#: names its own (by registry name) in :data:`PRETRAINED_SUPERVISION`.
SUPERVISION_BY_WEIGHTS: dict[str, str] = {
    "handcrafted": "none (handcrafted)",
    "random": "none (random init)",
}

#: Pretrained demo backbones: how their weights were learned. GE2E: Resemblyzer's voice
#: encoder, trained with the generalised end-to-end speaker-verification loss on labelled
#: speakers (the resemblyzer package's README), so supervised.
PRETRAINED_SUPERVISION: dict[str, str] = {
    "ge2e": "pretrained (supervised speaker verification), not self-supervised",
}


def supervision(spec: str, weights: str) -> str:
    """Table 1's supervision label of demo backbone ``spec`` whose weights kind is ``weights``.

    Raises:
        KeyError: a pretrained backbone with no entry in :data:`PRETRAINED_SUPERVISION` (its
            supervision is a fact to write down, not to guess).
    """
    if weights != "pretrained":
        return SUPERVISION_BY_WEIGHTS[weights]
    name = spec.partition(":")[0]
    if name not in PRETRAINED_SUPERVISION:
        raise KeyError(f"{name}: pretrained, but PRETRAINED_SUPERVISION "
                       "(avdd/analysis/representations.py) does not say how it was trained")
    return PRETRAINED_SUPERVISION[name]


def demo_table(backbones: Iterable[str] = DEMO_BACKBONES, profile: Profile | None = None
               ) -> pd.DataFrame:
    """The demo's backbones (handcrafted, tiny random-weight, and the pretrained GE2E beside
    its random twin), really instantiated: index = registry spec; columns ``modality``,
    ``weights``, ``supervision`` (:func:`supervision`), ``dim``, ``fps`` (Hz), ``params``.

    With ``profile``, also the health of each backbone's extracted feature stores (its worst
    store, :func:`avdd.analysis.health.health_summary`): ``stores``, ``mean_cosine``,
    ``spread``, ``effective_rank``, ``identical_fraction``, ``degenerate``, ``reason`` (NaN
    for a backbone without a store).
    """
    backbones = list(backbones)
    rows = []
    for b in backbones:
        m = measure(b, meta=False)
        rows.append({"backbone": b, "modality": m["modality"], "weights": m["weights"],
                     "supervision": supervision(b, str(m["weights"])),
                     **{k: m[k] for k in ("dim", "fps", "params")}})
    table = pd.DataFrame(rows).set_index("backbone")
    if profile is None:
        return table
    return table.join(health_summary(health_table(profile, backbones)))
