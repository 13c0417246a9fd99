"""Deepfake-Eval-2024 (DFE): in-the-wild videos cut into single-face tracks.

Layout: track clips (``..._track_NNN.mp4``) under the root and a ``metadata.csv`` with at least
``path,label,split``. Split lists in ``splits_dir`` take precedence; without them the split is
read from ``metadata.csv``.
"""

from __future__ import annotations

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


def _from_metadata(root: Path, split: str) -> pd.DataFrame:
    f = root / "metadata.csv"
    if not f.is_file():
        raise DatasetError(f"DFE: neither a split list nor {f} found; provide "
                           "{train,val,test}_labels.csv or a metadata.csv with path,label,split")
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
    table = read_split_csv(csv) if csv.is_file() else _from_metadata(root, split)
    notes = read_annotations(root)
    return [
        Item(video_id=rel, path=root / rel, label=int(label), dataset="dfe", split=split,
             fake_segments=segments(notes[rel].get("fake_segments")) if rel in notes else (),
             annotation=notes.get(rel))
        for rel, label in zip(table["path"], table["label"])
    ]
