"""FakeAVCeleb (FAVC): whole-clip face and voice swaps, identity-disjoint splits.

Layout: ``<Category>/<ethnicity>/<gender>/<id>/<clip>.mp4`` with ``meta_data.csv``; the paper
keeps ``RealVideo-RealAudio`` (real) and ``FakeVideo-FakeAudio`` (fake) only, which its split
lists already reflect.
"""

from __future__ import annotations

from pathlib import Path

from avdd.datasets.base import Item, read_annotations, read_split_csv, require_root, segments


def load(root: Path, split: str, splits_dir: Path) -> list[Item]:
    root = require_root(root, "favc")
    table = read_split_csv(splits_dir / f"{split}_labels.csv")
    notes = read_annotations(root)
    items = []
    for rel, label in zip(table["path"], table["label"]):
        note = notes.get(rel)
        items.append(Item(
            video_id=rel, path=root / rel, label=int(label), dataset="favc", split=split,
            # FAVC has no segment metadata; the synthetic clone records whole-clip spans.
            fake_segments=segments(note.get("fake_segments")) if note else (),
            annotation=note,
        ))
    return items
