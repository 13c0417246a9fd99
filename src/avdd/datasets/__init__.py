"""Dataset adapters: one module per dataset, each reading that dataset's own layout.

``load_items(profile, dataset, split)`` is the single entry point the pipeline uses.
"""

from __future__ import annotations

from avdd.config import REAL_ONLY_SPLITS, SPLITS, Profile
from avdd.datasets import av1m, avlips, csv, dfe, exddv, favc
from avdd.datasets.base import DatasetError, Item

_ADAPTERS = {"av1m": av1m.load, "favc": favc.load, "avlips": avlips.load, "dfe": dfe.load,
             "exddv": exddv.load}

#: Datasets read only when a profile names their root; kept out of ``config.DATASETS`` so the
#: demo profile neither synthesises nor extracts them. ExDDV is used for Fig. 4 only.
# Kept for callers of the first version; the split table lives in config.SPLITS.
EXTRA_SPLITS: dict[str, tuple[str, ...]] = {"exddv": SPLITS["exddv"]}

__all__ = ["DatasetError", "Item", "load_items"]


def load_items(profile: Profile, dataset: str, split: str) -> list[Item]:
    """The videos of one split of one dataset, with labels and any fake-segment metadata."""
    if dataset in profile.csv_files:  # a dataset given as one CSV (avdd.datasets.csv)
        return csv.load(profile.data_roots[dataset], split, profile.csv_files[dataset], dataset)
    if dataset not in _ADAPTERS:
        raise DatasetError(f"unknown dataset {dataset!r}; expected one of {sorted(_ADAPTERS)}")
    splits = (SPLITS.get(dataset) or EXTRA_SPLITS[dataset]) + REAL_ONLY_SPLITS.get(dataset, ())
    if split not in splits:
        raise DatasetError(f"{dataset} has no {split!r} split (has {splits})")
    if dataset not in profile.data_roots:
        raise DatasetError(f"the {profile.name} profile has no data root for {dataset}")
    return _ADAPTERS[dataset](profile.data_roots[dataset], split, profile.splits_dir(dataset))
