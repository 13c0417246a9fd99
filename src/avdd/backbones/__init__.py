"""Frozen feature extractors, one family per module, behind one registry.

Importing a family module registers its backbones; the heavy libraries (transformers) are
imported only when a backbone is built.
"""

from avdd.backbones import (  # noqa: F401  (registration)
    autoavsr,
    avhubert,
    braven,
    clip,
    fsfm,
    handcrafted,
    videomae,
    wav2vec2,
)
from avdd.backbones.base import Backbone, available, get_backbone, register

__all__ = ["Backbone", "available", "get_backbone", "register"]
