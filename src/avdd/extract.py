"""Extraction runner: a split's videos → decode once → every requested backbone → feature stores.

Resumable (videos already in a store are skipped), failure-tolerant (a file that cannot be
decoded or featurised is recorded in ``failures.jsonl`` beside the store and the run goes on)
and parallel over decode worker processes. Each clip is decoded once for all backbones.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from .backbones import Backbone, get_backbone
from .config import Profile
from .datasets import Item, load_items
from .media import MediaError, read_clip
from .results import provenance
from .roi import Roi
from .store import FeatureStore


@dataclass(frozen=True)
class ExtractReport:
    """What one run did for one (backbone, dataset, split)."""

    backbone: str
    store: Path
    total: int
    already_done: int
    extracted: int
    failed: int
    failures_log: Path

    def summary(self) -> str:
        s = (f"{self.backbone}: {self.extracted} extracted, {self.already_done} already done, "
             f"{self.failed} failed of {self.total} → {self.store}")
        return s + (f" (failures: {self.failures_log})" if self.failed else "")


def backbone_key(backbone: Backbone) -> str:
    """Store folder name: the backbone name plus a hash of its configuration, so that features
    of a changed configuration never mix with old ones."""
    cfg = json.dumps(backbone.config(), sort_keys=True, default=str)
    return f"{backbone.name}-{hashlib.sha256(cfg.encode()).hexdigest()[:8]}"


def store_dir(profile: Profile, backbone: Backbone, dataset: str, split: str) -> Path:
    return profile.store_dir(backbone_key(backbone), dataset, split)


# -- worker side --------------------------------------------------------------------------
_WORKER_BACKBONES: dict[str, Backbone] = {}


def _init_worker(names: Sequence[str], *, single_thread: bool = True) -> None:
    # Backbones are built once per worker process, not pickled per task.
    if single_thread:
        import torch
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(1)
        threadpool_limits(1)
    for name in names:
        _WORKER_BACKBONES[name] = get_backbone(name)


def _decode(item: Item, bbs: dict[str, Backbone]):
    """Decode what ``bbs`` need. Returns ``{backbone key: clip or error message}``: when the
    joint decode fails (e.g. no audio track), each modality is retried alone so that a file
    without audio still serves the visual backbones and vice versa."""
    video = any(b.needs_video for b in bbs.values())
    audio = any(b.needs_audio for b in bbs.values())
    try:
        clip = read_clip(item.path, video=video, audio=audio)
        return dict.fromkeys(bbs, clip)
    except MediaError as e:
        joint_error = str(e)
        if not (video and audio):
            return dict.fromkeys(bbs, joint_error)
    out: dict = {}
    for need_video, need_audio in ((True, False), (False, True)):
        group = [k for k, b in bbs.items()
                 if (b.needs_video, b.needs_audio) == (need_video, need_audio)]
        if not group:
            continue
        try:
            clip = read_clip(item.path, video=need_video, audio=need_audio)
        except MediaError as e:
            clip = str(e)
        out.update(dict.fromkeys(group, clip))
    # Audio-visual backbones need both streams: the joint decode's error stands for them.
    return {k: out.get(k, joint_error) for k in bbs}


def _featurise(task: tuple[Item, tuple[str, ...]]
               ) -> tuple[Item, dict[str, np.ndarray], dict[str, str]]:
    """Decode one clip and run the backbones it still needs.

    Returns ``(item, features by backbone, error message by backbone)``.
    """
    item, names = task
    feats: dict[str, np.ndarray] = {}
    errors: dict[str, str] = {}
    bbs = {n: _WORKER_BACKBONES[n] for n in names}  # keyed by spec string, as the stores
    try:
        clips = _decode(item, bbs)
    except Exception as e:  # noqa: BLE001 - any per-file failure is recorded, the run goes on
        msg = f"{item.path}: {type(e).__name__}: {e}\n{traceback.format_exc(limit=3)}"
        return item, {}, {n: msg for n in names}
    roi = Roi.from_annotation(item.annotation)
    for key, b in bbs.items():
        clip = clips[key]
        if isinstance(clip, str):
            errors[key] = clip
            continue
        try:
            f = np.asarray(b(clip, roi), dtype=np.float32)
            if f.ndim != 2 or f.shape[1] != b.dim or len(f) == 0:
                raise ValueError(f"{b.name} returned shape {f.shape}, expected (T>0, {b.dim})")
            if not np.isfinite(f).all():
                raise ValueError(f"{b.name} returned non-finite features")
            feats[key] = f
        except Exception as e:  # noqa: BLE001
            tb = traceback.format_exc(limit=3)
            errors[key] = f"{item.path}: {key}: {type(e).__name__}: {e}\n{tb}"
    return item, feats, errors


# -- main side ----------------------------------------------------------------------------
def extract(
    profile: Profile,
    backbones: Sequence[str],
    dataset: str,
    split: str,
    *,
    limit: int | None = None,
    workers: int = 1,
    progress: bool = True,
) -> list[ExtractReport]:
    """Extract features of one split for several backbones, skipping what is already stored.

    Args:
        profile: where the data are and where stores go.
        backbones: registry names.
        dataset, split: which videos (see :func:`avdd.datasets.load_items`).
        limit: only the first ``limit`` videos of the split (quick trials).
        workers: decode/feature processes (1 = in this process).
        progress: show a progress bar (videos/s and ETA).
    """
    return extract_many(profile, backbones, [(dataset, split)], limit=limit, workers=workers,
                        progress=progress)


def extract_many(
    profile: Profile,
    backbones: Sequence[str],
    jobs: Sequence[tuple[str, str]],
    *,
    limit: int | None = None,
    workers: int = 1,
    progress: bool = True,
) -> list[ExtractReport]:
    """:func:`extract` for several ``(dataset, split)`` jobs sharing one worker pool (starting
    worker processes costs seconds each time)."""
    if workers <= 1:
        _init_worker(list(backbones), single_thread=False)
        return [r for ds, sp in jobs
                for r in _run_job(profile, backbones, ds, sp, limit, map, progress)]
    # fork (Linux): workers start in milliseconds and scripts need no `if __name__ ==
    # "__main__"` guard (spawn re-imports the caller's main module). Workers pin themselves
    # to one BLAS/torch thread, so a thread pool inherited from the parent is not used.
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    with ctx.Pool(workers, initializer=_init_worker, initargs=(list(backbones),)) as pool:
        def imap(fn, tasks):
            return pool.imap(fn, tasks, chunksize=2)

        return [r for ds, sp in jobs
                for r in _run_job(profile, backbones, ds, sp, limit, imap, progress)]


def _run_job(profile: Profile, backbones: Sequence[str], dataset: str, split: str,
             limit: int | None, mapper, progress: bool) -> list[ExtractReport]:
    items = load_items(profile, dataset, split)[:limit]
    models = {n: get_backbone(n) for n in backbones}
    stores: dict[str, FeatureStore] = {}
    for name, bb in models.items():
        prov = provenance(profile=profile.name, synthetic=profile.synthetic,
                          weights=bb.weights, backbone=bb.config(), dataset=dataset, split=split)
        stores[name] = FeatureStore(
            store_dir(profile, bb, dataset, split), dim=bb.dim, fps=bb.fps,
            backbone=name, config=bb.config(), provenance=prov)
    done = {n: s.done_ids() for n, s in stores.items()}
    tasks = []
    for item in items:
        todo = tuple(n for n in backbones if item.video_id not in done[n])
        if todo:
            tasks.append((item, todo))
    counts = {n: [0, 0] for n in backbones}  # extracted, failed
    logs = {n: s.root / "failures.jsonl" for n, s in stores.items()}
    for log in logs.values():
        log.unlink(missing_ok=True)  # failures of this run only; earlier ones are retried
    bar = tqdm(total=len(tasks), unit="video", disable=not progress,
               desc=f"extract {dataset}/{split}")
    try:
        for (item, names), (_, feats, errors) in zip(tasks, mapper(_featurise, tasks)):
            bar.update()
            for n in names:
                err = errors.get(n)
                if err:
                    counts[n][1] += 1
                    with logs[n].open("a") as fh:
                        fh.write(json.dumps({"video_id": item.video_id, "path": str(item.path),
                                             "error": err, "time": time.time()}) + "\n")
                else:
                    stores[n].append(item.video_id, feats[n], **item.store_meta())
                    counts[n][0] += 1
    finally:
        bar.close()
        for s in stores.values():
            s.close()
    return [
        ExtractReport(backbone=n, store=stores[n].root, total=len(items),
                      already_done=len(items) - sum(1 for _, ns in tasks if n in ns),
                      extracted=counts[n][0], failed=counts[n][1], failures_log=logs[n])
        for n in backbones
    ]


def features_ready(profile: Profile, backbone: str, dataset: str, split: str) -> bool:
    """Whether every video of the split has features (failed videos excluded from the count
    are *not* ready: rerun :func:`extract`)."""
    d = store_dir(profile, get_backbone(backbone), dataset, split)
    if not (d / "store.json").is_file():
        return False
    n = len(load_items(profile, dataset, split))
    return len(FeatureStore(d).done_ids()) >= n


def describe_failures(log: Path) -> list[dict[str, Any]]:
    if not log.is_file():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
