"""A feature store's files as they are on disk, read and checked: ``store.json`` (:func:`read_info`)
and the per-rank index lines (:func:`read_index`, :class:`Record`), the checksums that guard
them, and :func:`verify_store` (``avdd check-store``), which also checks every record's frames.

Shared by the writer (:mod:`avdd.features.store`) and the reader
(:mod:`avdd.features.featureset`); the format is described in :mod:`avdd.features.store`.
"""

from __future__ import annotations

import json
import os
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FRAME_DTYPE = np.float16
ITEM = np.dtype(FRAME_DTYPE).itemsize  # bytes per stored value


class StaleFeatures(UserWarning):
    """A feature store was computed by backbone code that has changed since."""

_WARNED: set[tuple[str, str]] = set()  # (store, created): warn once per store and process

def check_code(root: Path, info: dict) -> list[str]:
    """Warn (:class:`StaleFeatures`, once per store and process) when the backbone code a
    store recorded has changed since; returns the changed modules."""
    from avdd.provenance import changed_modules

    recorded = info.get("code")
    if not recorded:
        return []
    changed = changed_modules(recorded)
    key = (str(root), str(info.get("created")))
    if changed and key not in _WARNED:
        _WARNED.add(key)
        warnings.warn(
            f"{root}: features were computed by code that has changed since "
            f"({', '.join(changed)}); they are reused because the backbone's version is "
            "unchanged. If the change alters features, bump that backbone's `version` (a new "
            "store is then extracted); otherwise ignore this.", StaleFeatures, stacklevel=3)
    return changed

@dataclass(frozen=True)
class Record:
    """One committed index line: ``length`` frames at byte ``offset`` of rank ``rank``'s shard."""

    video_id: str
    rank: int
    offset: int
    length: int
    label: int | None = None
    meta: dict = field(default_factory=dict)
    frames_crc32: str | None = None  # None: written by an avdd without checksums

    def end(self, dim: int) -> int:
        return self.offset + self.length * dim * ITEM

class StoreError(ValueError):
    """A feature store's files are damaged or inconsistent; the message names the file."""

class DamagedRecord(UserWarning):
    """An index line of a feature store is damaged and its video is skipped."""

def line_checksum(fields: dict) -> str:
    """Checksum of an index line's fields (everything but the checksums themselves): an
    edited label, length or offset no longer matches it."""
    body = {k: v for k, v in fields.items() if k not in ("line_crc32", "frames_crc32")}
    return f"{zlib.crc32(json.dumps(body, sort_keys=True).encode()):08x}"

def frames_checksum(data) -> str:
    """Checksum of a record's fp16 frame bytes (any buffer)."""
    return f"{zlib.crc32(data):08x}"

def info_checksum(info: dict) -> str:
    """Checksum of ``store.json``'s fields: an edited ``dim`` or ``fps`` no longer matches."""
    return line_checksum({k: v for k, v in info.items() if k != "info_crc32"})

def _record(d: dict, rank: int) -> Record:
    rec = Record(str(d["id"]), rank, int(d["offset"]), int(d["length"]), d.get("label"),
                 d.get("meta") or {}, d.get("frames_crc32"))
    if rec.label is not None and rec.label not in (0, 1):
        raise ValueError(f"label {rec.label!r} is not 0, 1 or null")
    if not isinstance(rec.meta, dict):
        raise ValueError("meta is not an object")
    if "line_crc32" in d and d["line_crc32"] != line_checksum(d):
        raise ValueError("its checksum does not match its fields (edited or damaged)")
    return rec

@dataclass(frozen=True)
class IndexScan:
    """One rank's index, read: ``records`` committed, ``length`` bytes up to the end of the
    last complete line (a partial last line after it is a torn write), and ``damaged``
    ``(line number, line bytes, why)`` of the lines that were skipped."""

    records: list[Record]
    length: int
    damaged: list[tuple[int, bytes, str]]

def read_index(index_path: Path, shard_path: Path, rank: int, dim: int, *,
               warn: bool = True) -> IndexScan:
    """Committed records of one rank (:class:`IndexScan`).

    A partial last line (no newline: a crash mid-write) ends the index; the writer truncates
    it away. Any other damaged line (unparsable, failing its checksum, overlapping an earlier
    record or pointing past the end of the shard) is skipped with a :class:`DamagedRecord`
    warning naming the file and line: the records around it stay readable, and its video is
    extracted again by the next run (the writer first moves damaged lines out of the index, so
    a stale line can never come to point at another video's frames). Nothing is modified here.
    """
    if not Path(index_path).exists():
        return IndexScan([], 0, [])
    data = Path(index_path).read_bytes()
    shard_size = os.path.getsize(shard_path) if Path(shard_path).exists() else 0
    records, damaged, pos, end, lineno = [], [], 0, 0, 0
    row = dim * ITEM
    while (nl := data.find(b"\n", pos)) >= 0:
        lineno += 1
        try:
            rec = _record(json.loads(data[pos:nl]), rank)
            if rec.length < 1:
                raise ValueError(f"length {rec.length} < 1")
            if rec.offset % row:
                raise ValueError(f"offset {rec.offset} is not a whole number of {dim}-d fp16 "
                                 "frames (store.json's dim does not match the shard)")
            if rec.offset < end:
                raise ValueError(f"it overlaps the previous record (offset {rec.offset} < "
                                 f"{end})")
            if rec.end(dim) > shard_size:
                raise ValueError(f"it points past the end of {Path(shard_path).name} "
                                 f"({rec.end(dim)} > {shard_size} bytes)")
        except (ValueError, KeyError, TypeError) as err:
            damaged.append((lineno, data[pos:nl + 1], str(err)))
            if warn:
                warnings.warn(f"{index_path}:{lineno}: damaged index line skipped ({err}); its "
                              "video is extracted again by the next run (`avdd check-store "
                              f"{Path(index_path).parent}` lists every problem)", DamagedRecord,
                              stacklevel=2)
            pos = nl + 1
            continue
        records.append(rec)
        end, pos = rec.end(dim), nl + 1
    return IndexScan(records, pos, damaged)

def read_info(root: Path) -> dict:
    """``store.json`` of a store folder, checked: one clear error naming the file when it is
    missing, not JSON, lacks a field, or was edited since it was written (checksum)."""
    path = Path(root) / "store.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: not a feature store (extract into it with "
                                "`avdd extract`, or check the --cache-dir)")
    try:
        info = json.loads(path.read_text())
        dim, fps = int(info["dim"]), float(info["fps"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as err:
        raise StoreError(f"{path} is damaged ({type(err).__name__}: {err}); restore it from a "
                         "backup or delete the store folder and extract again") from None
    if dim < 1 or not fps > 0:
        raise StoreError(f"{path}: dim={dim}, fps={fps} are not valid; restore the file or "
                         "extract again")
    if "info_crc32" in info and info["info_crc32"] != info_checksum(info):
        raise StoreError(f"{path} was edited since it was written (its checksum does not match "
                         "its fields, e.g. dim or fps): restore it or extract again")
    return info


@dataclass(frozen=True)
class StoreCheck:
    """What :func:`verify_store` found: ``videos`` readable records, ``problems`` one line
    each (file, line or video, what is wrong, what to do), ``unchecked`` records written
    without a frame checksum (by an avdd before checksums)."""

    root: Path
    videos: int
    problems: list[str]
    unchecked: int

    @property
    def ok(self) -> bool:
        return not self.problems

def verify_store(root: str | os.PathLike) -> StoreCheck:
    """Check a store folder end to end: ``store.json``, every index line, and every record's
    frames against its checksum (reads every byte once). Never raises for damage: every
    problem is reported, with the file it is in."""
    root = Path(root)
    try:
        info = read_info(root)
    except (FileNotFoundError, StoreError) as err:
        return StoreCheck(root, 0, [str(err)], 0)
    dim = int(info["dim"])
    problems, videos, unchecked, seen = [], 0, 0, {}
    for index in sorted(root.glob("index-*.jsonl")):
        rank = int(index.stem.split("-")[1])
        shard = root / f"shard-{rank:05d}.bin"
        scan = read_index(index, shard, rank, dim, warn=False)
        records = scan.records
        problems += [f"{index}:{n}: damaged index line ({why}); the next extraction run sets "
                     "it aside and extracts its video again" for n, _, why in scan.damaged]
        if scan.length < index.stat().st_size:
            problems.append(f"{index}: a partial last line (a write was interrupted); the next "
                            "extraction run drops it")
        if not records:
            continue
        frames = np.memmap(shard, np.uint8, mode="r") if shard.stat().st_size else None
        for r in records:
            if r.video_id in seen:
                problems.append(f"{index}: {r.video_id!r} is also in {seen[r.video_id]}")
            seen[r.video_id] = index.name
            if r.frames_crc32 is None:
                unchecked += 1
            elif frames_checksum(frames[r.offset:r.end(dim)]) != r.frames_crc32:
                problems.append(f"{shard}: the frames of {r.video_id!r} (bytes {r.offset}-"
                                f"{r.end(dim)}) do not match their checksum: the file is "
                                "damaged; delete the store folder and extract again")
                continue
            videos += 1
    return StoreCheck(root, videos, problems, unchecked)
