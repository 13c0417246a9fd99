"""Spatial explanations (Fig. 4): where in the frame does a CLIP probe look?

The per-frame model is the paper's: CLIP image embedding → L2 norm → linear probe logit
``z = w . e / ||e|| + b``. Two maps over CLIP's ``g × g`` patch grid explain it:

* :func:`gradcam_maps`: Grad-CAM at the last encoder block's first LayerNorm (``layer_norm1``
  of the last ``CLIPEncoderLayer``), patch tokens only (CLS dropped): channel weights are the
  gradients of ``z`` averaged over the patch tokens, the map is the ReLU of the weighted sum
  of activations (Selvaraju et al. 2017; the ViT variant of ``pytorch-grad-cam``).
* :func:`patch_probe_maps`: the probe applied directly to every patch token once mapped into
  the embedding space (``post_layernorm`` + ``visual_projection``, see
  :meth:`CLIPFrames.patch_grid`), L2-normalised like a frame embedding. No gradients; one
  forward pass.

The predicted point is the map's argmax cell, mapped back through CLIP's preprocessing
(shortest side resized to ``image_size``, centre crop ``image_size²``) to the full frame
(:func:`map_to_frame_point`). Error against a human click ``(x, y)`` (both normalised to
[0, 1]) is ``(|x − x̂| + |y − ŷ|) / 2`` (:func:`click_errors`), compared with two baselines:
the frame centre and the face centre. :func:`spatial_table` runs all of it on the fake test
videos of a dataset; :func:`mae_vs_threshold` gives Fig. 4's left panel and
:func:`spatial_examples` its examples (frames, both maps, points), so the page builds no model.

Clicks come from ``Item.annotation``: ``clicks = [[frame, x, y], ...]`` (ExDDV) or, on the
synthetic benchmark, ``region_centre`` (the centre of the manipulated region in each fake
frame), which plays the role of a click.

Why one module: Fig. 4 is one analysis (two maps of one probe, their click errors, the
baselines they are compared with and the cached table); its parts share the CLIP grid geometry.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from avdd.analysis.metrics import bootstrap_mean_interval
from avdd.backbones.clip import CLIPFrames
from avdd.heads.probe import LinearProbe
from avdd.heads.scoring import NORM_EPS
from avdd.media import Clip

__all__ = ["gradcam_maps", "patch_probe_maps", "resized_size", "crop_box", "cell_to_frame_point",
           "map_to_frame_point", "click_errors", "face_centre_points", "clicks_of",
           "decode_for_clicks", "spatial_maps", "spatial_table", "mae_vs_threshold",
           "load_frames", "METHODS", "SpatialExample", "SpatialExamples", "spatial_examples"]

#: The two explanation maps: name → function ``(backbone, probe, frames) -> (T, g, g)``.
METHODS = ("gradcam", "patch")

#: Frame centre baseline point (normalised x, y).
FRAME_CENTRE = (0.5, 0.5)


# -- explanation maps ------------------------------------------------------------------------
def _probe_tensors(backbone: CLIPFrames, probe: LinearProbe) -> tuple[torch.Tensor, float]:
    w = np.asarray(probe.coef_, np.float32)
    if w.shape != (backbone.dim,):
        raise ValueError(f"probe has {w.shape[0]} weights but {backbone.name} embeddings are "
                         f"{backbone.dim}-d: use a probe trained on this backbone's features")
    return torch.from_numpy(w).to(backbone.device), float(probe.intercept_)


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError("expected (T, H, W, 3) uint8 RGB frames, "
                         f"got {frames.dtype} {frames.shape}")
    return frames


def gradcam_maps(backbone: CLIPFrames, probe: LinearProbe, frames: np.ndarray) -> np.ndarray:
    """Grad-CAM of the per-frame probe logit over CLIP's patch grid.

    Args:
        backbone: a CLIP backbone (``clip``, ``clip-random``, ``clip-tiny-random``).
        probe: a fitted :class:`LinearProbe` on this backbone's ``(dim,)`` frame embeddings
            (only ``coef_`` and ``intercept_`` are used).
        frames: ``(T, H, W, 3)`` uint8 RGB frames of any size (CLIP preprocesses them).
    Returns:
        ``(T, g, g)`` float32 maps, >= 0 (ReLU), in units of logit (the weighted sum of
        activations times mean gradients); row i, column j = patch i from the top, j from
        the left of CLIP's centre crop.

    The backbone stays frozen: its parameters need no gradient. The activation of the hooked
    LayerNorm is replaced by a detached leaf that requires grad, so autograd builds the graph
    from there to the logit only, and nothing upstream is differentiated.
    """
    frames = _check_frames(frames)
    g = backbone.grid
    if len(frames) == 0:
        return np.zeros((0, g, g), np.float32)
    _probe_tensors(backbone, probe)  # shape check before any work
    layer = backbone.net.vision_model.encoder.layers[-1].layer_norm1
    acts: list[torch.Tensor] = []

    def hook(module, inputs, output):
        leaf = output.detach().requires_grad_(True)
        acts.append(leaf)
        return leaf

    handle = layer.register_forward_hook(hook)
    maps = []
    try:
        # The caller may sit inside inference_mode / no_grad (feature extraction does):
        # Grad-CAM needs a graph, so both are switched off for this block only.
        with torch.inference_mode(False), torch.enable_grad():
            w, b = _probe_tensors(backbone, probe)  # made here: no inference tensors in the graph
            for out in backbone.forward_batches(frames):  # CLIP's own preprocessing, batch by batch
                act = acts.pop()  # (B, 1 + g², C)
                e = out.image_embeds
                logit = torch.nn.functional.normalize(e, dim=-1, eps=NORM_EPS) @ w + b  # (B,)
                # Frames do not interact in the forward pass, so the gradient of the sum holds
                # each frame's own gradient.
                (grad,) = torch.autograd.grad(logit.sum(), act)
                patches, grads = act.detach()[:, 1:], grad[:, 1:]  # CLS token dropped
                alpha = grads.mean(dim=1, keepdim=True)  # (B, 1, C): Grad-CAM channel weights
                cam = torch.relu((alpha * patches).sum(-1))  # (B, g²)
                maps.append(cam.reshape(-1, g, g).float().cpu())
    finally:
        handle.remove()
    return torch.cat(maps).numpy()


def patch_probe_maps(backbone: CLIPFrames, probe: LinearProbe, frames: np.ndarray) -> np.ndarray:
    """The probe applied to every patch token in the embedding space.

    Args / shapes as :func:`gradcam_maps`. Returns ``(T, g, g)`` float32 per-patch logits
    ``w . p / ||p|| + b`` (signed; same units as the frame logits), where ``p`` is the patch
    token after ``post_layernorm`` and ``visual_projection`` (:meth:`CLIPFrames.patch_grid`).
    """
    frames = _check_frames(frames)
    w, b = _probe_tensors(backbone, probe)
    grid = backbone.patch_grid(Clip(video=frames, audio=np.zeros(0, np.float32)))  # (T, g, g, D)
    w = w.cpu().numpy()
    norms = np.maximum(np.linalg.norm(grid, axis=-1), NORM_EPS)
    return ((grid @ w) / norms + np.float32(b)).astype(np.float32)


_MAP_FUNCTIONS = {"gradcam": gradcam_maps, "patch": patch_probe_maps}


def spatial_maps(method: str, backbone: CLIPFrames, probe: LinearProbe,
                 frames: np.ndarray) -> np.ndarray:
    """``(T, g, g)`` maps of ``method`` (``"gradcam"`` or ``"patch"``)."""
    if method not in _MAP_FUNCTIONS:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
    return _MAP_FUNCTIONS[method](backbone, probe, frames)


# -- geometry: CLIP's preprocessing undone -----------------------------------------------------
def resized_size(frame_hw: tuple[int, int], image_size: int) -> tuple[int, int]:
    """``(H', W')`` after CLIP's resize of the shortest side to ``image_size`` (pixels).

    Same rounding as transformers' ``get_resize_output_image_size``: the long side becomes
    ``int(image_size * long / short)``.
    """
    h, w = (int(v) for v in frame_hw)
    if h <= 0 or w <= 0:
        raise ValueError(f"frame size must be positive, got {frame_hw}")
    if w <= h:
        return int(image_size * h / w), image_size
    return image_size, int(image_size * w / h)


def crop_box(frame_hw: tuple[int, int], image_size: int) -> tuple[float, float, float, float]:
    """The part of the frame CLIP sees: ``(x0, y0, x1, y1)`` normalised to the full frame.

    The centre crop keeps ``image_size`` pixels of the resized long side, starting at
    ``(long' − image_size) // 2`` (transformers' ``center_crop``); the frame's sides outside it
    are never seen by the model.
    """
    hh, ww = resized_size(frame_hw, image_size)
    top, left = (hh - image_size) // 2, (ww - image_size) // 2
    return left / ww, top / hh, (left + image_size) / ww, (top + image_size) / hh


def cell_to_frame_point(row: float, col: float, grid: int, frame_hw: tuple[int, int],
                        image_size: int) -> tuple[float, float]:
    """Centre of grid cell ``(row, col)`` as a normalised frame point ``(x, y)`` in [0, 1].

    Cell centres sit at ``(k + 0.5) · image_size / grid`` pixels of the crop; adding the crop
    offset gives resized-frame pixels, and dividing by the resized size normalises them (the
    resize scales the whole frame, so normalised coordinates are the same before and after).
    """
    hh, ww = resized_size(frame_hw, image_size)
    top, left = (hh - image_size) // 2, (ww - image_size) // 2
    step = image_size / grid
    return (left + (col + 0.5) * step) / ww, (top + (row + 0.5) * step) / hh


def map_to_frame_point(cam: np.ndarray, frame_hw: tuple[int, int],
                       image_size: int) -> tuple[float, float]:
    """Predicted point of a ``(g, g)`` map: its argmax cell's centre, normalised ``(x̂, ŷ)``.

    Ties (e.g. an all-zero Grad-CAM) go to the first cell in row-major order, as np.argmax.
    """
    cam = np.asarray(cam)
    if cam.ndim != 2 or cam.shape[0] != cam.shape[1]:
        raise ValueError(f"expected a square (g, g) map, got shape {cam.shape}")
    row, col = np.unravel_index(int(np.argmax(cam)), cam.shape)
    return cell_to_frame_point(row, col, cam.shape[0], frame_hw, image_size)


# -- errors and baselines ----------------------------------------------------------------------
def click_errors(points: np.ndarray, clicks: np.ndarray) -> np.ndarray:
    """Per-click error ``(|x − x̂| + |y − ŷ|) / 2``: ``(N, 2)`` points and clicks → ``(N,)``.

    Both in normalised frame coordinates, so the error is a fraction of the frame size.
    """
    points, clicks = np.asarray(points, np.float64), np.asarray(clicks, np.float64)
    if points.shape != clicks.shape or points.shape[-1] != 2:
        raise ValueError(f"points {points.shape} and clicks {clicks.shape} must both be (N, 2)")
    return np.abs(points - clicks).mean(axis=-1)


def face_centre_points(face_boxes: np.ndarray, frame_hw: tuple[int, int]) -> np.ndarray:
    """Face-centre baseline: ``(N, 4)`` boxes ``(x0, y0, x1, y1)`` in pixels → ``(N, 2)``
    normalised box centres (NaN rows stay NaN: no face found)."""
    boxes = np.asarray(face_boxes, np.float64).reshape(-1, 4)
    h, w = frame_hw
    return np.stack([(boxes[:, 0] + boxes[:, 2]) / (2 * w),
                     (boxes[:, 1] + boxes[:, 3]) / (2 * h)], axis=1)


def clicks_of(annotation: dict[str, Any] | None) -> list[tuple[int, float, float]]:
    """The clicks of one video as ``[(frame, x, y), ...]`` (x and y in [0, 1]): ExDDV's
    ``clicks`` (frame = source-frame index), else the synthetic ``region_centre`` of every
    manipulated frame (frame = 25 fps index); ``[]`` when the annotation has neither.
    :func:`decode_for_clicks` decodes frames in the matching indexing."""
    if not annotation:
        return []
    if annotation.get("clicks") is not None:
        return [(int(f), float(x), float(y)) for f, x, y in annotation["clicks"]]
    centres = annotation.get("region_centre") or []
    return [(t, float(p[0]), float(p[1])) for t, p in enumerate(centres) if p is not None]


def _face_boxes(annotation: dict[str, Any], frames: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``(n, 4)`` face boxes in pixels of frames ``index``: the annotation's ``face_box`` when
    present (synthetic benchmark), else the bounding box of 68 detected landmarks (dlib or
    MediaPipe, whichever is installed; NaN where no face is found)."""
    if annotation.get("face_box") is not None:
        return np.asarray(annotation["face_box"], np.float64)[index]
    from avdd.roi.landmarks import get_landmark_source

    marks = get_landmark_source("auto")(frames[index])  # (n, 68, 2), NaN rows: no face
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows (no face) stay NaN
        return np.concatenate([np.nanmin(marks, axis=1), np.nanmax(marks, axis=1)], axis=1)


def _pick_frames(frames: Sequence[int], max_frames: int | None) -> list[int]:
    """At most ``max_frames`` of the annotated frames, evenly spread over the video."""
    uniq = sorted(set(frames))
    if max_frames is None or len(uniq) <= max_frames:
        return uniq
    return [uniq[i] for i in np.linspace(0, len(uniq) - 1, max_frames).round().astype(int)]


def _source_fps(path) -> float:
    """The video stream's average frame rate (frames per second), read with PyAV."""
    import av

    with av.open(str(path)) as container:
        rate = container.streams.video[0].average_rate
    if not rate:
        raise ValueError(f"{path}: no frame rate in the video stream; cannot place clicks "
                         "given as source-frame indices")
    return float(rate)


def decode_for_clicks(item) -> tuple[np.ndarray, float]:
    """Frames of ``item`` indexed the way its clicks count them, and that indexing's rate.

    ExDDV's click frames are indices of the source video's own frames
    (``annotation["click_frame_unit"] == "source frame index"``): the video is decoded at its
    own frame rate so that index f is source frame f. Synthetic clicks index the 25 fps frames
    the features were extracted from. Returns ``((T, H, W, 3) uint8, fps)``.
    """
    from avdd.media import read_clip

    note = item.annotation or {}
    fps = _source_fps(item.path) if note.get("click_frame_unit") == "source frame index" else 25.0
    return read_clip(item.path, fps=fps, audio=False).video, fps


def load_frames(profile, dataset: str, split: str, video_id: str,
                frames: Sequence[int] | None = None) -> np.ndarray:
    """``(n, H, W, 3)`` uint8 frames ``frames`` (indexed as the video's clicks are; all when
    None) of one video."""
    from avdd.datasets import load_items

    items = {it.video_id: it for it in load_items(profile, dataset, split)}
    if video_id not in items:
        raise KeyError(f"{video_id!r} is not in {dataset}/{split}")
    video, _ = decode_for_clicks(items[video_id])
    return video if frames is None else video[np.asarray(frames, int)]


# -- the study ---------------------------------------------------------------------------------
def _video_scores(profile, backbone: str, dataset: str, split: str,
                  probe: LinearProbe) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Video score s and per-frame logits of every video of the split (from the feature store)."""
    from avdd.features.prepare import feature_set

    fs = feature_set(profile, backbone, dataset, split)
    scores = probe.decision_function(fs)
    logits = probe.frame_logits(fs)
    return (dict(zip(fs.ids.tolist(), scores.tolist())), dict(zip(fs.ids.tolist(), logits)))


def spatial_table(profile, backbone: str, dataset: str, *, train: str | None = None,
                  split: str = "test", seed: int = 43, method: str = "gradcam",
                  max_frames_per_video: int | None = 8, force: bool = False) -> pd.DataFrame:
    """Fig. 4's data: one row per click on the fake ``dataset``/``split`` videos.

    Args:
        profile: a :class:`avdd.config.Profile` whose features of ``backbone`` on ``train``
            (train/val) and ``dataset``/``split`` exist (``study.prepare``).
        backbone: a CLIP backbone spec (``clip``, ``clip-tiny-random``, ...).
        dataset: where the clicks are (paper: ExDDV; demo: a synthetic domain).
        train: the probe's training set (default: ``dataset``, as the paper's ExDDV probe).
        seed: the probe's seed.
        method: ``"gradcam"`` or ``"patch"`` (:func:`spatial_maps`).
        max_frames_per_video: annotated frames kept per video, evenly spread (None: all);
            every click on a kept frame is used.
        force: recompute instead of reading the cached table.
    Returns:
        Columns ``video_id, frame, click_x, click_y`` (the click), ``pred_x, pred_y`` (the map's
        argmax), ``face_x, face_y`` (face-box centre), ``err_cam, err_frame_centre,
        err_face_centre`` (click errors, fraction of the frame), ``score`` (the video's probe
        score s), ``frame_score`` (the probe's logit of that frame), ``map_max`` (the map's
        maximum: 0 for a Grad-CAM with no positive evidence, whose argmax is then arbitrary),
        ``method``, ``frame_h, frame_w``. Cached (:func:`avdd.analysis.cache.cached`).
    """
    from avdd.analysis.cache import cached
    from avdd.analysis.probes import trained_probe
    from avdd.backbones import describe, get_backbone
    from avdd.datasets import load_items

    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
    train = dataset if train is None else train
    info = describe(backbone)  # the network is built only if the table is not cached
    if not issubclass(info.family, CLIPFrames):
        raise ValueError(f"spatial explanations need a CLIP backbone, got {backbone!r}")
    config = {"backbone": [backbone, info.config], "train": train, "dataset": dataset,
              "split": split, "seed": seed, "method": method,
              "max_frames_per_video": max_frames_per_video,
              "probe": LinearProbe(random_state=seed).get_params()}

    def compute() -> pd.DataFrame:
        bb = get_backbone(backbone)
        probe = trained_probe(profile, backbone, train, seed=seed)
        scores, logits = _video_scores(profile, backbone, dataset, split, probe)
        image_size = int(bb.net.config.image_size)
        rows = []
        for item in load_items(profile, dataset, split):
            clicks = clicks_of(item.annotation)
            if item.label != 1 or not clicks:
                continue
            keep = set(_pick_frames([c[0] for c in clicks], max_frames_per_video))
            clicks = [c for c in clicks if c[0] in keep]
            video, fps = decode_for_clicks(item)
            index = np.array(sorted(keep))
            if index.max() >= len(video):
                raise ValueError(f"{item.path}: a click is on frame {index.max()} but the video has "
                                 f"{len(video)} frames at {fps:g} fps")
            hw = video.shape[1:3]
            maps = spatial_maps(method, bb, probe, video[index])
            faces = face_centre_points(_face_boxes(item.annotation or {}, video, index), hw)
            at = {f: k for k, f in enumerate(index.tolist())}
            # The store holds frames at bb.fps (25): a click's frame score is the one nearest in time
            # (clamped: the last frames of a decode may differ by one).
            frame_logits = logits[item.video_id]
            for f, x, y in clicks:
                k = at[f]
                px, py = map_to_frame_point(maps[k], hw, image_size)
                rows.append({"video_id": item.video_id, "frame": f, "click_x": x, "click_y": y,
                             "pred_x": px, "pred_y": py, "face_x": faces[k, 0], "face_y": faces[k, 1],
                             "score": scores[item.video_id],
                             "frame_score": float(frame_logits[min(round(f * bb.fps / fps),
                                                                   len(frame_logits) - 1)]),
                             "map_max": float(maps[k].max()), "method": method,
                             "frame_h": hw[0], "frame_w": hw[1]})
        if not rows:
            raise ValueError(f"no clicks on the fake videos of {dataset}/{split}: the items need "
                             "annotation['clicks'] (ExDDV) or annotation['region_centre'] (synthetic)")
        df = pd.DataFrame(rows)
        click = df[["click_x", "click_y"]].to_numpy()
        df["err_cam"] = click_errors(df[["pred_x", "pred_y"]].to_numpy(), click)
        df["err_frame_centre"] = click_errors(np.broadcast_to(FRAME_CENTRE, click.shape), click)
        df["err_face_centre"] = click_errors(df[["face_x", "face_y"]].to_numpy(), click)
        return df

    return cached(profile, "spatial", config, compute, code=__name__, force=force)


def mae_vs_threshold(df: pd.DataFrame, thresholds: Sequence[float], *, error: str = "err_cam",
                     score: str = "score", n_bootstrap: int = 1000,
                     random_state: int = 0) -> pd.DataFrame:
    """Mean click error over clicks whose ``score`` ≥ θ, for every θ in ``thresholds``.

    Returns one row per θ: ``threshold, n`` (clicks kept), ``n_videos``, ``mae``, ``ci_low``,
    ``ci_high`` (95 % percentile bootstrap over the kept clicks; NaN when fewer than 2 clicks
    remain). Clicks of one video are resampled independently, so the interval ignores their
    correlation and is optimistic when videos have many clicks.
    """
    rng = np.random.default_rng(random_state)
    out = []
    for theta in thresholds:
        kept = df[df[score] >= theta]
        err = kept[error].to_numpy(np.float64)
        err = err[~np.isnan(err)]
        lo, hi = bootstrap_mean_interval(err, n_bootstrap=n_bootstrap, rng=rng)
        out.append({"threshold": float(theta), "n": int(len(err)),
                    "n_videos": int(kept["video_id"].nunique()) if "video_id" in kept else 0,
                    "mae": float(err.mean()) if len(err) else np.nan, "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(out)


# -- Fig. 4's examples -------------------------------------------------------------------------
@dataclass(frozen=True)
class SpatialExample:
    """One annotated frame of Fig. 4's examples, explained by every method of :data:`METHODS`.

    Attributes:
        video_id, frame: the video and its annotated frame (indexed as its clicks are).
        score: the video's probe score s; frame_score: the probe's logit of that frame.
        image: ``(H, W, 3)`` uint8, the frame.
        click: ``(x, y)``, the click in normalised frame coordinates.
        crop: ``(x0, y0, x1, y1)``, the normalised part of the frame CLIP sees (:func:`crop_box`).
        maps: method → ``(g, g)`` float32 map over that crop (:func:`spatial_maps`).
        points: method → ``(x̂, ŷ)``, the map's argmax point (:func:`map_to_frame_point`).
        errors: method → the click error of that point (:func:`click_errors`).
    """

    video_id: str
    frame: int
    score: float
    frame_score: float
    image: np.ndarray
    click: tuple[float, float]
    crop: tuple[float, float, float, float]
    maps: dict[str, np.ndarray]
    points: dict[str, tuple[float, float]]
    errors: dict[str, float]


@dataclass(frozen=True)
class SpatialExamples:
    """Fig. 4's examples and the geometry of the backbone that explained them: ``image_size``
    (CLIP's input side, pixels) and ``grid`` (g, patches per side)."""

    backbone: str
    image_size: int
    grid: int
    examples: tuple[SpatialExample, ...]


_SCALARS = ("video_id", "frame", "score", "frame_score", "click", "crop", "points", "errors")


def _save_examples(value: SpatialExamples, folder: Path) -> None:
    arrays = {f"image_{k}": ex.image for k, ex in enumerate(value.examples)}
    arrays |= {f"map_{m}_{k}": ex.maps[m] for k, ex in enumerate(value.examples) for m in ex.maps}
    np.savez_compressed(folder / "examples.npz", **arrays)
    meta = {"backbone": value.backbone, "image_size": value.image_size, "grid": value.grid,
            "examples": [{k: getattr(ex, k) for k in _SCALARS} for ex in value.examples]}
    (folder / "examples.json").write_text(json.dumps(meta, indent=2))


def _load_examples(folder: Path) -> SpatialExamples:
    meta = json.loads((folder / "examples.json").read_text())
    with np.load(folder / "examples.npz") as arrays:
        examples = tuple(SpatialExample(
            video_id=e["video_id"], frame=e["frame"], score=e["score"],
            frame_score=e["frame_score"], image=arrays[f"image_{k}"], click=tuple(e["click"]),
            crop=tuple(e["crop"]), maps={m: arrays[f"map_{m}_{k}"] for m in e["points"]},
            points={m: tuple(p) for m, p in e["points"].items()}, errors=e["errors"])
            for k, e in enumerate(meta["examples"]))
    return SpatialExamples(meta["backbone"], meta["image_size"], meta["grid"], examples)


def spatial_examples(profile, backbone: str, dataset: str, *, train: str | None = None,
                     split: str = "test", seed: int = 43, max_frames_per_video: int | None = 8,
                     n_examples: int = 6, force: bool = False) -> SpatialExamples:
    """Fig. 4's examples: the ``n_examples`` most confidently fake videos of
    :func:`spatial_table` (Grad-CAM's, same arguments), one frame each (the annotated frame
    with the highest frame logit), with the maps, points and click errors of
    every method of :data:`METHODS`.

    Cached with the frames (:func:`avdd.analysis.cache.cached`): a page that only replots
    builds no backbone and decodes no video.
    """
    from avdd.analysis.cache import Format, cached
    from avdd.analysis.probes import trained_probe
    from avdd.backbones import describe, get_backbone
    from avdd.datasets import load_items

    train = dataset if train is None else train
    clicks = spatial_table(profile, backbone, dataset, train=train, split=split, seed=seed,
                           method="gradcam", max_frames_per_video=max_frames_per_video)
    best = (clicks.sort_values(["score", "frame_score"], ascending=False)
            .drop_duplicates("video_id").head(n_examples))
    config = {"backbone": [backbone, describe(backbone).config], "train": train,
              "dataset": dataset, "split": split, "seed": seed,
              "max_frames_per_video": max_frames_per_video, "n_examples": n_examples,
              "examples": best[["video_id", "frame"]].to_numpy().tolist()}

    def compute() -> SpatialExamples:
        bb = get_backbone(backbone)
        probe = trained_probe(profile, backbone, train, seed=seed)
        image_size = int(bb.net.config.image_size)
        items = {it.video_id: it for it in load_items(profile, dataset, split)}
        examples = []
        for row in best.itertuples():
            frame = decode_for_clicks(items[row.video_id])[0][[int(row.frame)]]  # (1, H, W, 3)
            hw = frame.shape[1:3]
            click = (float(row.click_x), float(row.click_y))
            maps = {m: spatial_maps(m, bb, probe, frame)[0] for m in METHODS}
            points = {m: map_to_frame_point(maps[m], hw, image_size) for m in METHODS}
            errors = {m: float(click_errors([points[m]], [click])[0]) for m in METHODS}
            examples.append(SpatialExample(
                video_id=str(row.video_id), frame=int(row.frame), score=float(row.score),
                frame_score=float(row.frame_score), image=frame[0], click=click,
                crop=crop_box(hw, image_size), maps=maps,
                points={m: (float(x), float(y)) for m, (x, y) in points.items()}, errors=errors))
        return SpatialExamples(backbone, image_size, int(bb.grid), tuple(examples))

    return cached(profile, "spatial_examples", config, compute, code=__name__, force=force,
                  fmt=Format(_save_examples, _load_examples))
