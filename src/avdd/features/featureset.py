"""Read side of the feature store: :class:`FeatureSet`, a list of (T, D) fp16 videos.

A FeatureSet is either opened from a store directory (all writer ranks merged, shards
memory-mapped read-only) or built from in-memory arrays (tests, notebooks). Both look the same
to heads: ``fs[i]`` is a (T, D) fp16 view, ``fs.labels``/``fs.lengths`` are arrays, and
``subset``/``select`` return cheap views that share the underlying shards.

A store records the code fingerprint of its backbone (``store.json`` ``code``, see
:func:`avdd.provenance.code_fingerprints`); opening a store whose backbone code has changed
since warns (:class:`avdd.features.layout.StaleFeatures`), naming the store and the modules. Features are
keyed by ``Backbone.version``, not by code: a change that alters features must bump it.

Memory: mapped pages that have been touched count in the process RSS until unmapped, so bulk
readers (the probe) call :meth:`FeatureSet.prefetch` before and :meth:`FeatureSet.release`
after each chunk; the pages stay in the OS page cache, only this process's mapping is dropped.
"""

from __future__ import annotations

import copy
import mmap
import os
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    import torch

import numpy as np

from avdd.features.layout import FRAME_DTYPE, ITEM, check_code, read_index, read_info

__all__ = ["FeatureSet"]


class _Shard:
    """A flat (F, D) fp16 source: a shard file mapped on first use, or an in-memory array."""

    def __init__(self, dim: int, *, path: Path | None = None, nbytes: int = 0, array: np.ndarray | None = None):
        self.dim, self.path, self.nbytes = dim, path, nbytes
        self._array = array  # in-memory sets keep their data here
        self._mm = self._tensor = None
        self._norms: np.ndarray | None = None  # per-frame L2 norm cache, NaN = not computed
        self._lock = threading.Lock()

    def __getstate__(self):  # mappings and locks do not cross processes; reopen lazily there
        state = self.__dict__.copy()
        state.update(_mm=None, _tensor=None, _lock=None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def n_frames(self) -> int:
        return len(self._array) if self._array is not None else self.nbytes // (self.dim * ITEM)

    def array(self) -> np.ndarray:
        """(F, D) fp16, read-only."""
        if self._array is not None:
            return self._array
        with self._lock:
            if self._mm is None and self.nbytes:
                with open(self.path, "rb") as f:
                    # Shared read-only mapping: a private writable one would be charged in full
                    # against the commit limit and fail for stores larger than RAM.
                    self._mm = mmap.mmap(f.fileno(), self.nbytes, access=mmap.ACCESS_READ)
        if self._mm is None:
            return np.empty((0, self.dim), FRAME_DTYPE)
        return np.frombuffer(self._mm, FRAME_DTYPE).reshape(-1, self.dim)

    def tensor(self) -> "torch.Tensor":
        """(F, D) fp16 torch view of :meth:`array` (zero copy; never write to it)."""
        if self._tensor is None:
            import torch  # here, so that writers and plain readers need not import torch

            with warnings.catch_warnings():  # torch warns once that the mapping is read-only
                warnings.simplefilter("ignore", UserWarning)
                self._tensor = torch.from_numpy(self.array())
        return self._tensor

    def norms(self) -> np.ndarray:
        with self._lock:
            if self._norms is None:
                self._norms = np.full(self.n_frames, np.nan, np.float32)
        return self._norms

    def advise(self, ranges: np.ndarray, advice: int) -> None:
        """madvise each [start, end) byte range (page-aligned outward); files only."""
        if self._mm is None:
            return
        page = mmap.PAGESIZE
        for start, end in ranges:
            lo = int(start) // page * page
            hi = min(-(-int(end) // page) * page, self.nbytes)
            if hi > lo:
                self._mm.madvise(advice, lo, hi - lo)


class FeatureSet:
    """N videos of (T_i, D) fp16 frames with labels and metadata.

    Build with :meth:`open` (a store directory) or :meth:`from_arrays`. Attributes:
    ``ids`` (N,) object array of str, ``labels`` (N,) int64 (1 fake, 0 real, -1 unknown),
    ``lengths`` (N,) int64 frames, ``dim`` D, ``fps`` frames per second, ``info`` the
    store's ``store.json`` (empty for in-memory sets).
    """

    def __init__(self, shards: Sequence[_Shard], shard_of: np.ndarray, start: np.ndarray,
                 lengths: np.ndarray, labels: np.ndarray, ids: np.ndarray, meta: Sequence[dict],
                 *, dim: int, fps: float, info: dict | None = None):
        self._shards = list(shards)
        self._shard_of = np.asarray(shard_of, np.int64)  # (N,) index into _shards
        self._start = np.asarray(start, np.int64)  # (N,) first frame within its shard
        self.lengths = np.asarray(lengths, np.int64)
        self.labels = np.asarray(labels, np.int64)
        self.ids = np.asarray(ids, dtype=object)
        self._meta = list(meta)
        self.dim, self.fps, self.info = int(dim), float(fps), dict(info or {})
        for a in (self.lengths, self.labels, self.ids):
            a.flags.writeable = False

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def open(cls, root: str | os.PathLike) -> FeatureSet:
        """All committed videos of a store directory, rank by rank, in write order."""
        root = Path(root)
        info = read_info(root)
        check_code(root, info)
        dim = int(info["dim"])
        shards, rows = [], []
        for index in sorted(root.glob("index-*.jsonl")):
            rank = int(index.stem.split("-")[1])
            shard_path = root / f"shard-{rank:05d}.bin"
            records = read_index(index, shard_path, rank, dim).records
            if records:
                rows += [(len(shards), r) for r in records]
                shards.append(_Shard(dim, path=shard_path, nbytes=records[-1].end(dim)))
        ids = [r.video_id for _, r in rows]
        if len(set(ids)) != len(ids):
            dup = sorted({i for i in ids if ids.count(i) > 1})[:5]
            raise ValueError(f"{root}: ids stored by more than one rank, e.g. {dup}")
        fs = cls(
            shards, [s for s, _ in rows], [r.offset // (dim * ITEM) for _, r in rows],
            [r.length for _, r in rows], [-1 if r.label is None else r.label for _, r in rows],
            ids, [r.meta for _, r in rows], dim=dim, fps=info["fps"], info=info,
        )
        fs._crcs = [r.frames_crc32 for _, r in rows]
        return fs

    @classmethod
    def from_arrays(cls, arrays: Sequence[np.ndarray], labels: Sequence[int] | None = None, *,
                    fps: float = 25.0, ids: Sequence[str] | None = None,
                    meta: Sequence[dict] | None = None) -> FeatureSet:
        """In-memory set from a list of (T_i, D) arrays (converted to fp16, like the store)."""
        arrays = [np.asarray(a) for a in arrays]
        if not arrays or any(a.ndim != 2 or len(a) == 0 or a.shape[1] != arrays[0].shape[1] for a in arrays):
            raise ValueError("from_arrays needs a non-empty list of (T>=1, D) arrays with one D")
        lengths = np.array([len(a) for a in arrays])
        flat = np.concatenate(arrays).astype(FRAME_DTYPE)
        flat.flags.writeable = False
        n = len(arrays)
        return cls(
            [_Shard(flat.shape[1], array=flat)], np.zeros(n), np.r_[0, np.cumsum(lengths)[:-1]], lengths,
            np.full(n, -1) if labels is None else labels,
            [str(i) for i in range(n)] if ids is None else [str(i) for i in ids],
            [{} for _ in range(n)] if meta is None else meta, dim=flat.shape[1], fps=fps,
        )

    def subset(self, idx) -> FeatureSet:
        """Videos ``idx`` (int indices, boolean mask or slice), sharing shards and caches."""
        idx = np.arange(len(self))[idx] if not isinstance(idx, np.ndarray) or idx.dtype == bool \
            else np.asarray(idx, np.int64)
        idx = np.atleast_1d(idx)
        return FeatureSet(self._shards, self._shard_of[idx], self._start[idx], self.lengths[idx],
                          self.labels[idx], self.ids[idx], [self._meta[i] for i in idx],
                          dim=self.dim, fps=self.fps, info=self.info)

    def with_labels(self, labels: Sequence[int]) -> FeatureSet:
        """The same videos with other labels ``(N,)`` (e.g. a shuffled-label control)."""
        labels = np.asarray(labels, np.int64)
        if labels.shape != (len(self),):
            raise ValueError(f"with_labels needs {len(self)} labels, got shape {labels.shape}")
        out = self.subset(np.arange(len(self)))
        out.labels = labels
        out.labels.flags.writeable = False
        return out

    def drop_leading(self, frames: Sequence[int]) -> FeatureSet:
        """The same videos without their first ``frames[i]`` frames ``(N,)``, sharing shards
        and caches (no copy). At least one frame of each video is kept, so a video is never
        empty: the frames actually dropped are ``min(frames[i], lengths[i] - 1)``. Metadata
        (e.g. fake segments) stays on the video's own clock."""
        k = np.asarray(frames, np.int64)
        if k.shape != (len(self),) or (k < 0).any():
            raise ValueError(f"drop_leading needs {len(self)} frame counts >= 0, got shape "
                             f"{k.shape}")
        k = np.minimum(k, self.lengths - 1)
        return FeatureSet(self._shards, self._shard_of, self._start + k, self.lengths - k,
                          self.labels, self.ids, self._meta, dim=self.dim, fps=self.fps,
                          info=self.info)

    def select(self, ids: Sequence[str]) -> FeatureSet:
        """Videos with these ids, in this order (KeyError naming the first missing id)."""
        pos = {v: i for i, v in enumerate(self.ids)}
        missing = [v for v in ids if v not in pos]
        if missing:
            raise KeyError(f"{len(missing)} ids not in this feature set, e.g. {missing[0]!r}")
        return self.subset(np.array([pos[v] for v in ids], np.int64))

    # -- access ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, i: int) -> np.ndarray:
        """(T, D) fp16 read-only view (a memory map for stores: copy it to keep it)."""
        s, a = self._shards[self._shard_of[i]], self._start[i]
        return s.array()[a:a + self.lengths[i]]

    def tensor(self, i: int) -> "torch.Tensor":
        """(T, D) fp16 torch view of video i without copying; never write to it."""
        s, a = self._shards[self._shard_of[i]], self._start[i]
        return s.tensor()[a:a + self.lengths[i]]

    def meta(self, i: int) -> dict:
        """Metadata of video i (a copy), e.g. ``{"fake_segments": [[s, e], ...]}``."""
        return copy.deepcopy(self._meta[i])

    def frame_norms(self, i: int, fp32_frames: np.ndarray | None = None) -> np.ndarray:
        """(T,) float32 L2 norm of each frame of video i, computed in fp32 once and cached per
        shard (4 bytes per frame) so later passes skip it. Returns a view of the cache.

        ``fp32_frames``: the caller's fp32 copy of ``self[i]``, if it has one, to compute from
        (saves re-reading and converting the frames)."""
        s, a = self._shards[self._shard_of[i]], self._start[i]
        view = s.norms()[a:a + self.lengths[i]]
        if np.isnan(view[0]):
            import torch  # its row norm is ~2x NumPy's einsum here

            x = self.tensor(i).float() if fp32_frames is None else torch.from_numpy(fp32_frames)
            view[:] = torch.linalg.vector_norm(x, dim=1).numpy()
        return view

    @property
    def nbytes(self) -> int:
        """Bytes of fp16 frames in this set."""
        return int(self.lengths.sum()) * self.dim * ITEM

    def video_fps(self, i: int) -> float:
        """Frame rate of video ``i``'s features: the store's, unless the video was decoded at
        its native rate and its features came at another one (then it is in its meta)."""
        return float(self._meta[i].get("fps", self.fps))

    def frame_checksums(self) -> list[str | None]:
        """Per video, the checksum its index line recorded for its frames (None: unknown,
        e.g. an in-memory set or a store written before checksums)."""
        crcs = getattr(self, "_crcs", None)
        return list(crcs) if crcs is not None else [None] * len(self)

    def flat_layout(self) -> tuple[tuple[np.ndarray, ...], np.ndarray, np.ndarray]:
        """Where the frames lie, for compiled kernels that read whole shards instead of
        per-video views (one Python call per video is what they avoid).

        Returns:
            ``(shards, shard_of, start)``: the shards as ``(F_s, D)`` fp16 arrays (memory maps
            are not copied), and per video ``shard_of`` (N,) int64, the index of its shard, and
            ``start`` (N,) int64, its first frame in that shard.
        """
        return tuple(s.array() for s in self._shards), self._shard_of, self._start

    def storage_order(self) -> np.ndarray:
        """(N,) positions sorted by where the frames lie (shard, offset): sequential reading."""
        return np.lexsort((self._start, self._shard_of))

    def byte_ranges(self, idx) -> list[tuple[int, np.ndarray]]:
        """[(shard, (k, 2) merged [start, end) byte ranges)] covering videos ``idx``."""
        idx = np.atleast_1d(np.asarray(idx, np.int64))
        out = []
        row = self.dim * ITEM
        for s in np.unique(self._shard_of[idx]):
            sel = idx[self._shard_of[idx] == s]
            start = np.sort(self._start[sel] * row)
            end = np.sort((self._start[sel] + self.lengths[sel]) * row)
            # Merge touching ranges: one madvise per contiguous run, not per video.
            brk = np.flatnonzero(start[1:] > end[:-1])
            out.append((int(s), np.stack([start[np.r_[0, brk + 1]], end[np.r_[brk, len(end) - 1]]], 1)))
        return out

    def prefetch(self, idx) -> None:
        """Ask the OS to start reading videos ``idx`` from disk (returns at once)."""
        for s, ranges in self.byte_ranges(idx):
            self._shards[s].array()
            self._shards[s].advise(ranges, mmap.MADV_WILLNEED)

    def release(self, idx) -> None:
        """Unmap videos ``idx`` from this process (they stay in the page cache), so streaming
        over a store larger than RAM keeps a small RSS. Views of them stay valid (re-fault)."""
        for s, ranges in self.byte_ranges(idx):
            self._shards[s].advise(ranges, mmap.MADV_DONTNEED)

    def __repr__(self) -> str:
        n_fake = int((self.labels == 1).sum())
        return (f"FeatureSet(n={len(self)}, fake={n_fake}, dim={self.dim}, fps={self.fps}, "
                f"frames={int(self.lengths.sum())}, {self.nbytes / 1e9:.2f} GB)")
