"""AVLips: lip-sync fakes with untouched real audio; a test-only set (``0_real/``, ``1_fake/``)."""

from __future__ import annotations

from pathlib import Path

from avdd.datasets.base import (
    DatasetError,
    Item,
    read_annotations,
    read_split_csv,
    require_root,
    segments,
)


def load(root: Path, split: str, splits_dir: Path) -> list[Item]:
    if split != "test":
        raise DatasetError(f"AVLips has only a test split (asked for {split!r})")
    root = require_root(root, "avlips")
    table = read_split_csv(splits_dir / "test_labels.csv")
    notes = read_annotations(root)
    return [
        Item(video_id=rel, path=root / rel, label=int(label), dataset="avlips", split=split,
             fake_segments=segments(notes[rel].get("fake_segments")) if rel in notes else (),
             annotation=notes.get(rel))
        for rel, label in zip(table["path"], table["label"])
    ]
