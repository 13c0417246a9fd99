"""A dataset given as one CSV file: the official release's ``path,label`` convention.

Columns: ``path`` (relative to a root folder, by default the CSV's own folder), ``label``
(0 = real, 1 = fake), optionally ``split`` (e.g. train / val / test) and ``fake_segments``
(a JSON list of ``[start, end]`` seconds, e.g. ``[[1.2, 1.8]]``). Without a ``split`` column
every row belongs to the split :data:`ALL`.

Store key: a CSV dataset is stored under the name :func:`csv_key` gives it,
``csv-<file stem>-<sha256 of the file's bytes and the resolved root, 10 hex>``, so two different
CSVs never share a store, and an edited CSV (or the same CSV over another root) gets a fresh
one instead of features whose labels or videos no longer match. :func:`csv_profile` makes the
:class:`avdd.config.Profile` whose ``csv_files`` name it; :func:`avdd.datasets.load_items`
then reads it like any dataset (resumable extraction, failures logs, torchrun shards).

Validation (:func:`check_csv`) finds every bad row at once, each one line naming the file, the
line and what to fix; :func:`read_csv_dataset` refuses an invalid CSV unless asked to skip
its bad rows.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from avdd.config import Profile, default_home
from avdd.datasets.base import DatasetError, Item, Segments

__all__ = ["ALL", "CsvDataset", "RowProblem", "check_csv", "csv_key", "csv_profile", "load",
           "read_csv_dataset"]

#: The split of every row of a CSV without a ``split`` column.
ALL = "all"
REQUIRED = ("path", "label")
#: A split name becomes a store folder: letters, digits, ``_ . -``, not starting with a dot.
SPLIT_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class RowProblem:
    """One bad row (``line`` 1-based in the file, the header is line 1; 0 = the whole file)."""

    csv: Path
    line: int
    message: str

    def __str__(self) -> str:
        where = f"{self.csv} line {self.line}" if self.line else str(self.csv)
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class CsvDataset:
    """A validated CSV dataset.

    Attributes:
        csv: the CSV file (resolved). root: the folder its paths are relative to.
        key: the dataset name its features are stored under (:func:`csv_key`).
        rows: the good rows: columns ``path`` (str), ``label`` (int), ``split`` (str),
            ``fake_segments`` (tuple of (start, end) seconds), ``line`` (int).
        problems: the bad rows (left out of ``rows``).
    """

    csv: Path
    root: Path
    key: str
    rows: pd.DataFrame
    problems: tuple[RowProblem, ...]

    @property
    def splits(self) -> tuple[str, ...]:
        """Split names in first-appearance order (``("all",)`` without a split column)."""
        return tuple(dict.fromkeys(self.rows["split"]))

    def items(self, split: str) -> list[Item]:
        """The :class:`Item` of every good row of ``split``."""
        if split not in self.splits:
            raise DatasetError(f"{self.csv} has no rows of split {split!r} (has "
                               f"{list(self.splits)}); name one of those")
        rows = self.rows[self.rows["split"] == split]
        return [Item(video_id=p, path=self.root / p, label=int(y), dataset=self.key,
                     split=split, fake_segments=s)
                for p, y, s in zip(rows["path"], rows["label"], rows["fake_segments"])]


def csv_key(csv: Path, root: Path) -> str:
    """``csv-<stem>-<hash>``: the store name of the CSV file ``csv`` read against ``root``."""
    csv, root = Path(csv).resolve(), Path(root).resolve()
    h = hashlib.sha256(csv.read_bytes())
    h.update(b"\0" + str(root).encode())
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", csv.stem)[:40] or "data"
    return f"csv-{stem}-{h.hexdigest()[:10]}"


def _segments(text: str) -> Segments:
    """Parse one ``fake_segments`` cell ('' or '[]' = none); ValueError says what is wrong."""
    if not text.strip():
        return ()
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"is not JSON ({e.msg})") from None
    if not isinstance(value, list) or not all(
            isinstance(s, list) and len(s) == 2 and all(
                isinstance(t, (int, float)) and not isinstance(t, bool) for t in s)
            for s in value):
        raise ValueError("is not a list of [start, end] pairs of numbers")
    out = tuple((float(a), float(b)) for a, b in value)
    if any(a < 0 or a > b for a, b in out):
        raise ValueError("has a segment with a negative start or start > end")
    return out


def check_csv(csv: str | Path, root: str | Path | None = None, *, check_files: bool = True
              ) -> tuple[pd.DataFrame, list[RowProblem]]:
    """Read and validate a dataset CSV.

    Args:
        csv: the file. root: the folder its paths are relative to (default: the CSV's folder).
        check_files: whether a path that is not an existing file is a problem.

    Returns:
        ``(rows, problems)``: the good rows (columns as :attr:`CsvDataset.rows`) and one
        :class:`RowProblem` per bad row or file-level problem (missing column, unreadable).
    """
    csv = Path(csv).expanduser()
    if not csv.is_file():
        raise DatasetError(f"CSV {csv} not found: pass --csv FILE with columns path,label")
    root = Path(root).expanduser() if root is not None else csv.parent
    empty = pd.DataFrame(columns=["path", "label", "split", "fake_segments", "line"])
    try:
        # Every cell as text, nothing turned into NaN: each value is checked below.
        df = pd.read_csv(csv, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        return empty, [RowProblem(csv, 0, f"not a readable CSV ({e}); expected a header "
                                          "path,label[,split,fake_segments]")]
    df.columns = [str(c).strip() for c in df.columns]
    if missing := [c for c in REQUIRED if c not in df.columns]:
        return empty, [RowProblem(csv, 1, f"missing column(s) {missing} (header has "
                                          f"{list(df.columns)[:8]}); add them to the header")]
    if df.empty:
        return empty, [RowProblem(csv, 0, "has no rows; list one video per row")]
    has_split, has_segs = "split" in df.columns, "fake_segments" in df.columns
    problems, rows, first = [], [], {}
    for i, rec in enumerate(df.to_dict("records")):
        line = i + 2  # the header is line 1

        def bad(message: str) -> None:
            problems.append(RowProblem(csv, line, f"path {rec['path']!r}: {message}"))

        path = rec["path"].strip()
        if not path:
            bad("empty path; give the video's path relative to the root")
            continue
        if path in first:
            bad(f"duplicate of line {first[path]}; list each video once")
            continue
        first[path] = line
        label = rec["label"].strip()
        if label not in ("0", "1", "0.0", "1.0"):
            bad(f"label {label!r} is not 0 (real) or 1 (fake)")
            continue
        split = rec["split"].strip() if has_split else ALL
        if not SPLIT_NAME.fullmatch(split):
            bad(f"split {split!r} is not a name of letters, digits, '_', '.', '-' "
                "(e.g. train, val, test)")
            continue
        try:
            segs = _segments(rec["fake_segments"]) if has_segs else ()
        except ValueError as e:
            bad(f"fake_segments {rec['fake_segments']!r} {e}; expected e.g. [[1.2, 1.8]] or []")
            continue
        if check_files and not (root / path).is_file():
            bad(f"not found under {root}; fix the path or pass --root DIR")
            continue
        rows.append({"path": path, "label": int(float(label)), "split": split,
                     "fake_segments": segs, "line": line})
    return (pd.DataFrame(rows) if rows else empty), problems


def read_csv_dataset(csv: str | Path, root: str | Path | None = None, *,
                     skip_bad_rows: bool = False) -> CsvDataset:
    """Validate ``csv`` (:func:`check_csv`) and return it as a :class:`CsvDataset`.

    Raises:
        DatasetError: the CSV has bad rows (one line each, unless ``skip_bad_rows``), or no
            good row at all.
    """
    csv = Path(csv).expanduser()
    root = (Path(root).expanduser() if root is not None else csv.parent).resolve()
    if not root.is_dir():
        raise DatasetError(f"root {root} of {csv} is not a folder: pass --root DIR")
    rows, problems = check_csv(csv, root)
    if problems and not skip_bad_rows or rows.empty:
        lines = [str(p) for p in problems[:20]]
        more = f"\n... and {len(problems) - 20} more" if len(problems) > 20 else ""
        hint = ("fix them, or pass --skip-bad-rows to leave them out" if not rows.empty
                else "no usable row")
        raise DatasetError(f"{csv}: {len(problems)} bad row(s) ({hint}; `avdd check-data "
                           f"--csv {csv}` lists them):\n" + "\n".join(lines) + more)
    return CsvDataset(csv.resolve(), root, csv_key(csv, root), rows, tuple(problems))


def csv_profile(data: CsvDataset, cache_dir: str | Path | None = None, *,
                video_fps: float | None = 25.0) -> Profile:
    """A profile holding the one dataset ``data`` (named ``data.key``) with stores under
    ``cache_dir`` (default ``$AVDD_HOME/cache``, :func:`avdd.config.default_home`). Videos are
    decoded at 25 fps by default, as ``avdd score`` decodes them, so that a probe fitted on
    these features scores new videos on the same footing."""
    cache_dir = default_home() / "cache" if cache_dir is None else Path(cache_dir)
    return Profile(name="csv", data_roots={data.key: data.root},
                   cache_dir=cache_dir.expanduser().resolve(), synthetic=False,
                   video_fps=video_fps, csv_files={data.key: data.csv})


def load(root: Path, split: str, csv: Path, key: str) -> list[Item]:
    """The items of ``split`` of the CSV dataset stored as ``key`` (the adapter
    :func:`avdd.datasets.load_items` calls). Bad rows are left out, as ``--skip-bad-rows``
    allowed when the profile was made.

    Raises:
        DatasetError: the CSV changed since its key was computed (its features would belong
            to another store).
    """
    if csv_key(csv, root) != key:
        raise DatasetError(f"{csv} changed since this run started (its store key was {key}); "
                           "run the command again to use the edited CSV")
    return CsvDataset(Path(csv), Path(root), key, _good_rows(Path(csv), Path(root), key),
                      ()).items(split)


@functools.lru_cache(maxsize=8)
def _good_rows(csv: Path, root: Path, key: str) -> pd.DataFrame:
    """The good rows of the CSV whose content ``key`` hashes: checked once per process, not
    once per split (each check stats every listed file). ``key`` makes an edited CSV miss."""
    return check_csv(csv, root)[0]
