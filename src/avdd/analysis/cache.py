"""One cache for every result of the study: tables, groups of tables and trained probes.

A result is cached under the profile's cache folder, keyed by its configuration *and by the
code that computes it*: a fingerprint of the computing module and of every avdd module it
imports (:func:`avdd.provenance.code_fingerprints`; docstrings and comments do not count). Fix
a bug in an analysis and its results are recomputed on the next run, while the results of
untouched analyses are reused. The fingerprint stops at the feature extractors (the backbone
registry, the extraction runner, the synthetic benchmark): features are keyed by
``Backbone.version`` instead, because recomputing them costs GPU days on real data (stores
warn when their backbone's code has changed since, see :mod:`avdd.features.featureset`).

Layout: one folder per entry, written whole or not at all::

    cache/results/<name>/<config hash>-<code hash>/
        provenance.json      config, code fingerprints, git, versions (written last)
        <part>.csv ... | probe.safetensors

An entry of the same name and configuration but older code is removed when the new one is
written: no cached result outlives the code that made it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import pandas as pd

from avdd.config import Profile
from avdd.progress import report
from avdd.provenance import code_fingerprints, fingerprint, provenance

T = TypeVar("T")

#: Where the code fingerprint of a cached result stops (these modules exactly): feature
#: extraction is keyed by ``Backbone.version``. The registry face ``avdd.backbones`` imports
#: every family; a module that imports one family or layer directly (CLIP for Grad-CAM, the
#: silence rule of the lip inputs) still follows it.
FEATURE_SIDE: tuple[str, ...] = ("avdd.backbones", "avdd.features.extract",
                                 "avdd.features.distributed", "avdd.synth")


@dataclass(frozen=True)
class Format(Generic[T]):
    """How one kind of result is written to and read from an entry folder."""

    save: Callable[[T, Path], None]
    load: Callable[[Path], T]


def _save_tables(value: pd.DataFrame | dict[str, pd.DataFrame], folder: Path) -> None:
    parts = value if isinstance(value, dict) else {"result": value}
    for part, df in parts.items():
        df.to_csv(folder / f"{part}.csv", index=False)


def _load_tables(folder: Path) -> pd.DataFrame | dict[str, pd.DataFrame]:
    meta = json.loads((folder / "provenance.json").read_text())
    parts = {p: pd.read_csv(folder / f"{p}.csv") for p in meta["parts"]}
    return parts["result"] if meta["parts"] == ["result"] else parts


#: A DataFrame, or a dict of named DataFrames (several tables of one computation).
TABLES: Format[Any] = Format(_save_tables, _load_tables)


def _parts(value: Any) -> list[str]:
    if isinstance(value, dict):
        return list(value)
    return ["result"]


@dataclass(frozen=True)
class Entry:
    """Where one result lives: ``folder`` (may not exist yet) and its key's two halves."""

    folder: Path
    config_hash: str
    code_hash: str
    code: dict[str, str]

    @property
    def complete(self) -> bool:
        return (self.folder / "provenance.json").is_file()


def _canonical(config: Any) -> str:
    return json.dumps(config, sort_keys=True, default=str)


def profile_key(profile: Profile) -> dict[str, Any]:
    """What of a profile decides every result: which data (synthetic or real, where), and
    the epoch cap of its probes, which every result downstream of a probe depends on."""
    return {"profile": profile.name, "synthetic": profile.synthetic,
            "synth_seed": profile.synth_seed, "synth_scale": profile.synth_scale,
            "data": {k: str(v) for k, v in sorted(profile.data_roots.items())},
            "splits": {k: str(v) for k, v in sorted(profile.splits_dirs.items())},
            "probe_epochs": profile.probe_epochs}


def entry(profile: Profile, name: str, config: dict[str, Any], code: Iterable[str]) -> Entry:
    """The cache entry of result ``name`` under ``config`` (plus the profile's data, see
    :func:`profile_key`), computed by modules ``code``."""
    prints = code_fingerprints(code, stop=FEATURE_SIDE)
    key = {"data": profile_key(profile), "config": config}
    config_hash = hashlib.sha256(_canonical(key).encode()).hexdigest()[:12]
    code_hash = fingerprint(prints)[:8]
    folder = profile.cache_dir / "results" / name / f"{config_hash}-{code_hash}"
    return Entry(folder, config_hash, code_hash, prints)


def cached(profile: Profile, name: str, config: dict[str, Any], compute: Callable[[], T], *,
           code: str | Iterable[str], force: bool = False, fmt: Format[T] = TABLES,
           context: dict[str, Any] | None = None, doing: str | None = None) -> T:
    """``compute()``, or its cached result when the same configuration was computed by the
    same code before.

    Args:
        profile: whose cache folder (``profile.cache_dir / "results"``).
        name: the result's name (a folder under ``results``), e.g. ``"linear_probe_grid"``.
        config: everything besides code that decides the result (JSON-able): data, backbone
            configs, seeds, estimator parameters. Part of the key and of the provenance.
        compute: makes the result when it is not cached.
        code: the computing module(s), usually ``__name__``; their code and that of every avdd
            module they import is fingerprinted into the key.
        force: recompute even when cached.
        fmt: how to store it (:data:`TABLES` by default: a DataFrame or a dict of them).
        context: extra provenance (not part of the key), e.g. ``synthetic`` and ``weights``.
        doing: what the book build's status line says while ``compute`` runs
            (:func:`avdd.progress.report`; default ``computing NAME (not cached)``).
    """
    code = [code] if isinstance(code, str) else list(code)
    e = entry(profile, name, config, code)
    if e.complete and not force:
        return fmt.load(e.folder)
    report(doing or f"computing {name} (not cached)")
    value = compute()
    _write(profile, e, name, config, value, fmt, context)
    return value


def put(profile: Profile, name: str, config: dict[str, Any], value: T, *,
        code: str | Iterable[str], fmt: Format[T] = TABLES,
        context: dict[str, Any] | None = None) -> Path:
    """Store ``value`` as the cached result of ``name`` under ``config`` (what :func:`cached`
    would have computed), e.g. a probe trained elsewhere; returns the entry folder."""
    e = entry(profile, name, config, [code] if isinstance(code, str) else list(code))
    _write(profile, e, name, config, value, fmt, context)
    return e.folder


def _write(profile: Profile, e: Entry, name: str, config: dict[str, Any], value: Any,
           fmt: Format, context: dict[str, Any] | None) -> None:
    # Written into a temporary folder, then renamed: an entry is whole or absent (a crash
    # leaves a dot-folder that the next write of the same entry removes).
    tmp = e.folder.with_name(f".{e.folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    fmt.save(value, tmp)
    prov = provenance(**{**profile_key(profile), **(context or {})}, result=name,
                      config=config, code=e.code,
                      parts=_parts(value) if fmt is TABLES else None)
    (tmp / "provenance.json").write_text(json.dumps(prov, indent=2, default=str))
    shutil.rmtree(e.folder, ignore_errors=True)
    try:
        os.replace(tmp, e.folder)
    except OSError:
        # Another process (a notebook of the other lane of the book) wrote the same entry
        # meanwhile: same key, same code, same result; keep the one in place.
        if not e.complete:
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    _drop_superseded(e)


def _drop_superseded(e: Entry) -> None:
    """Remove the entries of the same name and configuration computed by other code."""
    for old in e.folder.parent.glob(f"{e.config_hash}-*"):
        if old != e.folder and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)


def result_provenance(profile: Profile, name: str, config: dict[str, Any],
                      code: str | Iterable[str]) -> dict[str, Any] | None:
    """The provenance record of a cached result (``None`` if it is not cached)."""
    e = entry(profile, name, config, [code] if isinstance(code, str) else code)
    return json.loads((e.folder / "provenance.json").read_text()) if e.complete else None
