"""Frozen feature extractors, one family per module, behind one registry."""

from . import handcrafted  # noqa: F401  (registers its backbones)
from .base import Backbone, available, get_backbone, register

__all__ = ["Backbone", "available", "get_backbone", "register"]
