"""The linear probe's epoch order: which videos, in which order, read in which pools.

Kept apart from :mod:`avdd.heads.probe` (the estimator and its maths) because the order is a
question of its own: the official recipe visits the training videos in a fresh uniform
permutation every epoch (torch's ``DataLoader(shuffle=True)`` at batch size 1), while reading
a store larger than RAM may want storage-sequential chunks. :func:`plan_epoch` gives both,
as pools of batches: a pool is what the probe prefetches (and, for large sets, unmaps) as one;
:class:`Readahead` decides whether prefetching the next pool is worth its system calls.
"""

from __future__ import annotations

import os
import resource

import numpy as np

from avdd.features.featureset import FeatureSet
from avdd.features.layout import ITEM

__all__ = ["SHUFFLES", "Readahead", "plan_epoch"]

SHUFFLES = ("uniform", "blocked")


def _cut(order: np.ndarray, ends: np.ndarray, batch_size: int) -> list[list[np.ndarray]]:
    """``order`` split at the positions ``ends`` into pools, each cut into batches."""
    pools = np.split(order, ends[(ends > 0) & (ends < len(order))])
    return [[pool[k:k + batch_size] for k in range(0, len(pool), batch_size)] for pool in pools if len(pool)]


def _storage_chunks(fs: FeatureSet, label: int, rng: np.random.Generator,
                    chunk_bytes: int) -> list[np.ndarray]:
    """The videos of one class in storage order, cut into runs of about ``chunk_bytes`` (the
    first cut shifted at random, so that chunks differ from epoch to epoch), in random order."""
    order = fs.storage_order()
    order = order[fs.labels[order] == label]
    nbytes = fs.lengths[order] * fs.dim * ITEM
    chunk_id = (np.cumsum(nbytes) - nbytes + rng.integers(chunk_bytes)) // chunk_bytes
    chunks = np.split(order, np.flatnonzero(np.diff(chunk_id)) + 1)
    return [chunks[j] for j in rng.permutation(len(chunks))]


def plan_epoch(fs: FeatureSet, rng: np.random.Generator, *, batch_size: int,
               shuffle: str = "uniform", chunk_bytes: int = 32 << 20,
               pool_chunks: int = 8) -> list[list[np.ndarray]]:
    """One epoch as pools of batches: ``[[batch indices, ...] per pool]``; every video once.

    Pools only group batches for reading (prefetch the next pool, unmap the last); the
    order of the videos is set by ``shuffle``:

    * ``"uniform"`` (the official recipe: torch's ``DataLoader(shuffle=True)``): a fresh
      uniform permutation of all N videos, cut into batches in that order; pools are
      consecutive runs of batches holding about ``chunk_bytes * pool_chunks`` bytes of frames,
      so pooling never changes the order.
    * ``"blocked"`` (reads that stay sequential, for stores larger than RAM on slow disks):
      each class's videos, in storage order, are cut into chunks of about ``chunk_bytes``,
      the chunks shuffled and grouped ``pool_chunks`` at a time, and each group shuffled. The
      classes' streams are then merged by a uniform random interleaving (the sequence of
      labels is a uniform permutation of the labels), so the label sequence, and with it
      every run of consecutive same-class steps, is distributed exactly as under a uniform
      shuffle, even when the store was written class by class. Within a class the order is
      not uniform: videos stored close together are visited close together.
    """
    n = len(fs)
    if shuffle == "uniform":
        order = rng.permutation(n)
        cum = np.cumsum(fs.lengths[order] * fs.dim * ITEM)
        ends = np.flatnonzero(np.diff(cum // max(1, chunk_bytes * pool_chunks))) + 1
        ends = np.unique(-(-ends // batch_size) * batch_size)  # pools hold whole batches
        return _cut(order, ends, batch_size)
    if shuffle != "blocked":
        raise ValueError(f"shuffle={shuffle!r}: expected one of {SHUFFLES}")
    classes = np.unique(fs.labels)
    streams, starts = [], []  # per class: its videos in visiting order, and its pools' starts
    for c in classes:
        chunks = _storage_chunks(fs, c, rng, chunk_bytes)
        pools = [rng.permutation(np.concatenate(chunks[p:p + pool_chunks]))
                 for p in range(0, len(chunks), pool_chunks)]
        streams.append(np.concatenate(pools))
        starts.append(np.cumsum([0] + [len(p) for p in pools[:-1]]))
    sequence = rng.permutation(np.searchsorted(classes, fs.labels))  # uniform label sequence
    order, ends = np.empty(n, np.int64), []
    for k, (stream, first) in enumerate(zip(streams, starts)):
        where = np.flatnonzero(sequence == k)
        order[where] = stream
        ends.append(where[first])  # a pool of this class starts here: a new read window
    return _cut(order, np.unique(np.concatenate(ends)), batch_size)


def _disk_bytes_read() -> int:
    """Bytes this process has read from storage so far (block inputs, readahead included)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_inblock * 512


class Readahead:
    """Prefetches the next pool while one is computed, as long as pools come from disk.

    A prefetch is one ``madvise(WILLNEED)`` per video. In a uniform order a pool's videos are
    scattered, so that is ~500 system calls per 256 MB pool: measured here, about a quarter of
    an epoch on an AV1M-sized store that the page cache holds anyway, and a gain when it does
    not (the OS reads many ranges at once). So prefetching stays on while the last pool read
    at least 1/16 of a pool's bytes from storage (seen as this process's block inputs, which
    prefetches count too), goes off once pools are served from memory, and comes back when
    reads reappear (pages evicted). A set larger than physical memory is always prefetched
    (it cannot all be cached; and on a file system that does not report block inputs, it
    still is). One object lives through a whole fit, so a cached set stays unprefetched.
    """

    def __init__(self, fs: FeatureSet):
        ram = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        self.fs, self.always = fs, fs.nbytes > ram
        self.on, self.mark = True, None

    def __call__(self, idx: np.ndarray, pool_bytes: int) -> None:
        """Prefetch videos ``idx`` (the next pool, ``pool_bytes`` of frames) if worth it (the
        first call always does: nothing has been read yet to tell)."""
        now = _disk_bytes_read()
        self.on = self.always or self.mark is None or (now - self.mark) * 16 >= pool_bytes
        self.mark = now
        if self.on:
            self.fs.prefetch(idx)
