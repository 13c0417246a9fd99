"""Loading pretrained transformers weights by hub name or local directory, and seeded
random-init models, shared by the Wav2Vec2, CLIP, VideoMAE and FSFM backbones.

Nothing can be downloaded on the project's machines, so a hub name that is not in the local
cache must fail loudly with the fix: download the checkpoint where there is internet and pass
the directory instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import torch

T = TypeVar("T")

_TRUE = {"1", "on", "yes", "true"}


class WeightsNotFound(OSError):
    """Pretrained weights are neither a local directory nor in the hub cache."""


def hub_offline() -> bool:
    """``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE`` read now (huggingface_hub reads it once at
    import, so a later change would otherwise be ignored and cost ~30 s of retries)."""
    return any(os.environ.get(k, "").lower() in _TRUE
               for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


#: Set to 1 to let a hub name that is not cached be downloaded (default: fail at once, with
#: the command that downloads it; retrying an unreachable hub cost ~26 s per backbone).
DOWNLOAD_ENV = "AVDD_HUB_DOWNLOAD"


def hub_downloads() -> bool:
    """Whether a hub name missing from the local cache may be fetched (:data:`DOWNLOAD_ENV`,
    and not ``HF_HUB_OFFLINE``)."""
    return os.environ.get(DOWNLOAD_ENV, "").lower() in _TRUE and not hub_offline()


def _looks_local(name_or_dir: str) -> bool:
    # Hub names are "name" or "org/name"; anything else is meant as a path.
    return name_or_dir.startswith((".", "/", "~")) or name_or_dir.count("/") > 1 \
        or Path(name_or_dir).expanduser().exists()


def from_pretrained(loader: Callable[..., T], name_or_dir: str | os.PathLike[str],
                    what: str, **kwargs: Any) -> T:
    """``loader(name_or_dir, **kwargs)`` (a ``from_pretrained``), with a clear error.

    Args:
        loader: e.g. ``AutoModel.from_pretrained``.
        name_or_dir: a hub name (``"facebook/wav2vec2-xls-r-2b"``) or a local directory made by
            ``save_pretrained`` / ``hf download``.
        what: what is being loaded, for the message (``"Wav2Vec2 model"``).
    Raises:
        WeightsNotFound: the directory does not exist, or the hub name is not cached and the
            hub cannot be reached; the message says what to download and where to put it.
    """
    name = str(name_or_dir)
    path = Path(name).expanduser()
    if path.is_dir():
        return loader(str(path), **kwargs)
    if _looks_local(name):
        raise WeightsNotFound(f"{what}: {name} is not a directory. Pass a directory written by "
                              "save_pretrained or `hf download`, or a hub name.")
    if not hub_downloads():
        kwargs.setdefault("local_files_only", True)
    try:
        return loader(name, **kwargs)
    except OSError as err:
        target = f"checkpoints/{name.replace('/', '--')}"
        raise WeightsNotFound(
            f"{what}: cannot load hub checkpoint {name!r}: not in the local cache and the hub "
            f"is unreachable or offline (or the name is wrong). On a machine with internet run\n"
            f"    hf download {name} --local-dir {target}\n"
            f"(`huggingface-cli download` with huggingface_hub < 1.0), copy {target} here and "
            f"pass that directory instead of the hub name (or set {DOWNLOAD_ENV}=1 where the "
            f"hub is reachable).\nUnderlying error: {err}"
        ) from err


def seeded(build: Callable[[], T], seed: int) -> T:
    """Build a random-init model with a fixed seed, leaving the global RNG untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def frozen(model: torch.nn.Module) -> torch.nn.Module:
    """Eval mode (no dropout), fp32, no gradients: the paper's features are from frozen
    backbones."""
    model.eval().float()
    model.requires_grad_(False)
    return model


def arch_dict(config: Any) -> dict[str, Any]:
    """A transformers config as a JSON-able dict for :meth:`Backbone.config` (without the
    library version, which does not change a random-init model's features)."""
    d = config.to_dict()
    d.pop("transformers_version", None)
    return d


# Architecture-only configs of the paper's checkpoints, shipped so that the ``-random`` rows
# build offline (see src/avdd/data/configs/README.md for where each one comes from).
SHIPPED_CONFIGS = {
    "facebook/wav2vec2-xls-r-2b": "facebook--wav2vec2-xls-r-2b.json",
    "openai/clip-vit-large-patch14": "openai--clip-vit-large-patch14.json",
    "MCG-NJU/videomae-large": "MCG-NJU--videomae-large.json",
}


def shipped_config(name: str) -> Path | None:
    """The shipped ``config.json`` of hub checkpoint ``name``, or ``None`` if none is shipped."""
    fname = SHIPPED_CONFIGS.get(str(name))
    if fname is None:
        return None
    # avdd is a regular (non-zip) package, so the resource is a real file a loader can open.
    return Path(str(resources.files("avdd") / "data" / "configs" / fname))


def resolve_config(model: str, config_loader: Callable[..., T], what: str) -> tuple[T, str]:
    """The config of ``model`` and where it came from.

    A local directory or the hub (its cache when offline) comes first, so a downloaded
    checkpoint's own config always wins; only when that fails with :class:`WeightsNotFound`
    and ``model`` is one of :data:`SHIPPED_CONFIGS` is the shipped file used.

    Returns:
        ``(config, source)``, source ``"hub"`` (``from_pretrained(model)``: a directory or
        the hub cache) or ``"shipped"``.
    Raises:
        WeightsNotFound: neither works (the original error, with its download hint).
    """
    try:
        return from_pretrained(config_loader, model, what), "hub"
    except WeightsNotFound:
        path = shipped_config(model)
        if path is None:
            raise
    config = config_loader(str(path))
    # from_pretrained on a file records the file path; the hub name is what a hub load records,
    # and a machine-specific path must not end up in the features' cache key.
    config._name_or_path = str(model)
    return config, "shipped"


class RandomInit:
    """Mixin for the ``-random`` variants: the architecture of a checkpoint (its config, from
    a hub name, a local directory, a shipped copy or a config object) with weights drawn from a
    seed.

    Put it first among the bases so that :meth:`config` extends the family's own.
    """

    def _random_arch(self, model: str, config: Any, seed: int, name: str,
                     config_loader: Callable[..., Any], what: str) -> Any:
        """Set ``source``/``name``/``seed``/``arch``/``arch_source``; return the config (the
        family's ``unbuilt`` stops here)."""
        self.source = str(model) if config is None else "config"
        self.name = name
        self.seed = seed
        self.arch_source = "config"
        if config is None:
            config, self.arch_source = resolve_config(self.source, config_loader, what)
        self.arch = arch_dict(config)
        return config

    def _random_net(self, model: str, config: Any, seed: int, name: str,
                    config_loader: Callable[..., Any], build: Callable[[Any], T],
                    what: str) -> tuple[Any, T]:
        """:meth:`_random_arch`, then the seeded network: ``(config, network)``."""
        config = self._random_arch(model, config, seed, name, config_loader, what)
        return config, seeded(lambda: build(config), seed)

    def config(self) -> dict[str, Any]:
        out = {**super().config(), "seed": self.seed, "arch": self.arch}
        # Only a hub name records where its architecture came from: a config object is all of
        # ``arch`` already, and leaving the key out keeps the tiny backbones' cache keys as they
        # were.
        if self.arch_source != "config":
            out["arch_source"] = self.arch_source
        return out
