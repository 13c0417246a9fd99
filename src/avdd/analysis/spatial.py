"""Spatial explanations (Fig. 4): where in the frame does a probe look?

The per-frame model is the paper's: frame embedding → L2 norm → linear probe logit
``z = w . e / ||e|| + b``. Two maps over the backbone's ``g × g`` grid explain it:

* :func:`gradcam_maps`: Grad-CAM, whose channel weights are the gradients of ``z`` averaged
  over the grid's cells and whose map is the ReLU of the weighted sum of activations
  (Selvaraju et al. 2017; the ViT variant of ``pytorch-grad-cam``). For CLIP (the paper's),
  the activations are the last encoder block's first LayerNorm (``layer_norm1`` of the last
  ``CLIPEncoderLayer``), patch tokens only (CLS dropped).
* :func:`patch_probe_maps`: the probe read cell by cell. For CLIP, the probe applied directly
  to every patch token once mapped into the embedding space (``post_layernorm`` +
  ``visual_projection``, see :meth:`CLIPFrames.patch_grid`), L2-normalised like a frame
  embedding. No gradients; one forward pass.

Two families have such a grid (:data:`SPATIAL_FAMILIES`): CLIP, and the handcrafted
``detail-grid`` (:class:`~avdd.backbones.detail_grid.DetailGrid`), whose embedding *is* its
grid of cell features flattened. For the latter the activations are those cell features, and
the patch map is each cell's exact share of the logit, ``w_c . a_c / ||a||`` (the shares sum
to ``z − b``). Grad-CAM's averaging of the gradient over cells throws away the per-cell
weights that a probe on such a grid relies on (with one channel its map is the feature times
the sign of the mean weight).

A map becomes a predicted point of the full frame by the paper's rule (``point="pixel"``:
min-max scaled, upsampled bilinearly, pasted back through the resize and centre crop, the
mean of all maximal pixels) or the argmax cell's centre (``point="cell"``), both in
:mod:`avdd.analysis.spatial_points`. Error against a human click ``(x, y)`` (both normalised
to [0, 1]) is ``(|x − x̂| + |y − ŷ|) / 2`` (:func:`click_errors`), compared with two
baselines: the frame centre and the face centre (:func:`face_centre_point`: the centre of a
face detector's box, as the paper's code ran ``face_recognition``; a seeded random face when
there are several, the frame centre when there is none). :func:`spatial_table` runs all of it
on every click of the fake test videos of a dataset; :func:`score_thresholds` and
:func:`mae_vs_threshold` give Fig. 4's left panel and :func:`spatial_examples` its examples
(frames, both maps, points), so the page builds no model.

Clicks come from ``Item.annotation``: ``clicks = [[frame, x, y], ...]`` (ExDDV) or, on the
synthetic benchmark, ``region_centre`` (the centre of the manipulated region in each fake
frame), which plays the role of a click.

Why one module: Fig. 4 is one analysis (two maps of one probe, their click errors, the
baselines they are compared with and the cached table); its parts share the grid geometry.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from avdd.analysis.metrics import bootstrap_mean_interval
from avdd.analysis.spatial_points import (
    POINT_RULES,
    cell_to_frame_point,
    crop_box,
    map_to_frame_point,
    resized_size,
)
from avdd.backbones.clip import CLIPFrames
from avdd.backbones.detail_grid import DetailGrid
from avdd.heads.probe import LinearProbe
from avdd.heads.scoring import NORM_EPS
from avdd.media import Clip

__all__ = ["gradcam_maps", "patch_probe_maps", "resized_size", "crop_box", "cell_to_frame_point",
           "map_to_frame_point", "click_errors", "face_centre_point", "clicks_of",
           "decode_for_clicks", "spatial_maps", "spatial_table", "score_thresholds",
           "mae_vs_threshold", "load_frames", "METHODS", "POINT_RULES", "THRESHOLD_RULES",
           "SpatialExample", "SpatialExamples", "spatial_examples", "SPATIAL_FAMILIES"]

#: The two explanation maps: name → function ``(backbone, probe, frames) -> (T, g, g)``.
METHODS = ("gradcam", "patch")

#: The backbone families with a spatial grid that the maps explain.
SPATIAL_FAMILIES = (CLIPFrames, DetailGrid)

#: Frame centre baseline point (normalised x, y).
FRAME_CENTRE = (0.5, 0.5)


# -- explanation maps ------------------------------------------------------------------------
def _probe_tensors(backbone: CLIPFrames | DetailGrid,
                   probe: LinearProbe) -> tuple[torch.Tensor, float]:
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


def gradcam_maps(backbone: CLIPFrames | DetailGrid, probe: LinearProbe,
                 frames: np.ndarray) -> np.ndarray:
    """Grad-CAM of the per-frame probe logit over the backbone's grid.

    Args:
        backbone: a CLIP backbone (``clip``, ``clip-random``, ``clip-tiny-random``) or
            ``detail-grid``.
        probe: a fitted :class:`LinearProbe` on this backbone's ``(dim,)`` frame embeddings
            (only ``coef_`` and ``intercept_`` are used).
        frames: ``(T, H, W, 3)`` uint8 RGB frames of any size (the backbone preprocesses them).
    Returns:
        ``(T, g, g)`` float32 maps, >= 0 (ReLU), in units of logit (the weighted sum of
        activations times mean gradients); row i, column j = cell i from the top, j from
        the left of the centre crop.
    """
    frames = _check_frames(frames)
    if isinstance(backbone, DetailGrid):
        return _cell_gradcam(backbone, probe, frames)
    return _clip_gradcam(backbone, probe, frames)


def _clip_gradcam(backbone: CLIPFrames, probe: LinearProbe, frames: np.ndarray) -> np.ndarray:
    """:func:`gradcam_maps` of CLIP, at the last block's ``layer_norm1`` (patch tokens).

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


def _cell_gradcam(backbone: DetailGrid, probe: LinearProbe, frames: np.ndarray) -> np.ndarray:
    """:func:`gradcam_maps` of ``detail-grid``: the activations are its cell features
    ``a`` ``(T, g², k)``, the logit ``w . a / ||a|| + b`` of their flattening."""
    g = backbone.grid
    cells = backbone.cell_grid(Clip(video=frames, audio=np.zeros(0, np.float32)))  # (T, g, g, k)
    if len(cells) == 0:
        return np.zeros((0, g, g), np.float32)
    with torch.inference_mode(False), torch.enable_grad():
        w, b = _probe_tensors(backbone, probe)
        acts = torch.from_numpy(cells.reshape(len(cells), g * g, -1)).requires_grad_(True)
        flat = acts.reshape(len(cells), -1)
        logit = torch.nn.functional.normalize(flat, dim=-1, eps=NORM_EPS) @ w + b
        (grad,) = torch.autograd.grad(logit.sum(), acts)  # frames are independent
    alpha = grad.mean(dim=1, keepdim=True)  # (T, 1, k): Grad-CAM channel weights
    cam = torch.relu((alpha * acts.detach()).sum(-1))
    return cam.reshape(-1, g, g).float().numpy()


def patch_probe_maps(backbone: CLIPFrames | DetailGrid, probe: LinearProbe,
                     frames: np.ndarray) -> np.ndarray:
    """The probe read cell by cell, no gradients.

    Args / shapes as :func:`gradcam_maps`. Returns ``(T, g, g)`` float32, signed, in units of
    logit. CLIP: per-patch logits ``w . p / ||p|| + b``, where ``p`` is the patch token after
    ``post_layernorm`` and ``visual_projection`` (:meth:`CLIPFrames.patch_grid`).
    ``detail-grid``: each cell's share ``w_c . a_c / ||a||`` of the frame logit (``a``: the
    frame's cell features, :meth:`DetailGrid.cell_grid`), which sum to the logit minus ``b``.
    """
    frames = _check_frames(frames)
    w, b = _probe_tensors(backbone, probe)
    if isinstance(backbone, DetailGrid):
        cells = backbone.cell_grid(Clip(video=frames, audio=np.zeros(0, np.float32)))
        flat = cells.reshape(len(cells), -1)
        norms = np.maximum(np.linalg.norm(flat, axis=-1, keepdims=True), NORM_EPS)
        shares = flat / norms * w.cpu().numpy()
        return shares.reshape(cells.shape).sum(-1).astype(np.float32)
    grid = backbone.patch_grid(Clip(video=frames, audio=np.zeros(0, np.float32)))  # (T, g, g, D)
    w = w.cpu().numpy()
    norms = np.maximum(np.linalg.norm(grid, axis=-1), NORM_EPS)
    return ((grid @ w) / norms + np.float32(b)).astype(np.float32)


_MAP_FUNCTIONS = {"gradcam": gradcam_maps, "patch": patch_probe_maps}


def spatial_maps(method: str, backbone: CLIPFrames | DetailGrid, probe: LinearProbe,
                 frames: np.ndarray) -> np.ndarray:
    """``(T, g, g)`` maps of ``method`` (``"gradcam"`` or ``"patch"``)."""
    if method not in _MAP_FUNCTIONS:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
    return _MAP_FUNCTIONS[method](backbone, probe, frames)


# -- errors and baselines ----------------------------------------------------------------------
def click_errors(points: np.ndarray, clicks: np.ndarray) -> np.ndarray:
    """Per-click error ``(|x − x̂| + |y − ŷ|) / 2``: ``(N, 2)`` points and clicks → ``(N,)``.

    Both in normalised frame coordinates, so the error is a fraction of the frame size.
    """
    points, clicks = np.asarray(points, np.float64), np.asarray(clicks, np.float64)
    if points.shape != clicks.shape or points.shape[-1] != 2:
        raise ValueError(f"points {points.shape} and clicks {clicks.shape} must both be (N, 2)")
    return np.abs(points - clicks).mean(axis=-1)


def face_centre_point(boxes: np.ndarray, frame_hw: tuple[int, int],
                      rng: np.random.Generator) -> tuple[float, float]:
    """Face-centre baseline of one frame, as the paper's code: the centre of one face box,
    ``((left + right) / 2 / W, (top + bottom) / 2 / H)``, a random one (drawn with ``rng``)
    when there are several, the frame centre when there is none.

    Args:
        boxes: ``(n, 4)`` boxes ``(left, top, right, bottom)`` in pixels (``n`` may be 0).
        frame_hw: ``(H, W)`` of the frame.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    boxes = boxes[np.isfinite(boxes).all(axis=1)]
    if not len(boxes):
        return FRAME_CENTRE
    x0, y0, x1, y1 = boxes[int(rng.integers(len(boxes)))] if len(boxes) > 1 else boxes[0]
    h, w = frame_hw
    return float((x0 + x1) / 2 / w), float((y0 + y1) / 2 / h)


def face_rng(seed: int, video_id: str, frame: int) -> np.random.Generator:
    """The generator of one frame's face choice: fixed by ``(seed, video, frame)``, so a
    video's baseline does not depend on which other videos or frames are in the table."""
    return np.random.default_rng([seed, zlib.crc32(video_id.encode()), int(frame)])


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


def _face_boxes(annotation: dict[str, Any], frames: np.ndarray,
                index: np.ndarray) -> tuple[str, list[np.ndarray]]:
    """Where the face boxes come from and the boxes ``(n_t, 4)`` (left, top, right, bottom)
    pixels of each frame in ``index``: ``"annotation"``, the one ``face_box`` per frame of the
    synthetic benchmark (the book's environment has no dlib), else ``"dlib"``, every face
    dlib's HOG detector finds (:func:`avdd.roi.faces.face_locations`, the paper's
    ``face_recognition.face_locations``)."""
    if annotation.get("face_box") is not None:
        boxes = np.asarray(annotation["face_box"], np.float64)[index]
        return "annotation", [box[None] for box in boxes]
    from avdd.roi.faces import face_locations

    return "dlib", face_locations(frames[index])


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
def _video_scores(profile, backbone: str, dataset: str, split: str, probe: LinearProbe
                  ) -> tuple[dict[str, float], dict[str, np.ndarray], dict[str, float]]:
    """Video score s, per-frame logits and feature rate of every video of the split (from
    the feature store)."""
    from avdd.features.prepare import feature_set

    fs = feature_set(profile, backbone, dataset, split)
    scores = probe.decision_function(fs)
    logits = probe.frame_logits(fs)
    ids = fs.ids.tolist()
    return (dict(zip(ids, scores.tolist())), dict(zip(ids, logits)),
            {v: fs.video_fps(i) for i, v in enumerate(ids)})


def spatial_table(profile, backbone: str, dataset: str, *, train: str | None = None,
                  split: str = "test", seed: int = 43, method: str = "gradcam",
                  point: str = "pixel", max_frames_per_video: int | None = None,
                  face_seed: int = 0, force: bool = False) -> pd.DataFrame:
    """Fig. 4's data: one row per click on the fake ``dataset``/``split`` videos.

    Args:
        profile: a :class:`avdd.config.Profile` whose features of ``backbone`` on ``train``
            (train/val) and ``dataset``/``split`` exist (``study.prepare``).
        backbone: a spec of a family in :data:`SPATIAL_FAMILIES` (``clip``,
            ``clip-tiny-random``, ``detail-grid``, ...).
        dataset: where the clicks are (paper: ExDDV; demo: a synthetic domain).
        train: the probe's training set (default: ``dataset``, as the paper's ExDDV probe).
        seed: the probe's seed.
        method: ``"gradcam"`` or ``"patch"`` (:func:`spatial_maps`).
        point: how a map becomes a point, ``"pixel"`` (the paper's code) or ``"cell"``
            (:mod:`avdd.analysis.spatial_points`).
        max_frames_per_video: annotated frames kept per video, evenly spread; None (the
            paper's code): every click. Every click on a kept frame is used.
        face_seed: seed of the face baseline's choice among several detected faces
            (:func:`face_rng`; the paper's code drew it unseeded).
        force: recompute instead of reading the cached table.
    Returns:
        Columns ``video_id``, ``manipulation`` (the annotation's, e.g. the synthetic
        benchmark's ``"wav2lip"`` or ``"faceswap-wav2lip"``; ``""`` when it has none),
        ``frame, click_x, click_y`` (the click), ``pred_x, pred_y`` (the map's
        point), ``face_x, face_y`` (the face baseline's point), ``n_faces`` (faces found on
        that frame: 0 puts the baseline at the frame centre) and ``face_source``
        (``"dlib"``, or ``"annotation"`` on the synthetic benchmark), ``err_cam, err_frame_centre,
        err_face_centre`` (click errors, fraction of the frame), ``score`` (the video's probe
        score s), ``frame_score`` (the probe's logit of that frame), ``map_max`` (the map's
        maximum: 0 for a Grad-CAM with no positive evidence, whose point is then the frame's
        centre pixel under ``"pixel"`` and the first cell under ``"cell"``), ``method``,
        ``point``, ``frame_h, frame_w``. Cached (:func:`avdd.analysis.cache.cached`).
    """
    from avdd.analysis.cache import cached
    from avdd.analysis.probes import study_probe, trained_probe
    from avdd.backbones import describe, get_backbone
    from avdd.datasets import load_items

    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
    if point not in POINT_RULES:
        raise ValueError(f"unknown point rule {point!r}; expected one of {POINT_RULES}")
    train = dataset if train is None else train
    info = describe(backbone)  # the network is built only if the table is not cached
    if not issubclass(info.family, SPATIAL_FAMILIES):
        raise ValueError(f"spatial explanations need a backbone with a spatial grid (CLIP or "
                         f"detail-grid), got {backbone!r}")
    config = {"backbone": [backbone, info.config], "train": train, "dataset": dataset,
              "split": split, "seed": seed, "method": method, "point": point,
              "max_frames_per_video": max_frames_per_video, "face_seed": face_seed,
              "probe": study_probe(profile, seed).get_params()}

    def compute() -> pd.DataFrame:
        bb = get_backbone(backbone)
        probe = trained_probe(profile, backbone, train, seed=seed)
        scores, logits, rates = _video_scores(profile, backbone, dataset, split, probe)
        image_size = int(bb.image_size)
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
            manipulation = str((item.annotation or {}).get("manipulation") or "")
            maps = spatial_maps(method, bb, probe, video[index])
            face_source, boxes = _face_boxes(item.annotation or {}, video, index)
            at = {f: k for k, f in enumerate(index.tolist())}
            # The store holds the video's frames at its feature rate (25 Hz, or the native rate
            # in the paper profile): a click's frame score is the one nearest in time
            # (clamped: the last frames of a decode may differ by one).
            frame_logits = logits[item.video_id]
            rate = rates[item.video_id]
            for f, x, y in clicks:
                k = at[f]
                px, py = map_to_frame_point(maps[k], hw, image_size, rule=point)
                fx, fy = face_centre_point(boxes[k], hw, face_rng(face_seed, item.video_id, f))
                rows.append({"video_id": item.video_id, "manipulation": manipulation,
                             "frame": f, "click_x": x, "click_y": y,
                             "pred_x": px, "pred_y": py, "face_x": fx, "face_y": fy,
                             "n_faces": int(np.isfinite(boxes[k]).all(axis=1).sum()),
                             "face_source": face_source,
                             "score": scores[item.video_id],
                             "frame_score": float(frame_logits[min(round(f * rate / fps),
                                                                   len(frame_logits) - 1)]),
                             "map_max": float(maps[k].max()), "method": method, "point": point,
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


#: Fig. 4's score axis: ``"unique"`` (the paper's code: every distinct score) or
#: ``"quantiles"`` (a few quantiles of the videos' scores, a lighter plot).
THRESHOLD_RULES = ("unique", "quantiles")


def score_thresholds(df: pd.DataFrame, rule: str = "unique", *, score: str = "score",
                     n: int = 8) -> np.ndarray:
    """The thresholds θ of Fig. 4's left panel, sorted ascending.

    Args:
        df: :func:`spatial_table`'s rows (one per click).
        rule: ``"unique"``: every distinct value of ``score`` over the clicks, as the paper's
            code (``sorted(set(scores))``); ``"quantiles"``: ``n`` quantiles from 0 to 0.9 of
            the videos' scores (one per video), so that the last point keeps ~10 % of them.
        score: the column thresholded (``"score"``: the video score; ``"frame_score"``: the
            logit of the click's frame).
    """
    if rule == "unique":
        return np.unique(df[score].dropna().to_numpy(np.float64))
    if rule == "quantiles":
        per_video = df.groupby("video_id")[score].first().dropna().to_numpy(np.float64)
        return np.unique(np.quantile(per_video, np.linspace(0, 0.9, n)))
    raise ValueError(f"unknown threshold rule {rule!r}; expected one of {THRESHOLD_RULES}")


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
        points: method → ``(x̂, ŷ)``, the map's point (:func:`map_to_frame_point`).
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
                     split: str = "test", seed: int = 43, point: str = "pixel",
                     max_frames_per_video: int | None = None, n_examples: int = 6,
                     force: bool = False) -> SpatialExamples:
    """Fig. 4's examples: the ``n_examples`` most confidently fake videos of
    :func:`spatial_table` (Grad-CAM's, same arguments), one frame each (the annotated frame
    with the highest frame logit), with the maps, points (by rule ``point``) and click errors
    of every method of :data:`METHODS`. (The paper's code drew six clicks at random instead,
    ``random.seed(17)``, from its own order of the clicks.)

    Cached with the frames (:func:`avdd.analysis.cache.cached`): a page that only replots
    builds no backbone and decodes no video.
    """
    from avdd.analysis.cache import Format, cached
    from avdd.analysis.probes import trained_probe
    from avdd.backbones import describe, get_backbone
    from avdd.datasets import load_items

    train = dataset if train is None else train
    clicks = spatial_table(profile, backbone, dataset, train=train, split=split, seed=seed,
                           method="gradcam", point=point,
                           max_frames_per_video=max_frames_per_video)
    best = (clicks.sort_values(["score", "frame_score"], ascending=False)
            .drop_duplicates("video_id").head(n_examples))
    config = {"backbone": [backbone, describe(backbone).config], "train": train,
              "dataset": dataset, "split": split, "seed": seed, "point": point,
              "max_frames_per_video": max_frames_per_video, "n_examples": n_examples,
              "examples": best[["video_id", "frame"]].to_numpy().tolist()}

    def compute() -> SpatialExamples:
        bb = get_backbone(backbone)
        probe = trained_probe(profile, backbone, train, seed=seed)
        image_size = int(bb.image_size)
        items = {it.video_id: it for it in load_items(profile, dataset, split)}
        examples = []
        for row in best.itertuples():
            frame = decode_for_clicks(items[row.video_id])[0][[int(row.frame)]]  # (1, H, W, 3)
            hw = frame.shape[1:3]
            click = (float(row.click_x), float(row.click_y))
            maps = {m: spatial_maps(m, bb, probe, frame)[0] for m in METHODS}
            points = {m: map_to_frame_point(maps[m], hw, image_size, rule=point) for m in METHODS}
            errors = {m: float(click_errors([points[m]], [click])[0]) for m in METHODS}
            examples.append(SpatialExample(
                video_id=str(row.video_id), frame=int(row.frame), score=float(row.score),
                frame_score=float(row.frame_score), image=frame[0], click=click,
                crop=crop_box(hw, image_size), maps=maps,
                points={m: (float(x), float(y)) for m, (x, y) in points.items()}, errors=errors))
        return SpatialExamples(backbone, image_size, int(bb.grid), tuple(examples))

    return cached(profile, "spatial_examples", config, compute, code=__name__, force=force,
                  fmt=Format(_save_examples, _load_examples))
