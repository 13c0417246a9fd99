"""Backbones from other distributions, found through the ``avdd.backbones`` entry-point group.

A researcher adds a backbone without forking avdd: one module defines a :class:`Backbone`
subclass (a typed constructor and an ``unbuilt`` classmethod, as every family here) and the
distribution that holds it declares, in its ``pyproject.toml``::

    [project.entry-points."avdd.backbones"]
    conv-audio = "conv_audio:ConvAudio"

The entry point's name is the registry name: ``avdd backbones`` lists it, and every place
that names a backbone (``--backbone``, the notebooks' ``backbones`` parameter, spec strings
``conv-audio:model=DIR``) takes it. The book's chapter "Adding a representation" walks through
a complete example (``book/examples/conv_audio.py``).

Loading is robust to a broken environment: an entry point that fails to import, names
something that is not a backbone class, or takes the name of a backbone already registered
(avdd's own or another plugin's) is not registered, with one line on stderr naming the entry
point and its distribution; the other backbones stay usable. A clash never replaces the
earlier backbone. ``AVDD_NO_PLUGINS=1`` loads none (installing a plugin means running its
code whenever avdd's backbones are imported, as with any plugin system).

Every plugin backbone's config, hence the key of its feature stores and of every result
computed from them, holds its distribution's name and version and a hash of its code
(:class:`avdd.backbones.base.PluginOrigin`): a new release or an edit of the plugin (even an
editable install whose version did not change) extracts its features anew.
"""

from __future__ import annotations

import os
import sys
from importlib import metadata

from avdd.backbones.base import HEARS, SEES, Backbone, PluginOrigin, note_unloaded, register

#: The entry-point group avdd reads backbones from.
GROUP = "avdd.backbones"
#: Set to 1 to load no plugin.
DISABLE_ENV = "AVDD_NO_PLUGINS"
#: Set once this process tree has printed the plugin warnings: worker processes import the
#: backbones again and must not repeat them.
_WARNED_ENV = "AVDD_PLUGIN_WARNINGS_SHOWN"
WEIGHTS = ("handcrafted", "random", "pretrained")


def _distribution(ep: metadata.EntryPoint) -> tuple[str, str]:
    dist = ep.dist
    if dist is None:  # an entry point without metadata (never from an installed distribution)
        return "an unknown distribution", "unknown"
    return dist.metadata["Name"] or dist.name, dist.version


def _code(module: str) -> str | None:
    from avdd.provenance import code_fingerprints, fingerprint

    try:
        return fingerprint(code_fingerprints([module]))
    except (ValueError, OSError, SyntaxError):  # compiled or source-less: its version only
        return None


def _check_class(obj: object, where: str) -> type[Backbone]:
    if not (isinstance(obj, type) and issubclass(obj, Backbone)):
        raise TypeError(f"{where} is {type(obj).__name__} {obj!r}, not a subclass of "
                        "avdd.backbones.Backbone")
    modality = getattr(obj, "modality", None)
    if modality not in (*HEARS, *SEES):
        raise TypeError(f"{where}: modality = {modality!r}; set it to 'audio', 'visual' or "
                        "'audio-visual'")
    weights = getattr(obj, "weights", None)
    if weights not in WEIGHTS:
        raise TypeError(f"{where}: weights = {weights!r}; set it to one of {', '.join(WEIGHTS)}")
    return obj


def load_plugins() -> list[str]:
    """Register every backbone of the ``avdd.backbones`` entry-point group.

    Returns one line per entry point that could not be registered (also printed to stderr,
    once per process tree); an empty list when all loaded or :data:`DISABLE_ENV` is set.
    """
    if os.environ.get(DISABLE_ENV, "").lower() in ("1", "true", "yes"):
        return []
    problems = []
    for ep in sorted(metadata.entry_points(group=GROUP), key=lambda e: e.name):
        dist, version = _distribution(ep)
        where = f"entry point {ep.name} = {ep.value} of {dist} {version}"
        try:
            cls = _check_class(ep.load(), where)
            origin = PluginOrigin(dist, version, f"{ep.name} = {ep.value}",
                                  _code(ep.module))
            register(ep.name, origin=origin)(cls)
        # SystemExit too: a plugin that calls sys.exit() on import must not end the program.
        except (Exception, SystemExit) as e:  # noqa: BLE001 - one broken plugin, not all
            why = f"{where} not loaded: {type(e).__name__}: {e}".replace("\n", " ")
            problems.append(why)
            note_unloaded(ep.name, why)
    if problems and not os.environ.get(_WARNED_ENV):
        for line in problems:
            print(f"avdd: warning: backbone plugin {line}", file=sys.stderr)
        os.environ[_WARNED_ENV] = "1"
    return problems
