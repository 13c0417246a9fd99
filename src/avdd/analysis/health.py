"""The health of every feature store a page reads (issue 13): cached, one row per store.

:mod:`avdd.features.health` measures one store; this module measures every extracted store of
a profile's backbones (all datasets and splits found), caches the table through
:func:`avdd.analysis.cache.cached` and summarises it per backbone, so that Table 1 shows the
measures and every page flags a degenerate representation
(:meth:`avdd.report.page.Page.notice`). A store that is not extracted has no row: a page only
answers for the stores it reads, and extraction stays the pages' own step.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pandas as pd

from avdd.analysis.cache import cached
from avdd.backbones import describe
from avdd.config import SPLITS, Profile
from avdd.features.extract import store_dir
from avdd.features.health import MAX_FRAMES, THRESHOLDS, feature_health
from avdd.features.store import FeatureSet

__all__ = ["COLUMNS", "degenerate_backbones", "health_summary", "health_table"]

#: The measures of a row, as :class:`avdd.features.health.FeatureHealth` names them.
COLUMNS = ("frames", "dim", "mean_cosine", "spread", "effective_rank", "identical_fraction",
           "degenerate", "reason")


def extracted_stores(profile: Profile, backbones: list[str]) -> list[tuple[str, str, str, Path]]:
    """``(backbone, dataset, split, store folder)`` of every store of ``backbones`` that
    exists under the profile (datasets of its data roots, splits of ``config.SPLITS``)."""
    out = []
    for b in backbones:
        info = describe(b)
        for ds in profile.data_roots:
            for split in SPLITS.get(ds, ()):
                root = store_dir(profile, info, ds, split)
                if (root / "store.json").exists():
                    out.append((b, ds, split, root))
    return out


def health_table(profile: Profile, backbones: list[str], *, force: bool = False
                 ) -> pd.DataFrame:
    """One row per extracted store: ``backbone, dataset, split`` and :data:`COLUMNS`.

    Cached; the key holds each store's folder (its backbone key) and its number of videos
    and frames, so a store that grows or is re-extracted is measured again. Empty (with the
    columns) when no store exists.
    """
    backbones = list(dict.fromkeys(backbones))
    stores = [(b, ds, split, root, FeatureSet.open(root)) for b, ds, split, root
              in extracted_stores(profile, backbones)]
    config = {"profile": profile.name, "max_frames": MAX_FRAMES,
              "thresholds": asdict(THRESHOLDS),
              "stores": [[b, ds, split, root.name, len(fs), int(fs.lengths.sum())]
                         for b, ds, split, root, fs in stores]}

    def compute() -> pd.DataFrame:
        rows = [{"backbone": b, "dataset": ds, "split": split, **asdict(feature_health(fs))}
                for b, ds, split, _, fs in stores if int(fs.lengths.sum()) > 0]
        return pd.DataFrame(rows, columns=["backbone", "dataset", "split", *COLUMNS])

    table = cached(profile, "feature_health", config, compute, code=__name__, force=force)
    # A cached CSV gives NaN for an empty reason; the flag's text is "" when not flagged.
    return table.assign(reason=table["reason"].fillna("").astype(str),
                        degenerate=table["degenerate"].astype(bool))


def health_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per backbone (index, in first-seen order), its worst store on each measure: the
    highest ``mean_cosine`` and ``identical_fraction``, the lowest ``spread`` and
    ``effective_rank``; ``stores`` counted, ``degenerate`` if any store is, ``reason`` of the
    first flagged store ("" if none)."""
    rows = {}
    for b, g in table.groupby("backbone", sort=False):
        flagged = g[g["degenerate"]]
        rows[b] = {"stores": len(g), "mean_cosine": g["mean_cosine"].max(),
                   "spread": g["spread"].min(), "effective_rank": g["effective_rank"].min(),
                   "identical_fraction": g["identical_fraction"].max(),
                   "degenerate": not flagged.empty,
                   "reason": "" if flagged.empty else
                   f"{flagged.iloc[0]['dataset']}/{flagged.iloc[0]['split']}: "
                   f"{flagged.iloc[0]['reason']}"}
    return pd.DataFrame.from_dict(rows, orient="index",
                                  columns=["stores", "mean_cosine", "spread", "effective_rank",
                                           "identical_fraction", "degenerate", "reason"])


def degenerate_backbones(profile: Profile, backbones: list[str]) -> dict[str, str]:
    """``{backbone: reason}`` for each of ``backbones`` with a degenerate store."""
    summary = health_summary(health_table(profile, backbones))
    return {b: r.reason for b, r in summary.iterrows() if r.degenerate}
