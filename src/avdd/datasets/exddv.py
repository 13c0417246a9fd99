"""ExDDV: fakes from FF++, DeeperForensics, DFDC and BioDeepAV with human click annotations
(Hondru et al., "ExDDV: A New Dataset for Explainable Deepfake Detection in Video", 2025).

The release (github ``vladhondru25/ExDDV``) is one annotation file, ``ExDDV.csv``; the videos
come from the source datasets. Confirmed from that file (read 2026-11-25): columns
``id, username, movie_name, text, dataset, manipulation, click_locations, difficulty, split``;
``split`` in {train, val, test} (3,562 / 389 / 396 rows; the test rows are 396 distinct videos
with 1,910 clicks, the numbers the paper quotes); ``click_locations`` is a JSON object
``{"<frame index>": {"x": .., "y": ..}, ...}`` with x, y in [0, 1] of the frame width/height
(one click in the file lies outside); ``dataset`` is spelled ``Farceforensics++``,
``Deeperforensics``, ``DeepfakeDetection`` (DFDC parts), ``BioDeepAV``. The frame index counts
the source video's own frames from 0 (the paper's code, github ``danoneata/veridiq``, decodes
every frame with OpenCV and matches ``frame-idx`` to the decoded frame number), so it is *not*
a 25 fps index.

Layout expected under the user's root (inferred: the release fixes no video layout):

- ``ExDDV.csv`` as released;
- each video at ``<dataset>/<manipulation>/<movie_name>`` (spelled as in the CSV, e.g.
  ``Farceforensics++/FaceSwap/890_837.mp4``: the key the paper's code uses), or wherever a
  ``movie_path`` column (absolute, or relative to the root) says, as the ExDDV notebooks allow;
- ``ExDDV_reals_FF++.csv``, the real videos the paper's ExDDV probe trains on (ExDDV itself
  has only fakes): 1,000 FaceForensics++ ``original_sequences/youtube/c23`` videos with a
  fixed 800/100/100 train/val/test split, columns ``movie_name, full_path, split``. The
  paper's code keeps it at ``data/exddv/ExDDV_reals_FF++.csv`` of github
  ``danoneata/veridiq``, a repository without a licence, so avdd does not ship it: copy it
  into the ExDDV root as it is. Its ``full_path`` (``/faceforensics/ff++/original_sequences/
  youtube/c23/videos/000.mp4``) is read relative to the root (the leading ``/`` dropped; the
  paper's code prefixed ``/data``), so put or link the FF++ originals there. Without this file
  every split fails to load: a probe trained on fakes only would be meaningless.

Rows of the same video (several annotators) are merged into one item; ``annotation`` holds
``clicks`` ``[[frame_index, x, y], ...]`` (source-frame index), ``texts`` and ``annotators``.
Real videos are ``real/<movie_name>`` (the paper's code's names), without annotation.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from avdd.datasets.base import DatasetError, Item, require_root

ANNOTATIONS = "ExDDV.csv"
REALS = "ExDDV_reals_FF++.csv"
REALS_SOURCE = "data/exddv/ExDDV_reals_FF++.csv of github danoneata/veridiq"
COLUMNS = ("movie_name", "dataset", "manipulation", "click_locations", "split")


def read_annotations_csv(path: Path) -> pd.DataFrame:
    """``ExDDV.csv`` with its columns checked (DatasetError naming the file otherwise)."""
    if not path.is_file():
        raise DatasetError(f"ExDDV: {path} not found; copy ExDDV.csv from github "
                           "vladhondru25/ExDDV into the ExDDV root")
    try:
        df = pd.read_csv(path, dtype={"movie_name": str, "split": str})
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        raise DatasetError(f"ExDDV annotations {path} are not a readable CSV ({e})") from e
    missing = set(COLUMNS) - set(df.columns)
    if missing:
        raise DatasetError(f"ExDDV annotations {path} lack column(s) {sorted(missing)}; "
                           f"expected the released header ({', '.join(COLUMNS)}, ...)")
    return df


def parse_clicks(text: str, where: str) -> list[list[float]]:
    """``'{"100": {"x": 0.54, "y": 0.63}, ...}'`` → ``[[100, 0.54, 0.63], ...]`` sorted by
    frame index."""
    try:
        raw = json.loads(text)
        clicks = [[int(k), float(v["x"]), float(v["y"])] for k, v in raw.items()]
    except (TypeError, ValueError, KeyError, AttributeError) as e:
        raise DatasetError(f"{where}: click_locations {str(text)[:80]!r} is not "
                           '{"<frame>": {"x": .., "y": ..}, ...} ' f"({e})") from e
    return sorted(clicks)


def _video_path(root: Path, row) -> Path:
    mp = getattr(row, "movie_path", None)
    if isinstance(mp, str) and mp:
        return root / mp  # an absolute movie_path stays absolute
    return root / row.dataset / row.manipulation / row.movie_name


def _reals(root: Path, split: str) -> list[Item]:
    f = root / REALS
    if not f.is_file():
        raise DatasetError(
            f"ExDDV: {f} not found. ExDDV has only fakes; the paper's ExDDV probe trains on "
            f"1,000 FF++ originals listed in {REALS_SOURCE} (movie_name, full_path, split). "
            f"Copy that file into {root} and put the FF++ c23 originals where its full_path "
            "says, relative to the root")
    try:
        df = pd.read_csv(f, dtype=str)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        raise DatasetError(f"ExDDV real-video list {f} is not a readable CSV ({e})") from e
    if {"full_path", "split"} - set(df.columns):
        raise DatasetError(f"ExDDV real-video list {f} needs columns full_path,split "
                           f"(movie_name optional), as {REALS_SOURCE}; has {list(df.columns)}")
    rows = df[df["split"] == split]
    if rows.empty:
        raise DatasetError(f"ExDDV real-video list {f} has no {split!r} rows (splits: "
                           f"{sorted(set(df['split'].astype(str)))}); the released list has "
                           "train, val and test")
    names = rows["movie_name"] if "movie_name" in rows else rows["full_path"].map(
        lambda p: Path(p).name)
    return [Item(video_id=f"real/{name}", path=root / path.lstrip("/"), label=0,
                 dataset="exddv", split=split)
            for name, path in zip(names, rows["full_path"])]


def load(root: Path, split: str, splits_dir: Path | None = None) -> list[Item]:
    """The annotated fakes of one ExDDV split (label 1, clicks in ``annotation``), then the
    real videos of that split in ``ExDDV_reals_FF++.csv`` (label 0; a missing list is a
    DatasetError). ``splits_dir`` is unused: the split is a column of both files."""
    root = require_root(root, "exddv")
    f = root / ANNOTATIONS
    df = read_annotations_csv(f)
    if split not in set(df["split"]):
        raise DatasetError(f"ExDDV annotations {f} have no {split!r} rows "
                           f"(splits: {sorted(set(df['split'].astype(str)))})")
    merged: dict[str, dict] = {}
    for row in df[df["split"] == split].itertuples(index=False):
        vid = f"{row.dataset}/{row.manipulation}/{row.movie_name}"
        rec = merged.setdefault(vid, {"path": _video_path(root, row), "clicks": [],
                                      "texts": [], "annotators": []})
        rec["clicks"] += parse_clicks(row.click_locations, f"{f} ({vid})")
        rec["texts"].append(getattr(row, "text", None))
        rec["annotators"].append(getattr(row, "username", None))
    items = [Item(video_id=vid, path=rec.pop("path"), label=1, dataset="exddv", split=split,
                  annotation={**rec, "click_frame_unit": "source frame index",
                              "clicks": sorted(rec["clicks"])})
             for vid, rec in merged.items()]
    return items + _reals(root, split)
