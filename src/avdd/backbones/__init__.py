"""Frozen feature extractors, one family per module, behind one registry.

Importing a family module registers its backbones; the heavy libraries (transformers) are
imported only when a backbone is built or described. :func:`describe` says what a spec is
(name, modality, frame rate, size, store config) without building its network.
"""

from avdd.backbones import (  # noqa: F401  (registration)
    autoavsr,
    avhubert,
    braven,
    clip,
    fsfm,
    ge2e,
    handcrafted,
    videomae,
    wav2vec2,
)
from avdd.backbones.base import (
    Backbone,
    BackboneInfo,
    available,
    clear_descriptions,
    describe,
    get_backbone,
    register,
)

__all__ = ["Backbone", "BackboneInfo", "available", "clear_descriptions", "describe",
           "get_backbone", "register"]
