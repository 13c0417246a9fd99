"""Feature store: per-video (T, D) fp16 features in flat append-only shards plus a JSON index.

One directory per (backbone, dataset, split)::

    store.json            dim, fps, dtype, backbone, config, compute, code, provenance
                          (written once)
    shard-RRRRR.bin       concatenated fp16 frames written by rank RRRRR (no header)
    index-RRRRR.jsonl     one line per committed video: id, shard, offset (bytes), length
                          (frames), label, meta (any JSON-able dict, e.g. fake segments),
                          frames_crc32 (of its fp16 bytes), line_crc32 (of the line's fields)

Each writer rank owns its shard and index, so ranks never contend. A video is committed by
its index line, which is written only after its frames are on disk (fsync'd when ``durable``),
so a crash at any point loses at most the video being written: on reopen, a trailing partial
index line is dropped and the shard is truncated to the end of the last committed record. A
failed append (a full disk, a short write) is rolled back at once, so the store stays as it
was before it and the next append is sound; the error is :class:`DiskFull` when the disk is.

Integrity: ``store.json`` and every index line carry a checksum of their fields (checked on
every open: an edited ``dim`` or label is caught; a damaged line is skipped with a warning
naming its file and line), and every record a checksum of its frames (checked by
:func:`avdd.features.layout.verify_store`, ``avdd check-store DIR``, and when ranks are
merged).

Reading goes through :class:`FeatureSet`, which merges all ranks and memory-maps the shards
(flat memmap + offsets was the fastest format measured; ENVIRONMENT.md, "Feature storage").
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from avdd.features.featureset import FeatureSet
from avdd.features.layout import (
    DamagedRecord,
    frames_checksum,
    info_checksum,
    line_checksum,
    read_index,
    read_info,
)

__all__ = ["FeatureStore", "FeatureSet", "STORE_FORMAT", "DiskFull"]

#: errno values that mean "no room to write": the disk, a quota, a file-size limit.
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


class DiskFull(OSError):
    """No space left to append to a feature store; the store is as it was before the append."""

STORE_FORMAT = "avdd-feature-store/1"


def _json_default(obj: Any) -> Any:
    # numpy scalars/arrays show up in metadata (segment bounds, lengths); store them as JSON.
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"metadata value {obj!r} of type {type(obj).__name__} is not JSON-serialisable")


def _write_all(f, data) -> None:
    """Write every byte of ``data`` to the unbuffered file ``f``: a short write (a disk that
    fills up mid-write) is continued, and no progress at all is an error."""
    view = memoryview(data).cast("B")
    while view.nbytes:
        n = f.write(view)
        if not n:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[n:]


class FeatureStore:
    """Append-only writer for one store directory and one writer rank.

    Args:
        root: store directory (created if missing).
        rank: writer rank; owns ``shard-{rank:05d}.bin`` and ``index-{rank:05d}.jsonl``.
            Use one rank per process (``RANK`` under torchrun); a second process writing the
            same rank is refused (advisory file lock).
        dim, fps: feature size D and frame rate (Hz). Required to create a store; when the
            store exists they are checked against ``store.json``.
        backbone, config: backbone name and its config dict; checked against ``store.json``
            when given, so two configs never share a directory.
        provenance: JSON-able dict (git SHA, package versions, ...) recorded at creation.
        compute: how the features are computed where that changes their last bits (device
            type, batched forward passes; see :func:`avdd.features.extract.compute_signature`). Recorded
            at creation; a writer passing another one is refused, so one store never mixes
            features of two kinds of kernels.
        code: ``{module: hash}`` of the backbone's code
            (:func:`avdd.provenance.code_fingerprints`), recorded at creation; reading the
            store after that code changed warns (:func:`avdd.features.featureset.check_code`).
        durable: fsync the shard before each index line and the index after it (~0.4 ms per
            append measured here, negligible next to a backbone forward). With False, data is
            only flushed to the OS: it survives a process crash but not a power loss.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        rank: int = 0,
        dim: int | None = None,
        fps: float | None = None,
        backbone: str | None = None,
        config: dict | None = None,
        provenance: dict | None = None,
        compute: dict | None = None,
        code: dict | None = None,
        durable: bool = True,
    ):
        self.root = Path(root)
        self.rank = int(rank)
        self.durable = durable
        self.root.mkdir(parents=True, exist_ok=True)
        self.info = self._open_or_create(dim, fps, backbone, config, provenance, compute, code)
        self.dim = int(self.info["dim"])
        self.fps = float(self.info["fps"])
        self.shard_path = self.root / f"shard-{self.rank:05d}.bin"
        self.index_path = self.root / f"index-{self.rank:05d}.jsonl"
        self._shard = None  # opened lazily so a read-only use (done_ids) takes no lock
        self._index = None
        self._ids: set[str] = set()
        self._end = 0  # byte offset where the next record starts

    # -- store.json ------------------------------------------------------------------------
    def _open_or_create(self, dim, fps, backbone, config, provenance, compute, code) -> dict:
        path = self.root / "store.json"
        if not path.exists():
            if dim is None or fps is None:
                raise FileNotFoundError(
                    f"{path} does not exist: pass dim= and fps= to create a new feature store"
                )
            info = {
                "format": STORE_FORMAT, "dtype": "float16", "dim": int(dim), "fps": float(fps),
                "backbone": backbone, "config": config or {}, "compute": compute,
                "code": code, "provenance": provenance or {},
                "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            }
            info = json.loads(json.dumps(info, default=_json_default))  # what a reader sees
            info["info_crc32"] = info_checksum(info)
            tmp = self.root / f".store.json.{os.getpid()}.tmp"
            with open(tmp, "w") as f:
                f.write(json.dumps(info, indent=2, default=_json_default))
                f.flush()
                if self.durable:
                    os.fsync(f.fileno())
            try:
                os.link(tmp, path)  # atomic create-if-absent: ranks may race to create
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
            self._sync_dir()
        info = read_info(self.root)
        if info.get("format") != STORE_FORMAT:
            raise ValueError(f"{path} is not an {STORE_FORMAT} store (format={info.get('format')!r})")
        given = {"dim": dim, "fps": None if fps is None else float(fps),
                 "backbone": backbone, "config": None if config is None
                 else json.loads(json.dumps(config, default=_json_default))}
        for key, value in given.items():
            if value is not None and info.get(key) != value:
                raise ValueError(
                    f"{path} was written with {key}={info.get(key)!r} but {value!r} was passed; "
                    "use a separate directory per backbone/config"
                )
        recorded = info.get("compute")
        if compute is not None and recorded is not None and recorded != compute:
            raise ValueError(
                f"{path} was extracted with {recorded} but this run computes with {compute}: "
                "the two give features that differ in their last bits and must not share a "
                "store; resume with the same --device/--batch-size, or extract into another "
                "--cache-dir")
        return info

    # -- writing ---------------------------------------------------------------------------
    def _open_for_append(self) -> None:
        """Lock this rank, drop a torn tail left by a crash, and position at the end."""
        # Unbuffered: a line that failed to write must not be flushed later by a buffer.
        self._index = open(self.index_path, "a+b", buffering=0)
        try:
            fcntl.flock(self._index.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._index.close()
            self._index = None
            raise RuntimeError(
                f"rank {self.rank} of {self.root} is being written by another process; "
                "give each writer its own rank"
            ) from None
        scan = read_index(self.index_path, self.shard_path, self.rank, self.dim, warn=False)
        records = scan.records
        if scan.damaged:
            self._set_aside(scan)
        else:
            self._index.truncate(scan.length)  # drops a partial last line (crash mid-write)
        self._end = records[-1].end(self.dim) if records else 0
        self._ids = {r.video_id for r in records}
        fd = os.open(self.shard_path, os.O_RDWR | os.O_CREAT, 0o644)
        self._shard = os.fdopen(fd, "r+b", buffering=0)
        self._shard.truncate(self._end)  # bytes past the last committed record are orphans
        self._shard.seek(self._end)
        if self.durable:
            os.fsync(self._index.fileno())
            os.fsync(self._shard.fileno())
            self._sync_dir()  # the new files' directory entries

    def _set_aside(self, scan) -> None:
        """Rewrite the index without its damaged lines (set aside
        for inspection, as ``damaged-index-RRRRR.jsonl``): appends reuse the bytes a damaged line may point at, and such a line
        must never come to read another video's frames."""
        import warnings

        data = self.index_path.read_bytes()
        bad = {lineno for lineno, _, _ in scan.damaged}
        lines = data[:scan.length].splitlines(keepends=True)
        keep = b"".join(line for k, line in enumerate(lines, 1) if k not in bad)
        aside = self.index_path.with_name("damaged-" + self.index_path.name)
        with open(aside, "ab") as f:
            f.write(b"".join(line for _, line, _ in scan.damaged))
        tmp = self.index_path.with_name(f".{self.index_path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            f.write(keep)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.index_path)
        # The locked handle still points at the old file: reopen (and lock) the new one.
        self._index.close()
        self._index = open(self.index_path, "a+b", buffering=0)
        fcntl.flock(self._index.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        lines_txt = ", ".join(f"line {n} ({why})" for n, _, why in scan.damaged)
        warnings.warn(f"{self.index_path}: damaged {lines_txt} moved to {aside.name}; their "
                      "videos are extracted again", DamagedRecord, stacklevel=4)

    def _sync_dir(self) -> None:
        if self.durable:
            fd = os.open(self.root, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def append(self, video_id: str, feats: np.ndarray, *, label: int | None = None, **meta) -> None:
        """Commit one video.

        Args:
            video_id: unique id (e.g. the split CSV's relative path).
            feats: (T, D) array, T >= 1; stored as fp16 (values must fit fp16's range).
            label: 0 real / 1 fake, or None when unknown (read back as -1).
            **meta: JSON-able per-video metadata (e.g. ``fake_segments=[[s, e], ...]``).
        """
        if self._shard is None:
            self._open_for_append()
        video_id = str(video_id)
        if video_id in self._ids:
            raise ValueError(f"{video_id!r} is already in {self.root}; skip ids in done_ids()")
        with np.errstate(over="ignore"):  # overflow is reported below, with the video's id
            x = np.ascontiguousarray(feats, dtype=np.float16)
        if x.ndim != 2 or x.shape[1] != self.dim or x.shape[0] == 0:
            raise ValueError(f"{video_id!r}: expected features of shape (T>=1, {self.dim}), got {np.shape(feats)}")
        if not np.isfinite(x).all():
            raise ValueError(f"{video_id!r}: features are not finite in fp16 (NaN, or |x| > 65504)")
        data = memoryview(x).cast("B")
        fields = json.loads(json.dumps({
            "id": video_id, "shard": self.shard_path.name, "offset": self._end,
            "length": int(x.shape[0]), "label": None if label is None else int(label),
            "meta": meta, "frames_crc32": frames_checksum(data),
        }, default=_json_default))
        fields["line_crc32"] = line_checksum(fields)
        line = (json.dumps(fields) + "\n").encode()
        index_size = os.fstat(self._index.fileno()).st_size
        # Data first, then the index line that commits it: a crash in between leaves orphan
        # bytes that the next open truncates, never an index entry pointing at missing data.
        try:
            _write_all(self._shard, data)
            if self.durable:
                os.fsync(self._shard.fileno())
            _write_all(self._index, line)
            if self.durable:
                os.fsync(self._index.fileno())
        except BaseException as err:
            self._roll_back(index_size)
            if isinstance(err, OSError) and err.errno in _NO_SPACE:
                raise DiskFull(err.errno, f"{self.root}: no space left to store {video_id!r} "
                               f"({os.strerror(err.errno)}); nothing already stored is lost: "
                               "free some space (or pass another --cache-dir) and run again "
                               "to continue") from err
            raise
        self._end += x.nbytes
        self._ids.add(video_id)

    def _roll_back(self, index_size: int) -> None:
        """Put both files back as they were before a failed append (best effort: if even the
        truncation fails, the next open drops the torn tail)."""
        for f, size in ((self._shard, self._end), (self._index, index_size)):
            try:
                f.truncate(size)
                f.seek(size)
            except OSError:
                pass

    def done_ids(self) -> set[str]:
        """Ids committed by any rank (to skip them when resuming)."""
        done = set()
        for index in sorted(self.root.glob("index-*.jsonl")):
            rank = int(index.stem.split("-")[1])
            records = read_index(index, self.root / f"shard-{rank:05d}.bin", rank,
                                 self.dim, warn=False).records
            done.update(r.video_id for r in records)
        return done

    def features(self) -> FeatureSet:
        """Read view of everything committed so far, all ranks merged."""
        if self._index is not None:
            self._index.flush()
        return FeatureSet.open(self.root)

    def close(self) -> None:
        for f in (self._shard, self._index):
            if f is not None:
                if self.durable:
                    os.fsync(f.fileno())
                f.close()  # also releases the rank lock
        self._shard = self._index = None

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FeatureStore({str(self.root)!r}, rank={self.rank}, dim={self.dim}, fps={self.fps})"


