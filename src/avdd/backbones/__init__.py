"""Frozen feature extractors, one family per module, behind one registry.

Importing a family module registers its backbones; the heavy libraries (transformers) are
imported only when a backbone is built or described. :func:`describe` says what a spec is
(name, modality, frame rate, size, store config) without building its network. Backbones of
other distributions join the registry through the ``avdd.backbones`` entry-point group, after
avdd's own (:mod:`avdd.backbones.plugins`), so that none can take a built-in's name.
"""

from avdd.backbones import (  # noqa: F401  (registration)
    autoavsr,
    avhubert,
    braven,
    clip,
    detail_grid,
    fsfm,
    ge2e,
    handcrafted,
    videomae,
    wav2vec2,
)
from avdd.backbones.base import (
    Backbone,
    BackboneInfo,
    WindowReader,
    available,
    clear_descriptions,
    describe,
    get_backbone,
    plugin_origin,
    register,
)
from avdd.backbones.plugins import load_plugins

#: One line per entry point of the ``avdd.backbones`` group that could not be registered.
PLUGIN_PROBLEMS: list[str] = load_plugins()

__all__ = ["Backbone", "BackboneInfo", "available", "clear_descriptions", "describe",
           "get_backbone", "plugin_origin", "register", "WindowReader", "PLUGIN_PROBLEMS"]
