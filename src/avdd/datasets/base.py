"""What every dataset adapter returns: a list of :class:`Item`, one per video of a split.

Adapters read the dataset's own layout and split lists (``path,label`` CSVs), so the same code
reads the real datasets and the synthetic benchmark, which is written in the same layouts.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

Segments = tuple[tuple[float, float], ...]


class DatasetError(ValueError):
    """A dataset root, split list or metadata file is missing or malformed."""


@dataclass(frozen=True)
class Item:
    """One video of one split.

    Attributes:
        video_id: the path as written in the split list; unique within (dataset, split) and the
            key of the video in the feature store.
        path: absolute path of the media file.
        label: 0 = real, 1 = fake.
        dataset, split: where it comes from.
        fake_segments: manipulated time spans in seconds (AV1M-style metadata; empty if unknown).
        audio_fake_segments, visual_fake_segments: the same, per modality.
        annotation: extra per-clip ground truth the synthetic benchmark writes
            (``synth_annotations.jsonl``: mouth centres, face boxes, region centres, words);
            ``None`` for real data.
    """

    video_id: str
    path: Path
    label: int
    dataset: str
    split: str
    fake_segments: Segments = ()
    #: frames of the video as its metadata states them (AV1M ``video_frames``), or None: the
    #: length the paper's temporal evaluation holds the features against.
    video_frames: int | None = None
    audio_fake_segments: Segments = ()
    visual_fake_segments: Segments = ()
    annotation: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    def store_meta(self) -> dict[str, Any]:
        """The JSON-able fields the feature store keeps beside the features."""
        return {
            "label": self.label,
            "fake_segments": [list(s) for s in self.fake_segments],
            "audio_fake_segments": [list(s) for s in self.audio_fake_segments],
            "visual_fake_segments": [list(s) for s in self.visual_fake_segments],
        }


def read_split_csv(csv_path: Path) -> pd.DataFrame:
    """Read a ``path,label`` split list; labels may be written ``0``/``1`` or ``0.0``/``1.0``."""
    if not csv_path.is_file():
        raise DatasetError(
            f"split list {csv_path} not found: pass the folder holding "
            "{train,val,test}_labels.csv (columns path,label), or for the demo run `avdd synth`"
        )
    try:
        df = pd.read_csv(csv_path)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        raise DatasetError(f"split list {csv_path} is not a readable CSV: {e}") from e
    missing = {"path", "label"} - set(df.columns)
    if missing:
        raise DatasetError(f"split list {csv_path} lacks column(s) {sorted(missing)}; "
                           "expected a header `path,label`")
    labels = pd.to_numeric(df["label"], errors="coerce")
    bad = ~labels.isin([0, 1])
    if bad.any():
        row = int(bad.idxmax()) + 2  # +1 header, +1 one-based
        raise DatasetError(f"split list {csv_path} line {row}: label {df['label'][bad].iloc[0]!r}"
                           " is not 0 or 1")
    return pd.DataFrame({"path": df["path"].astype(str), "label": labels.astype(int)})


#: Parsed annotation files by path, with the digest of the bytes they were parsed from: every
#: page's ``prepare`` lists each split of every dataset for every backbone (~130 listings),
#: and re-parsing the jsonl each time was most of a prepared page's start-up (55 of 74 s).
#: Hashing the bytes costs ~1/20 of parsing them, and unlike a (mtime, size) stamp it cannot
#: miss an edit made within the clock's resolution.
_ANNOTATIONS: dict[Path, tuple[bytes, dict[str, dict[str, Any]]]] = {}


def read_annotations(root: Path) -> dict[str, dict[str, Any]]:
    """The synthetic benchmark's per-clip ground truth, keyed by relative path ({} if absent).

    Parsed once per content of the file, then shared: the records are read-only by
    convention (nothing in the package writes into an annotation); the outer dict is a fresh
    copy on every call."""
    f = Path(root) / "synth_annotations.jsonl"
    if not f.is_file():
        return {}
    data = f.read_bytes()
    digest = hashlib.blake2b(data, digest_size=16).digest()
    hit = _ANNOTATIONS.get(f)
    if hit is not None and hit[0] == digest:
        return dict(hit[1])
    try:
        text = data.decode()
    except UnicodeDecodeError as e:
        raise DatasetError(f"{f} is not UTF-8 text ({e}); regenerate with `avdd synth`") from e
    out = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise DatasetError(f"{f} line {n} is not valid JSON ({e}); regenerate with "
                               "`avdd synth`") from e
        out[rec["path"]] = rec
    _ANNOTATIONS[f] = (digest, out)
    return dict(out)


def segments(value: Any, where: str = "metadata") -> Segments:
    """Normalise a list of ``[start, end]`` pairs (seconds) into a tuple of float pairs.

    Raises:
        DatasetError: ``value`` is not such a list (e.g. a string); ``where`` names the file
            and record for the message.
    """
    if value is None or (isinstance(value, (list, tuple)) and not value):
        return ()
    try:
        if isinstance(value, (str, bytes)):
            raise TypeError("a string")
        return tuple((float(a), float(b)) for a, b in value)
    except (TypeError, ValueError) as e:
        raise DatasetError(f"{where}: segments {value!r} are not a list of [start, end] "
                           f"seconds ({e}); expected e.g. [[1.2, 1.8]] or []") from e


def require_root(root: Path, dataset: str) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{dataset} root {root} does not exist: point the profile's data "
                           f"root for {dataset} at the dataset folder (or run `avdd synth`)")
    return root
