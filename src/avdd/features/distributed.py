"""Scale-out extraction: static strided shards per rank, and merging the ranks' stores.

Extraction is embarrassingly parallel, so no collective communication is needed: every process
of a ``torchrun`` (or SLURM) launch reads its rank from the environment, takes every
``world_size``-th video of the split (a static, strided shard: deterministic, balanced for
sorted manifests, and stable across reruns) and appends to its own rank of each feature store
(``shard-RRRRR.bin`` + ``index-RRRRR.jsonl``, see :mod:`avdd.features.store`). ``DistributedSampler`` is
not used: it pads shards by repeating videos.

Readers already see all ranks (:meth:`avdd.features.featureset.FeatureSet.open`); :func:`merge_store`
rewrites a finished multi-rank store as one rank in manifest order, byte for byte what a
single-process run writes.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from avdd.features.featureset import FeatureSet
from avdd.features.layout import StoreError, frames_checksum

T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    """This process's place in a launch.

    Attributes:
        rank: global rank, 0 ≤ rank < world_size.
        world_size: number of processes.
        local_rank: rank on this machine (picks the GPU: ``cuda:{local_rank}``).
        source: where it was read from (``"torchrun"``, ``"slurm"`` or ``"single"``).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    source: str = "single"

    def __post_init__(self) -> None:
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise ValueError(f"invalid shard: rank {self.rank} of world size {self.world_size}")

    def take(self, items: Sequence[T]) -> list[T]:
        """Every ``world_size``-th item starting at ``rank`` (static strided shard)."""
        return list(items[self.rank::self.world_size])


def current_shard(env: dict[str, str] | None = None) -> Shard:
    """Read the rank from the environment.

    ``torchrun`` sets ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``; SLURM sets ``SLURM_PROCID``/
    ``SLURM_NTASKS``/``SLURM_LOCALID`` (``srun avdd extract ...`` without torchrun). torchrun's
    variables win when both are present (torchrun inside a SLURM allocation).
    """
    env = os.environ if env is None else env
    if "RANK" in env and "WORLD_SIZE" in env:
        return Shard(int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", 0)),
                     "torchrun")
    if "SLURM_PROCID" in env and "SLURM_NTASKS" in env:
        return Shard(int(env["SLURM_PROCID"]), int(env["SLURM_NTASKS"]),
                     int(env.get("SLURM_LOCALID", 0)), "slurm")
    return Shard()


def _locked_ranks(root: Path) -> list[str]:
    """Index files some writer process holds the lock of (a rank still running)."""
    busy = []
    for index in sorted(root.glob("index-*.jsonl")):
        with open(index, "rb") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                busy.append(index.name)
            else:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    return busy


def _recover(root: Path) -> None:
    """Finish or undo a merge that was interrupted between its two renames."""
    old, tmp = root.with_name(root.name + ".premerge"), root.with_name(root.name + ".merging")
    if not root.exists() and old.exists():
        os.replace(old, root)  # crashed after moving the original away: put it back
    if tmp.exists():
        shutil.rmtree(tmp)
    if old.exists():
        shutil.rmtree(old)


def merge_store(root: str | os.PathLike, order: Sequence[str] | None = None) -> Path:
    """Rewrite a store written by several ranks as a single rank-0 store.

    Args:
        root: store directory (``store.json`` + ``index-*.jsonl`` + ``shard-*.bin``).
        order: video ids in the order to write them (the manifest order of a single-process
            run); ids not listed keep their current order after the listed ones, listed ids
            that are not stored are ignored (failed videos).
    Returns:
        ``root``. The merged directory replaces the original through two renames; an
        interrupted merge is finished or undone by the next call. Failure logs of the ranks
        are concatenated into ``failures.jsonl``.
    Raises:
        RuntimeError: a rank is still being written (its lock is held).
    """
    from avdd.features.store import FeatureStore

    root = Path(root)
    _recover(root)
    busy = _locked_ranks(root)
    if busy:
        raise RuntimeError(f"{root}: {', '.join(busy)} still being written; merge after every "
                           "rank has finished")
    fs = FeatureSet.open(root)
    pos = {vid: i for i, vid in enumerate(fs.ids)}
    listed = [pos[v] for v in (order or []) if v in pos]
    seen = set(listed)
    sequence = listed + [i for i in range(len(fs)) if i not in seen]
    info = json.loads((root / "store.json").read_text())
    tmp = root.with_name(root.name + ".merging")
    prov = {**info.get("provenance", {}),
            "merged_from_ranks": len(list(root.glob("index-*.jsonl")))}
    with FeatureStore(tmp, dim=info["dim"], fps=info["fps"], backbone=info.get("backbone"),
                      config=info.get("config"), provenance=prov,
                      compute=info.get("compute"), code=info.get("code")) as out:
        crcs = fs.frame_checksums()
        for i in sequence:
            label = int(fs.labels[i])
            frames = fs[i]
            # Every byte is read here anyway: a damaged record stops the merge, naming it.
            if crcs[i] is not None and frames_checksum(frames.tobytes()) != crcs[i]:
                raise StoreError(f"{root}: the frames of {fs.ids[i]!r} do not match their "
                                 "checksum; run `avdd check-store` on it and re-extract")
            out.append(fs.ids[i], frames, label=None if label < 0 else label, **fs.meta(i))
    logs = sorted(root.glob("failures*.jsonl"))
    if logs:
        (tmp / "failures.jsonl").write_text("".join(p.read_text() for p in logs))
    old = root.with_name(root.name + ".premerge")
    os.replace(root, old)
    os.replace(tmp, root)
    shutil.rmtree(old)
    return root
