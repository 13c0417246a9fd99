"""The synthetic audio-visual deepfake benchmark: talking cartoon faces with real TTS speech,
in the layouts of AV1M, FAVC, AVLips and DFE-2024 (docs/CONTRACTS.md).

    from avdd.synth import SynthConfig, generate
    generate("data/synth", seed=0)            # ~1,164 split-list clips, ~80 s on 2 cores
    generate("data/tiny", scale=0.02, workers=1)

Modules: :mod:`.tts` (espeak-ng speech + word timings), :mod:`.face` (faces, mouth from the
speech envelope), :mod:`.audio` / :mod:`.video` (manipulations, artefacts, the "camera"),
:mod:`.common` (identities, voices, takes, annotations), :mod:`.av1m`, :mod:`.favc`,
:mod:`.avlips`, :mod:`.dfe` (one domain each), :mod:`.config`, :mod:`.generate`.
"""

from avdd.synth.config import DOMAINS, SynthConfig
from avdd.synth.generate import generate

__all__ = ["DOMAINS", "SynthConfig", "generate"]
