"""``avdd check-data``: validate a dataset root before any GPU time is spent on it.

Three checks, all reported together (never stopping at the first problem):

1. metadata parses: AV1M ``{train,val}_metadata.json`` (a list of objects with ``file`` and
   ``[start, end]`` segment lists), FAVC ``meta_data.csv``, DFE ``metadata.csv``, ExDDV
   ``ExDDV.csv``;
2. every file the split lists name exists (split lists resolved as :func:`avdd.datasets.
   load_items` does: ``--splits-dir``, else ``ROOT/splits`` when present (synthetic roots and
   user-made lists), else the paper's lists shipped with avdd);
3. a random sample of listed videos decodes (:func:`avdd.media.read_clip`, audio and video;
   a file without an audio track is a warning, since visual models can still use it).

Errors make the exit status non-zero; warnings do not. A dataset given as one CSV
(:mod:`avdd.datasets.csv`) gets the same report from :func:`check_csv_dataset`: one line per
bad row (missing column, path not found, label not 0/1, duplicate path, malformed segments),
then the decode sample of its good rows.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from avdd.config import REAL_ONLY_SPLITS, SPLITS, Profile
from avdd.datasets import DatasetError, load_items
from avdd.datasets.base import segments
from avdd.datasets.csv import check_csv
from avdd.datasets.dfe import is_bitdf
from avdd.media import MediaError, read_clip

__all__ = ["Problem", "CheckReport", "check_dataset", "check_csv_dataset", "check_av1m_metadata"]


@dataclass(frozen=True)
class Problem:
    """One finding: ``kind`` is ``metadata``, ``split-list``, ``missing``, ``media`` or
    ``no-audio``; ``severity`` ``error`` or ``warning``."""

    kind: str
    path: str
    message: str
    split: str | None = None
    severity: str = "error"

    def line(self) -> str:
        where = f"[{self.split}] " if self.split else ""
        return f"{self.severity.upper():7s} {self.kind:10s} {where}{self.path}: {self.message}"


@dataclass
class CheckReport:
    """Counts per split (``listed``, ``real``, ``fake``, ``missing``, ``decoded``,
    ``unreadable``) and the problems found."""

    dataset: str
    root: Path
    splits_dir: Path | None
    counts: dict[str, Counter] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self, max_problems: int = 10) -> str:
        cols = ("listed", "real", "fake", "missing", "decoded", "unreadable")
        table = pd.DataFrame({s: {c: self.counts[s][c] for c in cols} for s in self.counts}).T
        lines = [f"{self.dataset} at {self.root} (split lists: {self.splits_dir or 'n/a'})",
                 table.to_string() if len(table) else "(no split could be read)"]
        by_kind = Counter(p.kind for p in self.problems)
        lines.append(f"{len(self.errors)} error(s), {len(self.problems) - len(self.errors)} "
                     f"warning(s)" + (f": {dict(by_kind)}" if by_kind else ""))
        lines += [p.line() for p in self.problems[:max_problems]]
        if len(self.problems) > max_problems:
            lines.append(f"... and {len(self.problems) - max_problems} more (--show N)")
        lines.append("OK" if self.ok else "PROBLEMS FOUND: fix them before extracting features")
        return "\n".join(lines)


def check_av1m_metadata(path: Path) -> list[Problem]:
    """Every problem of one AV1M ``*_metadata.json``: JSON syntax, list of objects, the keys
    the pipeline reads (``file``, ``fake_segments``, ``audio_fake_segments``,
    ``visual_fake_segments``), segment lists of ``[start, end]`` seconds with start <= end."""
    from avdd.datasets.av1m import METADATA_KEYS

    try:
        records = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        return [Problem("metadata", str(path), f"not valid JSON ({e}); re-download it")]
    if not isinstance(records, list):
        return [Problem("metadata", str(path), f"expected a JSON list of objects, got "
                                               f"{type(records).__name__}")]
    out = []
    for n, rec in enumerate(records):
        name = rec.get("file", f"record {n}") if isinstance(rec, dict) else f"record {n}"
        where = f"{path} ({name})"
        if not isinstance(rec, dict):
            out.append(Problem("metadata", where, f"record {n} is not an object: {rec!r:.60}"))
            continue
        missing = [k for k in METADATA_KEYS if k not in rec]
        if missing:
            out.append(Problem("metadata", where, f"missing key(s) {missing}"))
        for key in METADATA_KEYS[1:]:
            try:
                segs = segments(rec.get(key), where)
            except DatasetError as e:
                out.append(Problem("metadata", where, f"{key}: {str(e).split(': ', 1)[-1]}"))
                continue
            if any(a > b or a < 0 for a, b in segs):
                out.append(Problem("metadata", where, f"{key} {list(segs)} has a segment with "
                                                      "start > end or a negative time"))
    return out


def _check_csv(path: Path, required: set[str], what: str) -> list[Problem]:
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        return [Problem("metadata", str(path), f"{what} is not a readable CSV ({e})")]
    out = []
    if missing := required - set(df.columns):
        out.append(Problem("metadata", str(path), f"{what} lacks column(s) {sorted(missing)} "
                                                  f"(has {list(df.columns)[:10]})"))
    if "label" in df.columns and not pd.to_numeric(df["label"], errors="coerce").isin([0, 1]).all():
        out.append(Problem("metadata", str(path), f"{what}: labels other than 0/1"))
    if df.empty:
        out.append(Problem("metadata", str(path), f"{what} has no rows"))
    return out


def check_metadata(root: Path, dataset: str, splits_dir: Path) -> list[Problem]:
    """Parse each dataset's own metadata files (absent optional files are not problems)."""
    out = []
    if dataset == "av1m":
        for folder in ("train", "val"):
            f = root / f"{folder}_metadata.json"
            if f.is_file():
                out += check_av1m_metadata(f)
            elif (root / folder).is_dir():
                out.append(Problem("metadata", str(f), "not found: fake segments and the "
                                   "evaluation filter (audio+visual fakes) need it", severity="warning"))
    elif dataset == "favc" and (root / "meta_data.csv").is_file():
        out += _check_csv(root / "meta_data.csv", set(), "FAVC meta_data.csv")
    elif dataset == "dfe" and (root / "metadata.csv").is_file() and not is_bitdf(root):
        # (a BitDF root's lists are parsed by its loader: string labels, removal list)
        has_lists = all((splits_dir / f"{s}_labels.csv").is_file() for s in SPLITS["dfe"])
        need = {"path", "label"} if has_lists else {"path", "label", "split"}
        out += _check_csv(root / "metadata.csv", need, "DFE metadata.csv")
    return out


def _splits_dir(root: Path, dataset: str, splits_dir: Path | None) -> Path:
    if splits_dir is not None:
        return Path(splits_dir)
    if (root / "splits").is_dir():
        return root / "splits"
    return Path(__file__).resolve().parents[1] / "data" / "splits" / dataset


def check_dataset(root: str | Path, dataset: str, *, splits_dir: str | Path | None = None,
                  sample: int = 20, seed: int = 0) -> CheckReport:
    """Run every check on one dataset root.

    Args:
        root: the dataset folder in its official layout (SPEC.md, "Dataset layouts").
        dataset: ``av1m``, ``favc``, ``avlips``, ``dfe`` or ``exddv``.
        splits_dir: folder of ``{split}_labels.csv``; default as in the module docstring.
        sample: number of existing listed videos to decode (chosen at random with ``seed``).
    """
    from avdd.datasets import EXTRA_SPLITS

    root = Path(root).expanduser().resolve()
    sd = _splits_dir(root, dataset, splits_dir)
    report = CheckReport(dataset, root, None if dataset == "exddv" else sd)
    if not root.is_dir():
        report.problems.append(Problem("missing", str(root), "dataset root does not exist"))
        return report
    report.problems += check_metadata(root, dataset, sd)
    profile = Profile(name="check", data_roots={dataset: root}, cache_dir=root,
                      synthetic=False, splits_dirs={dataset: sd})
    present = []
    # Real-only splits (the anomaly detectors' training data) are checked where listed.
    extra = tuple(s for s in REAL_ONLY_SPLITS.get(dataset, ()) if (sd / f"{s}_labels.csv").is_file())
    for split in (SPLITS.get(dataset) or EXTRA_SPLITS[dataset]) + extra:
        try:
            items = load_items(profile, dataset, split)
        except DatasetError as e:
            report.problems.append(Problem("split-list", str(sd), str(e), split))
            continue
        c = report.counts[split] = Counter(listed=len(items))
        for it in items:
            c["fake" if it.label else "real"] += 1
            if it.path.is_file():
                present.append((split, it))
            else:
                c["missing"] += 1
                report.problems.append(Problem("missing", str(it.path), "listed in the "
                                               f"{split} split but not found", split))
    for split, it in random.Random(seed).sample(present, min(sample, len(present))):
        report.problems += _decode(it.path, split, report.counts[split])
    return report


def _decode(path: Path, split: str, counts: Counter) -> list[Problem]:
    try:
        read_clip(path)
    except MediaError as e:
        if "no audio stream" not in str(e):
            counts["unreadable"] += 1
            return [Problem("media", str(path), str(e).removeprefix(f"{path}: "), split)]
        try:
            read_clip(path, audio=False)
        except MediaError as e2:
            counts["unreadable"] += 1
            return [Problem("media", str(path), str(e2).removeprefix(f"{path}: "), split)]
        counts["decoded"] += 1
        return [Problem("no-audio", str(path), "no audio track: usable by visual models only",
                        split, severity="warning")]
    counts["decoded"] += 1
    return []


def check_csv_dataset(csv: str | Path, root: str | Path | None = None, *, sample: int = 20,
                      seed: int = 0) -> CheckReport:
    """Every check on a dataset CSV: its rows (:func:`avdd.datasets.csv.check_csv`), then
    ``sample`` randomly chosen good rows decoded. ``root``: default the CSV's folder."""
    csv = Path(csv).expanduser()
    root = (Path(root).expanduser() if root is not None else csv.parent).resolve()
    report = CheckReport("CSV dataset", root, csv)
    if not root.is_dir():
        report.problems.append(Problem("missing", str(root), "root folder does not exist; "
                                                             "pass --root DIR"))
        return report
    rows, problems = check_csv(csv, root)
    report.problems += [Problem("missing" if "not found under" in p.message else "row",
                                f"{p.csv} line {p.line}" if p.line else str(p.csv), p.message)
                        for p in problems]
    for split, group in rows.groupby("split", sort=False):
        report.counts[split] = Counter(listed=len(group), fake=int(group["label"].sum()),
                                       real=int((group["label"] == 0).sum()))
    present = [(sp, root / path) for sp, path in zip(rows["split"], rows["path"])]
    for split, path in random.Random(seed).sample(present, min(sample, len(present))):
        report.problems += _decode(path, split, report.counts[split])
    return report
