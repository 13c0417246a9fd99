"""AV-Deepfake1M (AV1M): word-level audio and/or visual manipulations with fake segments.

Layout: ``{train,val}/<id>/<video>/<clip>/<kind>.mp4`` and ``{train,val}_metadata.json``.
The paper's train and val lists are drawn from the official ``train`` folder and its test list
from the official ``val`` folder; split-list paths are relative to that folder. The real-only
``real_train`` / ``real_val`` lists (45,000 / 5,000 real videos, AVH-Align's split that trains
the anomaly detectors; see ``avdd/data/splits/README.md``) are drawn from ``train`` too.
"""

from __future__ import annotations

import json
from pathlib import Path

from avdd.datasets.base import (
    DatasetError,
    Item,
    read_annotations,
    read_split_csv,
    require_root,
    segments,
)

#: Which official folder each of the paper's splits is drawn from.
FOLDER = {"train": "train", "val": "train", "test": "val", "real_train": "train", "real_val": "train"}


def _metadata(root: Path, folder: str) -> dict[str, dict]:
    """``{clip path: record}`` of ``<folder>_metadata.json``, each record's segments checked
    (a record that cannot be read is an error naming the file and the record, never a video
    silently dropped from the split)."""
    f = root / f"{folder}_metadata.json"
    if not f.is_file():
        raise DatasetError(
            f"AV1M metadata {f} not found: the paper's AV1M splits keep real videos and fakes "
            "manipulated in both audio and video, which needs the release's "
            f"{folder}_metadata.json; put it in {root} (it ships with AV-Deepfake1M)")
    try:
        records = json.loads(f.read_text())
    except json.JSONDecodeError as e:
        raise DatasetError(f"AV1M metadata {f} is not valid JSON ({e}); re-download it") from e
    if not isinstance(records, list):
        raise DatasetError(f"AV1M metadata {f}: expected a JSON list of objects with keys "
                           f"{list(METADATA_KEYS)}, got {type(records).__name__}")
    out = {}
    for n, rec in enumerate(records):
        if not isinstance(rec, dict) or "file" not in rec:
            raise DatasetError(f"AV1M metadata {f} record {n}: expected an object with a "
                               f"'file' key (and {list(METADATA_KEYS[1:])}), got {rec!r:.120}")
        where = f"AV1M metadata {f} record {n} ({rec['file']})"
        for key in METADATA_KEYS[1:]:
            rec[key] = segments(rec.get(key), where + f" {key}")
        # Official files name clips relative to the folder, sometimes with the folder prefix.
        name = str(rec["file"]).removeprefix(f"{folder}/")
        out[name] = rec
    return out


#: The keys the paper's pipeline reads from each ``*_metadata.json`` record.
METADATA_KEYS = ("file", "fake_segments", "audio_fake_segments", "visual_fake_segments")


def _frames(rec: dict, where: str) -> int | None:
    value = rec.get("video_frames")
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise DatasetError(f"{where}: video_frames {value!r} is not a number of frames") from None


def keep_for_evaluation(rec: dict) -> bool:
    """The paper's rule: real videos, and fakes whose audio *and* video are manipulated."""
    if not rec.get("fake_segments"):
        return True
    return bool(rec.get("audio_fake_segments")) and bool(rec.get("visual_fake_segments"))


def load(root: Path, split: str, splits_dir: Path) -> list[Item]:
    root = require_root(root, "av1m")
    folder = FOLDER[split]
    table = read_split_csv(splits_dir / f"{split}_labels.csv")
    meta = _metadata(root, folder)
    notes = read_annotations(root)
    items = []
    for rel, label in zip(table["path"], table["label"]):
        rec = meta.get(rel, {})
        if rec and not keep_for_evaluation(rec):
            continue
        items.append(Item(
            video_id=rel, path=root / folder / rel, label=int(label), dataset="av1m",
            split=split, fake_segments=rec.get("fake_segments", ()),
            audio_fake_segments=rec.get("audio_fake_segments", ()),
            visual_fake_segments=rec.get("visual_fake_segments", ()),
            video_frames=_frames(rec, f"AV1M metadata {root / f'{folder}_metadata.json'} ({rel})"),
            annotation=notes.get(f"{folder}/{rel}", notes.get(rel)),
        ))
    return items
