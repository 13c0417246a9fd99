"""The study's linear probes: one per (backbone, training set, seed), trained once and shared
by every page (Table 2's grid, Table 3, Table 4's supervised column, Figs. 2-5).

A probe is trained on the ``train`` split with the ``val`` split for early stopping
(:class:`avdd.heads.probe.LinearProbe`, the paper's recipe) and cached as a safetensors probe
file (:mod:`avdd.heads.probe_io`) by :func:`avdd.analysis.cache.cached`: its key covers the
probe's parameters and the code of this module and of the probe, so a fix in either retrains.
Training is deterministic given the seed, so a cached probe equals a retrained one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from avdd.analysis.cache import FEATURE_SIDE, Format, cached, entry, put
from avdd.backbones import describe
from avdd.config import Profile
from avdd.features.featureset import FeatureSet
from avdd.features.prepare import feature_set
from avdd.heads.probe import LinearProbe
from avdd.heads.probe_io import load_probe, save_probe
from avdd.provenance import code_fingerprints, provenance

PROBE_FILE = "probe.safetensors"

#: A probe in a cache entry, with the metadata its file carries for whoever opens it alone
#: (``avdd score``): the safetensors probe file.
PROBES: Format[tuple[LinearProbe, dict]] = Format(
    save=lambda pair, folder: save_probe(pair[0], folder / PROBE_FILE, **pair[1]),
    load=lambda folder: load_probe(folder / PROBE_FILE))


@dataclass(frozen=True)
class FrameSelection:
    """Which frames of each video a probe is trained on, when not all of them.

    Attributes:
        name: what is kept, in words (part of the probe's cache key).
        apply: ``(profile, feature set, dataset, split) -> feature set`` of the kept frames.
        code: modules whose code ``apply`` runs: they key the probe too (the caller's module
            names them, so that this one needs not import them).
    """

    name: str
    apply: Callable[[Profile, FeatureSet, str, str], FeatureSet]
    code: tuple[str, ...]


def study_probe(profile: Profile, seed: int = 43) -> LinearProbe:
    """The study's (unfitted) linear probe: the paper's recipe with seed ``seed`` and the
    profile's epoch cap (:attr:`avdd.config.Profile.probe_epochs`)."""
    return LinearProbe(random_state=seed, max_epochs=profile.probe_epochs)


def _config(profile: Profile, backbone: str, train: str, seed: int,
            frames: FrameSelection | None = None) -> dict:
    config = {"profile": profile.name, "data": str(profile.data_roots.get(train, "")),
              "backbone": backbone, "backbone_config": describe(backbone).config,
              "train": train, "probe": study_probe(profile, seed).get_params()}
    if frames is not None:  # only then: the probes on all frames keep their keys
        config["frames"] = frames.name
    return config


def probe_path(profile: Profile, backbone: str, train: str, seed: int = 43) -> Path:
    """The probe file of ``backbone`` trained on ``train`` (which may not exist yet): a
    safetensors file any tool can open, e.g. ``avdd score VIDEO --probe PATH``."""
    return entry(profile, "probe", _config(profile, backbone, train, seed),
                 [__name__]).folder / PROBE_FILE


def trained_probe(profile: Profile, backbone: str, train: str, *, seed: int = 43,
                  frames: FrameSelection | None = None, force: bool = False) -> LinearProbe:
    """The linear probe of ``backbone`` trained on dataset ``train`` (cached).

    ``frames``: train and early-stop it on those frames of each video only (e.g. without the
    leading silence, :data:`avdd.analysis.temporal.WITHOUT_LEADING_SILENCE`); None: all."""

    config = _config(profile, backbone, train, seed, frames)
    weights = describe(backbone).weights
    code = [__name__, *(frames.code if frames else ())]

    def data(split: str) -> FeatureSet:
        fs = feature_set(profile, backbone, train, split)
        return fs if frames is None else frames.apply(profile, fs, train, split)

    def fit() -> tuple[LinearProbe, dict]:
        probe = study_probe(profile, seed).fit(data("train"), data("val"))
        return probe, {"backbone": backbone, "backbone_config": config["backbone_config"],
                       "train": train, "frames": frames.name if frames else "all",
                       "probe_params": probe.get_params(),
                       "provenance": provenance(profile=profile.name,
                                                synthetic=profile.synthetic, weights=weights,
                                                train=train, code=code_fingerprints(
                                                    code, stop=FEATURE_SIDE))}

    return cached(profile, "probe", config, fit, code=code, force=force, fmt=PROBES,
                  context={"weights": weights},
                  doing=f"training a linear probe: {backbone} on {train}"
                        + (f" ({frames.name})" if frames else ""))[0]


def install_probe(profile: Profile, backbone: str, train: str, probe: LinearProbe, *,
                  seed: int = 43, **metadata) -> Path:
    """Make ``probe`` (fitted elsewhere, e.g. an official release imported with ``avdd
    import-probe``) the study's probe of ``backbone`` trained on ``train``: every page then uses
    it instead of training one. Returns its probe file. ``metadata`` goes into the file."""
    if probe.get_params() != study_probe(profile, seed).get_params():
        raise ValueError("install_probe: the probe's parameters are not the study's "
                         f"(LinearProbe(random_state={seed}, max_epochs="
                         f"{profile.probe_epochs})); pass seed= or refit it")
    meta = {"backbone": backbone, "train": train, "installed": True, **metadata}
    folder = put(profile, "probe", _config(profile, backbone, train, seed), (probe, meta),
                 code=__name__, fmt=PROBES, context={"installed": True})
    return folder / PROBE_FILE


def probe_scores(profile: Profile, backbone: str, train: str, test: str, *, seed: int = 43,
                 split: str = "test") -> pd.DataFrame:
    """Video scores of the ``train``-trained probe on ``test``/``split``: a table indexed by
    video id with ``label`` and ``score``."""
    probe = trained_probe(profile, backbone, train, seed=seed)
    fs = feature_set(profile, backbone, test, split)
    return pd.DataFrame({"label": fs.labels, "score": probe.decision_function(fs)},
                        index=pd.Index(fs.ids, name="video_id"))
