"""Extraction runner: a split's videos → decode once → every requested backbone → feature stores.

Resumable (videos already in a store are skipped), failure-tolerant (a file that cannot be
decoded or featurised is recorded in ``failures.jsonl`` beside the store and the run goes on)
and parallel over decode worker processes. Each clip is decoded once for all backbones.

Why one module: the runner's two execution paths (CPU pool, device + decode workers) share
one task protocol (decode, mouth ROIs, featurise, record) and one job loop that writes the
stores; apart they would have to agree on private structures.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
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

from avdd.backbones import Backbone, BackboneInfo, describe, get_backbone
from avdd.config import Profile
from avdd.datasets import Item, load_items
from avdd.features.distributed import Shard, current_shard
from avdd.features.store import FeatureStore
from avdd.features.threads import one_thread, pin_process_to_one_thread
from avdd.media import MediaError, read_clip
from avdd.processes import forking, start_method
from avdd.progress import Meter
from avdd.provenance import code_fingerprints, provenance
from avdd.roi.regions import Roi


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


def _info(backbone: BackboneInfo | Backbone) -> BackboneInfo:
    return backbone if isinstance(backbone, BackboneInfo) else BackboneInfo.of(backbone)


def backbone_key(backbone: BackboneInfo | Backbone, precision: str = "fp32",
                 video_fps: float | None = 25.0) -> str:
    """Store folder name: the backbone name plus a hash of its configuration, so that features
    of a changed configuration never mix with old ones. ``backbone``: a description
    (:func:`avdd.backbones.describe`, no network needed) or a built backbone; both give the
    same key. ``video_fps``: the rate videos were decoded at (:attr:`Profile.video_fps`)."""
    cfg = json.dumps(store_config(backbone, precision, video_fps), sort_keys=True, default=str)
    return f"{backbone.name}-{hashlib.sha256(cfg.encode()).hexdigest()[:8]}"


def store_dir(profile: Profile, backbone: BackboneInfo | Backbone, dataset: str, split: str,
              precision: str = "fp32") -> Path:
    """The store of ``backbone``'s features of one split, as this profile extracts them (its
    decode rate included)."""
    return profile.store_dir(backbone_key(backbone, precision, profile.video_fps), dataset, split)


# -- worker side --------------------------------------------------------------------------
_WORKER_BACKBONES: dict[str, Backbone] = {}
_WORKER_PRECISION = ["fp32"]
_WORKER_ROI_ROOT: list[Path | None] = [None]
_WORKER_VIDEO_FPS: list[float | None] = [25.0]

PRECISIONS = ("fp32", "bf16")


def store_config(backbone: BackboneInfo | Backbone, precision: str = "fp32",
                 video_fps: float | None = 25.0) -> dict[str, Any]:
    """What keys a store: the backbone's config, plus the autocast precision when it is not
    fp32 (bf16 features differ from fp32 ones, so they never share a store), plus the video
    decode rate when it is not 25 fps (``None``: every native frame, as the paper's
    extractors read them; features of a 30 fps source differ)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    cfg = _info(backbone).config
    cfg = cfg if precision == "fp32" else {**cfg, "precision": precision}
    if video_fps != 25.0:
        cfg = {**cfg, "video_fps": "native" if video_fps is None else float(video_fps)}
    return cfg


def compute_signature(backbone: BackboneInfo | Backbone, device: str | None,
                      batch_size: int) -> dict:
    """What, besides the backbone's config, decides a feature's last bits: the device type
    (CUDA kernels are not CPU kernels) and whether clips share a forward pass (a batched
    convolution or matmul blocks its sums differently from a single clip: measured on
    wav2vec2-tiny-random, 2.4e-6 apart). Worker count, rank count and machine load do not
    enter (every path computes on one thread: :func:`avdd.features.threads.one_thread`)."""
    import torch

    batches = _info(backbone).family.batch_key is not Backbone.batch_key  # the family batches
    return {"device": torch.device(device).type if device else "cpu",
            "batched": bool(batches and batch_size > 1)}


def _init_worker(names: Sequence[str], *, precision: str = "fp32",
                 roi_root: Path | None = None, video_fps: float | None = 25.0) -> None:
    # Backbones are built once per worker process, not pickled per task.
    _WORKER_PRECISION[0] = precision
    _WORKER_ROI_ROOT[0] = roi_root
    _WORKER_VIDEO_FPS[0] = video_fps
    for name in names:
        _WORKER_BACKBONES[name] = get_backbone(name)


def _check_described(built: dict[str, Backbone]) -> None:
    """Stores are keyed by ``describe(spec)`` (:func:`_run_job`): a model whose own config
    keys another store would write its features into the wrong one. Checked where the models
    are built in this process; pool workers build the same specs with the same code (and an
    error raised in a pool initializer would only make the pool start new workers)."""
    for name, bb in built.items():
        if backbone_key(bb) != backbone_key(describe(name)):
            raise RuntimeError(f"{name}: the built backbone's config differs from "
                               "describe(name).config; its family's `unbuilt` is out of step "
                               "with its constructor (see avdd.backbones.base.register)")


def _init_pool_worker(names: Sequence[str], **kwargs: Any) -> None:
    pin_process_to_one_thread()
    _init_worker(names, **kwargs)


def _decode(item: Item, needs: dict[str, tuple[bool, bool]],
            fps: float | None = 25.0) -> dict[str, Any]:
    """Decode what the backbones need (``needs``: key → (video, audio)) at video rate ``fps``
    (None: native). Returns ``{backbone key: clip or error message}``: when the joint decode
    fails (e.g. no audio track), each modality is retried alone so that a file without audio
    still serves the visual backbones and vice versa. A stream is the same whichever of the
    two ways it was read (:func:`avdd.media.read_clip`), so a backbone's features never depend
    on what else the job extracts."""
    video = any(v for v, _ in needs.values())
    audio = any(a for _, a in needs.values())
    try:
        clip = read_clip(item.path, video=video, audio=audio, fps=fps)
        return dict.fromkeys(needs, clip)
    except MediaError as e:
        joint_error = str(e)
        if not (video and audio):
            return dict.fromkeys(needs, joint_error)
    out: dict = {}
    for need in ((True, False), (False, True)):
        group = [k for k, n in needs.items() if n == need]
        if not group:
            continue
        try:
            clip = read_clip(item.path, video=need[0], audio=need[1], fps=fps)
        except MediaError as e:
            clip = str(e)
        out.update(dict.fromkeys(group, clip))
    # Audio-visual backbones need both streams: the joint decode's error stands for them.
    return {k: out.get(k, joint_error) for k in needs}


@dataclass
class _Decoded:
    """One video ready for the backbones: clips (or decode errors) and regions by backbone
    key."""

    item: Item
    names: tuple[str, ...]
    clips: dict[str, Any]  # key → Clip, or the error message (str)
    rois: dict[str, Roi | None]


@dataclass(frozen=True)
class _Needs:
    """What the decode step must produce for each backbone key: streams, and for lip
    models the (crop recipe, landmark source) of the cached mouth ROI (``None`` = no mouth
    ROI); the video decode rate (None: native); the keys that decode video only to count its
    frames (AV-HuBERT's audio-only pass cuts to the shorter stream); the keys that may read
    a long clip's video in windows (:meth:`Backbone.reads_windows`)."""

    streams: dict[str, tuple[bool, bool]]
    mouth: dict[str, tuple[str, str] | None]
    roi_root: Path | None  # RoiCache folder (the profile's cache_dir / "roi")
    video_fps: float | None = 25.0
    counts: frozenset[str] = frozenset()
    windows: frozenset[str] = frozenset()


def _needs(bbs: dict[str, Backbone], roi_root: Path | None = None,
           video_fps: float | None = 25.0) -> _Needs:
    return _Needs({k: b.decodes for k, b in bbs.items()},
                  {k: (b.roi_recipe, b.landmarks) if b.uses_mouth_roi and b.needs_video else None
                   for k, b in bbs.items()}, roi_root, video_fps,
                  frozenset(k for k, b in bbs.items() if b.decodes[0] and not b.needs_video),
                  frozenset(k for k, b in bbs.items() if b.reads_windows(long=True)))


@dataclass(frozen=True)
class _InWindows:
    """In place of a decoded clip on the device path: the model reads the long clip in
    windows in the main process (:func:`_window_features`), at the size it needs."""

    video_fps: float | None


def _roi_cache(needs: _Needs, recipe: str, source: str):
    from avdd.roi.mouth import RoiCache

    # Natively decoded frames give other crops than 25 fps ones: own folder.
    rate = {} if needs.video_fps == 25.0 else {
        "video_fps": "native" if needs.video_fps is None else needs.video_fps}
    return RoiCache(needs.roi_root, {"landmarks": source, **rate}, recipe=recipe)


def _whole_roi(item: Item, clip, base: Roi | None, needs: _Needs, need: tuple[str, str]) -> Roi:
    """The mouth ROI of a decoded clip (cached under the profile's ROI folder, if any)."""
    recipe, source = need
    if needs.roi_root is None:
        from avdd.roi.mouth import compute_rois

        return dataclasses.replace(base or Roi(), mouth=compute_rois(clip, base, source, recipe))
    return _roi_cache(needs, recipe, source).load_or_compute(
        f"{item.dataset}/{item.video_id}", clip, base, landmarks=source)


def _mouth_rois(item: Item, clips: dict[str, Any], base: Roi | None, needs: _Needs,
                names: Sequence[str], make=None) -> tuple[dict[str, Roi | None], dict[str, str]]:
    """Per backbone key: the Roi to pass (with the cached mouth ROI for lip models), and the
    errors of lip models whose ROI could not be made. One ROI per crop recipe, landmark
    source and video, shared by every lip model that reads it. ``make(need)`` makes one
    (default: from the decoded clip, :func:`_whole_roi`)."""
    rois: dict[str, Roi | None] = {}
    errors: dict[str, str] = {}
    done: dict[tuple[str, str], Roi | str] = {}
    for n in names:
        need = needs.mouth.get(n)
        clip = clips[n]
        if need is None or isinstance(clip, str):
            rois[n] = base
            continue
        recipe, source = need
        if need not in done:
            try:
                done[need] = (make(need) if make is not None
                              else _whole_roi(item, clip, base, needs, need))
            except MediaError as e:  # the file itself: its message says what to do
                done[need] = str(e)
            except Exception as e:  # noqa: BLE001 - recorded against the lip models
                done[need] = (f"{item.path}: mouth ROI ({recipe} crop, {source} landmarks): "
                              f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=3)}")
        if isinstance(done[need], str):
            errors[n] = done[need]
        else:
            rois[n] = done[need]
    return rois, errors


def _streams_rois(item: Item, names: Sequence[str], needs: _Needs) -> bool:
    """Whether the task reads the video only for lip models' mouth ROIs, frame counts and
    models that read a long clip in windows, and the clip is long: it is then never decoded
    whole (:func:`_streamed_task`)."""
    from avdd.roi.stream import is_long

    readers = [n for n in names if needs.streams[n][0]]
    return (bool(readers) and all(needs.mouth.get(n) or n in needs.counts or n in needs.windows
                                  for n in readers)
            and is_long(item.path, needs.video_fps))


def _streamed_task(item: Item, names: tuple[str, ...], needs: _Needs) -> _Decoded:
    """:func:`_decode_task` of a long clip read only by lip models (:func:`_streams_rois`):
    their mouth ROIs are made a window at a time (:func:`avdd.roi.stream.stream_rois`, the
    same crops), the audio is decoded alone, and each backbone gets a frameless clip (the
    frame count, the audio: all a lip model reads beside its ROI). Models that read windows
    (:meth:`Backbone.reads_windows`) get :class:`_InWindows` (on the CPU path they never
    reach here). Memory is bounded by a window, not the clip."""
    from avdd.media import count_frames, frameless_clip
    from avdd.roi.stream import stream_rois

    base = Roi.from_annotation(item.annotation)
    fps = needs.video_fps
    counted = functools.cache(lambda: count_frames(item.path, fps=fps))

    def make(need: tuple[str, str]) -> Roi:
        recipe, source = need
        if needs.roi_root is None:
            return dataclasses.replace(base or Roi(), mouth=stream_rois(
                item.path, recipe, source, base, fps=fps))
        return _roi_cache(needs, recipe, source).load_or_stream(
            f"{item.dataset}/{item.video_id}", item.path, base, source, frames=counted, fps=fps)

    rois, errors = _mouth_rois(item, dict.fromkeys(names), base, needs, names, make)
    audio: Any = None
    if any(needs.streams[n][1] for n in names):
        try:
            audio = read_clip(item.path, video=False, audio=True, fps=fps).audio
        except MediaError as e:
            audio = str(e)
    made = [len(r.mouth) for n, r in rois.items() if needs.mouth.get(n) and r is not None]
    clips: dict[str, Any] = {}
    for n in names:
        video, hears = needs.streams[n]
        if n in needs.windows:
            clips[n] = _InWindows(fps)
        elif n in errors:  # a lip model without its ROI fails like an undecodable file
            clips[n] = errors[n]
        elif hears and isinstance(audio, str):
            clips[n] = audio
        else:
            try:
                frames = (made[0] if made else counted()) if video else 0
                clips[n] = frameless_clip(item.path, frames, fps=fps,
                                          audio=audio if hears else None)
            except MediaError as e:
                clips[n] = str(e)
    return _Decoded(item, names, clips, rois)


def _decode_task(task: tuple[Item, tuple[str, ...]], needs: _Needs) -> _Decoded:
    item, names = task
    if _streams_rois(item, names, needs):
        return _streamed_task(item, names, needs)
    try:
        clips = _decode(item, {n: needs.streams[n] for n in names}, needs.video_fps)
    except Exception as e:  # noqa: BLE001 - any per-file failure is recorded, the run goes on
        msg = f"{item.path}: {type(e).__name__}: {e}\n{traceback.format_exc(limit=3)}"
        clips = dict.fromkeys(names, msg)
    rois, errors = _mouth_rois(item, clips, Roi.from_annotation(item.annotation), needs, names)
    clips.update(errors)  # a lip model without its ROI fails like an undecodable file
    return _Decoded(item, names, clips, rois)


def _autocast(device: str, precision: str):
    
    if precision == "fp32":
        return contextlib.nullcontext()
    import torch

    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)


def _checked(b: Backbone, f: np.ndarray) -> np.ndarray:
    f = np.asarray(f, dtype=np.float32)
    if f.ndim != 2 or f.shape[1] != b.dim or len(f) == 0:
        raise ValueError(f"{b.name} returned shape {f.shape}, expected (T>0, {b.dim})")
    if not np.isfinite(f).all():
        raise ValueError(f"{b.name} returned non-finite features")
    return f


_Result = tuple[Item, dict[str, np.ndarray], dict[str, str], dict[str, float]]


def _featurise_many(samples: Sequence[_Decoded], bbs: dict[str, Backbone], precision: str
                    ) -> list[_Result]:
    """Run every backbone on the decoded videos that need it, grouping clips with equal
    :meth:`Backbone.batch_key` into one forward pass. A failing batch is retried clip by clip
    so that the error is recorded against the video that caused it.

    Returns, per sample: ``(item, features by backbone key, error message by backbone key,
    feature rate by backbone key)``; a rate is given only where it differs from the
    backbone's nominal ``fps`` (a natively decoded clip at another rate than 25 fps).
    """
    feats: list[dict[str, np.ndarray]] = [{} for _ in samples]
    errors: list[dict[str, str]] = [{} for _ in samples]
    rates: list[dict[str, float]] = [{} for _ in samples]
    for key, b in bbs.items():
        groups: dict[Any, list[int]] = {}
        for i, s in enumerate(samples):
            if key not in s.names:
                continue
            clip = s.clips[key]
            if isinstance(clip, str):
                errors[i][key] = clip
                continue
            if isinstance(clip, _InWindows):
                _featurise_windows(s.item, key, b, precision, clip.video_fps,
                                   (feats[i], errors[i], rates[i]))
                continue
            k = b.batch_key(clip)
            groups.setdefault(("solo", i) if k is None else ("key", k), []).append(i)
        for idx in groups.values():
            with _autocast(b.device, precision):
                if len(idx) > 1:
                    try:
                        out = b.batch([samples[i].clips[key] for i in idx],
                                      [samples[i].rois[key] for i in idx])
                        for i, f in zip(idx, out, strict=True):
                            feats[i][key] = _checked(b, f)
                        continue
                    except Exception:  # noqa: BLE001 - retried one by one below
                        pass
                for i in idx:
                    try:
                        feats[i][key] = _checked(b, b(samples[i].clips[key], samples[i].rois[key]))
                    except Exception as e:  # noqa: BLE001
                        tb = traceback.format_exc(limit=3)
                        errors[i][key] = (f"{samples[i].item.path}: {key}: "
                                          f"{type(e).__name__}: {e}\n{tb}")
        for i in (i for idx in groups.values() for i in idx if key in feats[i]):
            rate = b.feature_rate(samples[i].clips[key])
            if rate != b.fps:
                rates[i][key] = rate
    return [(s.item, f, e, r) for s, f, e, r in zip(samples, feats, errors, rates, strict=True)]


def _featurise_windows(item: Item, n: str, b: Backbone, precision: str,
                       video_fps: float | None, out: tuple[dict, dict, dict]) -> None:
    """``b``'s features of ``item`` read in windows (:func:`_window_features`) into
    ``out`` = (features, errors, rates) by backbone key."""
    feats, errors, rates = out
    try:
        feats[n], rate = _window_features(item, b, precision, video_fps)
        if rate != b.fps:
            rates[n] = rate
    except MediaError as e:
        errors[n] = str(e)
    except Exception as e:  # noqa: BLE001 - recorded against this backbone
        errors[n] = (f"{item.path}: {n}: {type(e).__name__}: {e}\n"
                     f"{traceback.format_exc(limit=3)}")


def _featurise(task: tuple[Item, tuple[str, ...]]) -> _Result:
    """Decode one clip and run the backbones it still needs (a pool worker's task).

    Backbones that read windows (:func:`_windowed`) get the video in windows, one decode each
    at the size it needs; the others share one decode of the whole clip, as before.

    Returns ``(item, features by backbone, error message by backbone, rates by backbone)``
    (:func:`_featurise_many`).
    """
    item, names = task
    bbs = {n: _WORKER_BACKBONES[n] for n in names}  # keyed by spec string, as the stores
    windowed = _windowed(bbs, item, _WORKER_VIDEO_FPS[0])
    rest = {n: b for n, b in bbs.items() if n not in windowed}
    feats: dict[str, np.ndarray] = {}
    errors: dict[str, str] = {}
    rates: dict[str, float] = {}
    if rest:
        sample = _decode_task((item, tuple(rest)),
                              _needs(rest, _WORKER_ROI_ROOT[0], _WORKER_VIDEO_FPS[0]))
        _, feats, errors, rates = _featurise_many([sample], rest, _WORKER_PRECISION[0])[0]
    for n, b in windowed.items():
        _featurise_windows(item, n, b, _WORKER_PRECISION[0], _WORKER_VIDEO_FPS[0],
                           (feats, errors, rates))
    return item, feats, errors, rates


def _windowed(bbs: dict[str, Backbone], item: Item | None = None,
              video_fps: float | None = 25.0) -> dict[str, Backbone]:
    """The backbones to feed in windows (:meth:`Backbone.reads_windows`): those that read
    every clip in windows (:attr:`Backbone.stream_frames`) when no other backbone of the
    task reads whole frames; on a long ``item``, those and the ones that read long clips in
    windows (:attr:`Backbone.streams_long_clips`), when the others read no whole frame
    either: lip models and frame counters, whose ROIs are made a window at a time
    (:func:`_streamed_task`). Else none: a whole decode at the full size is made anyway, and
    they share it, as before (so a short clip's path is that of a job without windows)."""
    windowed = {n: b for n, b in bbs.items() if b.reads_windows(long=False)}
    others = {n: b for n, b in bbs.items() if n not in windowed and b.decodes[0]}
    if not others:
        return windowed
    late = {n: b for n, b in others.items() if b.reads_windows(long=True)}
    streamed = all(n in late or (b.uses_mouth_roi and b.needs_video) or not b.needs_video
                   for n, b in others.items())
    from avdd.roi.stream import is_long

    if streamed and item is not None and is_long(item.path, video_fps):
        return windowed | late
    return {}


def _window_features(item: Item, b: Backbone, precision: str, video_fps: float | None
                     ) -> tuple[np.ndarray, float]:
    """``b``'s features of ``item`` decoded in windows (:func:`avdd.media.stream_video`) at
    the size ``b`` needs (:attr:`Backbone.frame_resize`) and fed to its
    :meth:`Backbone.window_reader`, and their rate: the features of the whole clip, bit for
    bit, with memory bounded by one window."""
    from avdd.media import count_frames, read_header, stream_video

    # Frames kept at their decoded size (no frame_resize): windows of at most STREAM_BYTES.
    size = None if b.frame_resize is not None else read_header(item.path).frame_bytes()
    reader = b.window_reader(Roi.from_annotation(item.annotation),
                             functools.cache(lambda: count_frames(item.path, fps=video_fps)))
    rate = b.fps
    with _autocast(b.device, precision):
        for piece in stream_video(item.path, window=b.stream_window(video_fps, size),
                                  fps=video_fps, resize=b.frame_resize, min_last=b.min_frames):
            reader.add(piece)
            rate = b.feature_rate(piece)
        feats = reader.features()
    return _checked(b, feats), rate


# -- accelerator path: models in this process, decoding in DataLoader workers ---------------
class _DecodeDataset:
    """Map-style dataset of extraction tasks; ``__getitem__`` decodes (in a worker process)."""

    def __init__(self, tasks, needs):
        self.tasks, self.needs = tasks, needs

    def __len__(self) -> int:
        return len(self.tasks)

    def __getitem__(self, i: int) -> _Decoded:
        return _decode_task(self.tasks[i], self.needs)


def _identity(x):
    return x


def _worker_init(_: int) -> None:
    # Decode workers only decode: one thread each, so they do not fight the main process.
    import torch

    torch.set_num_threads(1)


def _loader_featurise(bbs: dict[str, Backbone], workers: int, batch_size: int, precision: str,
                      roi_root: Path | None = None, video_fps: float | None = 25.0):
    """``tasks → iterator of (item, feats, errors)`` in task order, decoding in ``workers``
    DataLoader processes (prefetching ahead) while the models run here, ``batch_size``
    videos at a time."""
    from torch.utils.data import DataLoader

    def run(tasks):
        ctx = start_method()
        loader = DataLoader(
            _DecodeDataset(tasks, _needs(bbs, roi_root, video_fps)), batch_size=None, shuffle=False,
            num_workers=workers, collate_fn=_identity, worker_init_fn=_worker_init,
            multiprocessing_context=ctx if workers else None,
            prefetch_factor=max(2, batch_size) if workers else None,
            persistent_workers=False)
        buffer: list[_Decoded] = []
        with forking():  # the decode workers start here
            samples = iter(loader)
        for sample in samples:
            buffer.append(sample)
            if len(buffer) >= batch_size:
                yield from _featurise_many(buffer, bbs, precision)
                buffer = []
        if buffer:
            yield from _featurise_many(buffer, bbs, precision)

    return run


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
    **kwargs: Any,
) -> list[ExtractReport]:
    """Extract features of one split for several backbones, skipping what is already stored.

    Args:
        profile: where the data are and where stores go.
        backbones: registry names.
        dataset, split: which videos (see :func:`avdd.datasets.load_items`).
        limit: only the first ``limit`` videos of the split (quick trials).
        workers: decode/feature processes (1 = in this process).
        progress: show a progress bar (videos/s and ETA).
        **kwargs: ``shard``, ``device``, ``precision``, ``batch_size`` of :func:`extract_many`.
    """
    return extract_many(profile, backbones, [(dataset, split)], limit=limit, workers=workers,
                        progress=progress, **kwargs)


def extract_many(
    profile: Profile,
    backbones: Sequence[str],
    jobs: Sequence[tuple[str, str]],
    *,
    limit: int | None = None,
    workers: int = 1,
    progress: bool = True,
    shard: Shard | None = None,
    device: str | None = None,
    precision: str = "fp32",
    batch_size: int = 1,
) -> list[ExtractReport]:
    """:func:`extract` for several ``(dataset, split)`` jobs sharing one worker pool (starting
    worker processes costs seconds each time).

    Two execution paths:

    * ``device=None`` (CPU): ``workers`` forked processes each decode a video *and* run the
      backbones on it (one thread each): CPU models parallelise over videos.
    * ``device="cuda:0"`` (or ``"cpu"``): the models live in this process on ``device``;
      ``workers`` DataLoader processes decode ahead so the accelerator never waits on the CPU,
      and ``batch_size`` decoded videos at a time go through the models, clips of equal
      :meth:`Backbone.batch_key` in one forward pass.

    Args:
        shard: this process's rank (default: read from ``torchrun``/SLURM variables, see
            :func:`avdd.features.distributed.current_shard`). Rank r of w takes videos r, r+w, ... of
            the (limited) split and writes rank r of each store; merge afterwards with
            :func:`avdd.features.distributed.merge_store` (``avdd merge``).
        precision: ``"fp32"`` (the paper's) or ``"bf16"`` (torch autocast on the backbones'
            device; stored under its own store key).
        batch_size: videos per model step on the ``device`` path.
    """
    shard = shard or current_shard()
    roi_root = profile.cache_dir / "roi"  # mouth ROIs, shared by every lip model and split
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if device is not None:
        bbs = {n: get_backbone(n).to(device) for n in backbones}
        _check_described(bbs)
        run = _loader_featurise(bbs, max(0, workers), max(1, batch_size), precision,
                                roi_root, profile.video_fps)
        # One thread here as in the pool workers (the same kernels, so the same features;
        # it also leaves the decode workers their cores: an OpenMP pool spanning every core
        # spin-waits against them, measured 4x slower end to end on 2 cores).
        with one_thread():
            return [r for ds, sp in jobs
                    for r in _run_job(profile, backbones, ds, sp, limit, run, progress, shard,
                                      precision, device, max(1, batch_size))]
    if workers <= 1:
        with one_thread():
            _init_worker(list(backbones), precision=precision, roi_root=roi_root,
                         video_fps=profile.video_fps)
            _check_described({n: _WORKER_BACKBONES[n] for n in backbones})

            def run(tasks):
                return map(_featurise, tasks)

            return [r for ds, sp in jobs
                    for r in _run_job(profile, backbones, ds, sp, limit, run, progress, shard,
                                      precision)]
    # fork (Linux): workers start in milliseconds and scripts need no `if __name__ ==
    # "__main__"` guard (spawn re-imports the caller's main module). Workers pin themselves
    # to one BLAS/torch thread, so a thread pool inherited from the parent is not used.
    init = functools.partial(_init_pool_worker, precision=precision, roi_root=roi_root,
                             video_fps=profile.video_fps)
    with forking():
        pool = mp.get_context(start_method()).Pool(workers, initializer=init,
                                                   initargs=(list(backbones),))
    with pool:
        def run(tasks):
            return pool.imap(_featurise, tasks, chunksize=2)

        return [r for ds, sp in jobs
                for r in _run_job(profile, backbones, ds, sp, limit, run, progress, shard,
                                  precision)]


def _run_job(profile: Profile, backbones: Sequence[str], dataset: str, split: str,
             limit: int | None, run, progress: bool, shard: Shard,
             precision: str, device: str | None = None,
             batch_size: int = 1) -> list[ExtractReport]:
    items = shard.take(load_items(profile, dataset, split)[:limit])
    # The stores need only what each model is; the models themselves run in `run`.
    infos = {n: describe(n) for n in backbones}
    stores: dict[str, FeatureStore] = {}
    for name, info in infos.items():
        cfg = store_config(info, precision, profile.video_fps)
        prov = provenance(profile=profile.name, synthetic=profile.synthetic,
                          weights=info.weights, backbone=cfg, dataset=dataset, split=split)
        stores[name] = FeatureStore(
            store_dir(profile, info, dataset, split, precision), rank=shard.rank,
            dim=info.dim, fps=info.fps, backbone=info.name, config=cfg, provenance=prov,
            compute=compute_signature(info, device, batch_size),
            code=code_fingerprints([info.family.__module__]))
    done = {n: s.done_ids() for n, s in stores.items()}
    tasks = []
    for item in items:
        todo = tuple(n for n in backbones if item.video_id not in done[n])
        if todo:
            tasks.append((item, todo))
    counts = {n: [0, 0] for n in backbones}  # extracted, failed
    # One log per rank (ranks would otherwise clobber each other's); a single process keeps
    # the plain name.
    log_name = ("failures.jsonl" if shard.world_size == 1
                else f"failures-{shard.rank:05d}.jsonl")
    logs = {n: s.root / log_name for n, s in stores.items()}
    for log in logs.values():
        log.unlink(missing_ok=True)  # failures of this run only; earlier ones are retried
    desc = f"extract {dataset}/{split}" + (
        f" [rank {shard.rank}/{shard.world_size}]" if shard.world_size > 1 else "")
    bar = tqdm(total=len(tasks), unit="video", disable=not progress, desc=desc)
    # The book build's status line (the notebooks extract with progress=False).
    names = sorted({n for _, ns in tasks for n in ns})
    meter = Meter(f"{desc}: {', '.join(names) if len(names) <= 3 else f'{len(names)} backbones'}",
                  len(tasks), "videos")
    try:
        for (item, names), (_, feats, errors, rates) in zip(tasks, run(tasks)):
            bar.update()
            meter.update()
            for n in names:
                err = errors.get(n)
                if err:
                    counts[n][1] += 1
                    with logs[n].open("a") as fh:
                        fh.write(json.dumps({"video_id": item.video_id, "path": str(item.path),
                                             "error": err, "time": time.time()}) + "\n")
                else:
                    # A natively decoded video at another rate keeps its own (the store's
                    # fps is the nominal one): analyses read ``fps`` from the meta first.
                    rate = {"fps": rates[n]} if n in rates else {}
                    stores[n].append(item.video_id, feats[n], **item.store_meta(), **rate)
                    counts[n][0] += 1
    finally:
        bar.close()
        meter.close()
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
    d = store_dir(profile, describe(backbone), dataset, split)
    if not (d / "store.json").is_file():
        return False
    n = len(load_items(profile, dataset, split))
    return len(FeatureStore(d).done_ids()) >= n


