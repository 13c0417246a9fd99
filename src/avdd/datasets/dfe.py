"""Deepfake-Eval-2024 (DFE): in-the-wild videos cut into single-face tracks.

Two layouts are read.

**BitDF** (the paper's protocol for Table 2's columns G, H and I, read from the authors' code,
github danoneata/veridiq: ``linear_probing/datasets.py`` ``PerFileDataset`` with
``dataset_name: BitDF``, ``linear_probing/dfeval_evaluate.py``). The root is the authors'
folder of face tracks from several sources mixed ("BitDF"), each source as
``<source>/videos/<name>_track_NNN.mp4``. The sources known from the removal list's paths are
``Deepfake-Eval-2024/``, ``facebook-real/``, ``socialmedia-mw/``, ``tiktok/``,
``tiktok_real/`` and ``youtube/``; whether the mix has others is not known. Files in the root:

- ``train_labels.csv``, ``val_labels.csv``: columns ``full_file_path,label``;
- ``metadata.csv``: columns ``full_file_path,label,original_split``;
- ``files_to_remove.txt`` (:data:`REMOVAL_LIST`): one track path per line, dropped from the
  test. It is the authors' ``veridiq/linear_probing/files_to_remove.txt`` (354 lines, 247 of
  them ``Deepfake-Eval-2024/`` tracks); avdd does not ship it (that repository has no licence
  file): copy it into the DFE root.

Labels are the strings ``real`` (0), ``fake`` (1) and ``unknown`` (the row is dropped); any
other value is an error. ``train``/``val`` are the two lists, every source (column G's probe
trains on the whole mix). ``test`` is upstream's BitDF test restricted to DFE: the
``metadata.csv`` rows whose ``original_split`` is not ``train`` (so any ``val`` rows there are
tested, as upstream), minus the removal list (exact path match, as upstream), keeping the
paths that start with ``Deepfake-Eval-2024/`` (:data:`DFE_PREFIX`). ``/feats/`` in a path reads
``/videos/`` (upstream's feature paths); ``path`` is accepted for ``full_file_path``.

**Plain** (the synthetic benchmark's DFE-like domain, or lists you make): split lists
``{split}_labels.csv`` (``path,label``, labels 0/1) in the splits folder, which take
precedence, else a ``metadata.csv`` with ``path,label,split``. Paths are relative to the root.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

from avdd.datasets.base import (
    DatasetError,
    Item,
    read_annotations,
    read_split_csv,
    require_root,
    segments,
)

__all__ = ["DFE_PREFIX", "LABELS", "REMOVAL_LIST", "UNKNOWN", "bitdf_split", "is_bitdf",
           "load", "removal_list"]

#: The removal list's file name in the DFE root (BitDF layout).
REMOVAL_LIST = "files_to_remove.txt"
#: Paths of Deepfake-Eval-2024's own tracks within the BitDF mix: the DFE test.
DFE_PREFIX = "Deepfake-Eval-2024/"
#: String labels of the BitDF lists; rows labelled UNKNOWN are dropped.
LABELS = {"real": 0, "fake": 1}
UNKNOWN = "unknown"

_SOURCE = "github danoneata/veridiq, veridiq/linear_probing/files_to_remove.txt"


def _read_csv(f: Path, required: set[str], what: str) -> pd.DataFrame:
    """A CSV with ``required`` columns (``path`` accepted for ``full_file_path``)."""
    try:
        df = pd.read_csv(f, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        raise DatasetError(f"DFE {what} {f} is not a readable CSV ({e}); expected a header "
                           f"with {sorted(required)}") from e
    if "full_file_path" not in df.columns and "path" in df.columns:
        df = df.rename(columns={"path": "full_file_path"})
    if missing := required - set(df.columns):
        raise DatasetError(f"DFE {what} {f} lacks column(s) {sorted(missing)} (has "
                           f"{list(df.columns)[:8]}); expected {sorted(required)}")
    return df


def _string_labels(df: pd.DataFrame, f: Path) -> pd.DataFrame:
    """Drop ``unknown`` rows, map real/fake to 0/1; any other label is an error naming its line."""
    bad = ~df["label"].isin([*LABELS, UNKNOWN])
    if bad.any():
        line = int(bad[bad].index[0]) + 2  # the file's row (index kept through filters) + header
        raise DatasetError(f"DFE list {f} line {line}: label {df['label'][bad].iloc[0]!r} is not "
                           f"one of {[*LABELS, UNKNOWN]} (lower case, as the authors' lists)")
    df = df[df["label"] != UNKNOWN]
    return df.assign(label=df["label"].map(LABELS).astype(int))


def is_bitdf(root: Path) -> bool:
    """Whether ``root`` holds the BitDF layout (a ``metadata.csv`` with ``full_file_path`` or
    ``original_split``, or a ``train_labels.csv`` with ``full_file_path``)."""
    for name in ("metadata.csv", "train_labels.csv"):
        f = Path(root) / name
        if f.is_file():
            with f.open() as fh:
                header = fh.readline().strip().split(",")
            if "full_file_path" in header or "original_split" in header:
                return True
    return False


def removal_list(root: Path) -> set[str]:
    """The track paths of ``root/files_to_remove.txt`` (DatasetError saying where to get it)."""
    f = Path(root) / REMOVAL_LIST
    if not f.is_file():
        raise DatasetError(
            f"DFE test: {f} not found. The paper's DFE test drops the tracks of the authors' "
            f"removal list: copy {REMOVAL_LIST} from {_SOURCE} (354 lines) into {Path(root)} "
            "(avdd does not ship it: that repository has no licence); an empty file removes nothing")
    return {line.rstrip("\r\n") for line in f.read_text().splitlines() if line.strip()}


def bitdf_split(root: Path, split: str) -> pd.DataFrame:
    """``path,label`` (0/1) of one split of a BitDF root (module docstring): ``train``/``val``
    every source, ``test`` the DFE tracks of the non-train metadata rows minus the removal list."""
    root = Path(root)
    if split in ("train", "val"):
        f = root / f"{split}_labels.csv"
        if not f.is_file():
            raise DatasetError(f"DFE (BitDF layout, {root / 'metadata.csv'} has full_file_path): "
                               f"{f} not found; put the authors' {f.name} (columns "
                               "full_file_path,label) in the DFE root")
        df = _string_labels(_read_csv(f, {"full_file_path", "label"}, f"{split} list"), f)
    elif split == "test":
        f = root / "metadata.csv"
        df = _read_csv(f, {"full_file_path", "label", "original_split"}, "metadata")
        df = _string_labels(df[df["original_split"] != "train"], f)
        removed = removal_list(root)
        listed = df["full_file_path"].isin(removed)
        dfe = df["full_file_path"].str.startswith(DFE_PREFIX)
        if removed and not listed.any():
            warnings.warn(f"DFE test: no line of {root / REMOVAL_LIST} names a test row of {f}; "
                          "check that both spell paths alike (e.g. "
                          f"{next(iter(sorted(removed)))!r})", stacklevel=2)
        df = df[dfe & ~listed]
    else:
        raise DatasetError(f"DFE has no {split!r} split (has train, val, test)")
    return pd.DataFrame({"path": df["full_file_path"].str.replace("/feats/", "/videos/", regex=False),
                         "label": df["label"]}).reset_index(drop=True)


def _from_metadata(root: Path, split: str) -> pd.DataFrame:
    f = root / "metadata.csv"
    if not f.is_file():
        raise DatasetError(f"DFE: neither a split list nor {f} found; provide "
                           "{train,val,test}_labels.csv (path,label), a metadata.csv with "
                           "path,label,split, or the BitDF files (module avdd.datasets.dfe)")
    try:
        df = pd.read_csv(f)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        raise DatasetError(f"DFE metadata {f} is not a readable CSV ({e}); expected a header "
                           "with at least path,label,split") from e
    missing = {"path", "label", "split"} - set(df.columns)
    if missing:
        raise DatasetError(f"DFE metadata {f} lacks column(s) {sorted(missing)}")
    df = df[df["split"] == split]
    return pd.DataFrame({"path": df["path"].astype(str), "label": df["label"].astype(int)})


def load(root: Path, split: str, splits_dir: Path) -> list[Item]:
    root = require_root(root, "dfe")
    csv = splits_dir / f"{split}_labels.csv"
    if csv.is_file():
        table = read_split_csv(csv)
    elif is_bitdf(root):
        table = bitdf_split(root, split)
    else:
        table = _from_metadata(root, split)
    notes = read_annotations(root)
    return [
        Item(video_id=rel, path=root / rel, label=int(label), dataset="dfe", split=split,
             fake_segments=segments(notes[rel].get("fake_segments")) if rel in notes else (),
             annotation=notes.get(rel))
        for rel, label in zip(table["path"], table["label"])
    ]
