"""From an explanation map over CLIP's patch grid to one point of the frame (Fig. 4).

CLIP sees a frame through its preprocessing: the shortest side resized to ``S`` pixels
(``image_size``, 224 for ViT-L/14; the long side becomes ``int(S * long / short)``, as
transformers' ``get_resize_output_image_size``), then the centre ``S × S`` crop, cut into a
``g × g`` patch grid. A map over that grid becomes a predicted point ``(x̂, ŷ)``, normalised
to the full frame, by one of two rules (:data:`POINT_RULES`):

* ``"pixel"``, the paper's code (github ``danoneata/veridiq``,
  ``explanations/generate_spatial_explanations.py`` ``undo_image_transform_clip`` and
  ``evaluate_spatial_explanations.py`` ``get_position``, with pytorch-grad-cam's
  ``scale_cam_image``; read, not copied), :func:`frame_map` then :func:`pixel_point`: min-max
  scale the map, resize it bilinearly to ``S × S``, min-max scale again (Grad-CAM's layer
  aggregation), paste it into a zero canvas of the resized frame's size at the crop's place,
  resize that bilinearly to the frame, and take the mean ``(row, col)`` of *all* the pixels
  equal to the maximum, divided by ``(H, W)`` (pixel indices, no half-pixel shift). A flat
  map (an all-zero Grad-CAM) ties every pixel, so its point is the frame's centre pixel.
* ``"cell"``: the centre of the argmax cell (ties: the first cell in row-major order), a
  coarser rule kept for comparison (:func:`cell_point`).

Both bilinear resizes follow OpenCV's ``cv2.resize(..., INTER_LINEAR)`` on float32 maps
(:func:`resize_bilinear`): pixel centres at half-integers, source coordinates clamped at the
edges, weights in float32, the horizontal pass first. The values equal OpenCV's generic code
bit for bit (checked on random maps with IPP switched off) and its IPP path, the default of
the ``opencv-python`` wheels the paper's code ran, to about 2e-5 on maps in [0, 1] (IPP's own
arithmetic). Pixels equal only up to such a rounding (the two pixels either side of a hot
cell's centre, two separate cells of equal value) may then tie in one and not in the other,
which moves the point to one of them; exact ties (a flat map, a plateau between equal
neighbouring cells) are the same in both. avdd does not depend on OpenCV.
"""

from __future__ import annotations

import numpy as np

__all__ = ["POINT_RULES", "resized_size", "crop_box", "cell_to_frame_point", "resize_bilinear",
           "minmax_scale", "frame_map", "pixel_point", "cell_point", "map_to_frame_point"]

#: How a map becomes a point: ``"pixel"`` (the paper's code) or ``"cell"`` (argmax cell centre).
POINT_RULES = ("pixel", "cell")

#: pytorch-grad-cam's guard against a zero range in its min-max scaling.
SCALE_EPS = 1e-7


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


def _crop_origin(frame_hw: tuple[int, int], image_size: int) -> tuple[int, int, int, int]:
    """``(H', W', top, left)``: the resized frame and where the centre crop starts in it."""
    hh, ww = resized_size(frame_hw, image_size)
    return hh, ww, (hh - image_size) // 2, (ww - image_size) // 2


def crop_box(frame_hw: tuple[int, int], image_size: int) -> tuple[float, float, float, float]:
    """The part of the frame CLIP sees: ``(x0, y0, x1, y1)`` normalised to the full frame.

    The centre crop keeps ``image_size`` pixels of the resized long side, starting at
    ``(long' − image_size) // 2`` (transformers' ``center_crop``); the frame's sides outside it
    are never seen by the model.
    """
    hh, ww, top, left = _crop_origin(frame_hw, image_size)
    return left / ww, top / hh, (left + image_size) / ww, (top + image_size) / hh


def cell_to_frame_point(row: float, col: float, grid: int, frame_hw: tuple[int, int],
                        image_size: int) -> tuple[float, float]:
    """Centre of grid cell ``(row, col)`` as a normalised frame point ``(x, y)`` in [0, 1].

    Cell centres sit at ``(k + 0.5) · image_size / grid`` pixels of the crop; adding the crop
    offset gives resized-frame pixels, and dividing by the resized size normalises them (the
    resize scales the whole frame, so normalised coordinates are the same before and after).
    """
    hh, ww, top, left = _crop_origin(frame_hw, image_size)
    step = image_size / grid
    return (left + (col + 0.5) * step) / ww, (top + (row + 0.5) * step) / hh


# -- OpenCV's bilinear resize ----------------------------------------------------------------
def _linear_taps(n_in: int, n_out: int, *, clamp_weights: bool
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Source indices ``(i0, i1)`` and float32 weights ``(w0, w1)`` of each output pixel along
    one axis, as OpenCV's INTER_LINEAR computes them: ``f = (d + 0.5) * n_in / n_out − 0.5``
    rounded to float32, ``i0 = floor(f)``, weight ``f − i0`` on ``i0 + 1``, indices clipped
    to the source. Outside the source, OpenCV's horizontal pass gives the edge pixel the
    whole weight (``clamp_weights``); its vertical pass keeps the weights and reads the edge
    row twice, which differs from the edge value by a rounding."""
    scale = 1.0 / (float(n_out) / float(n_in))  # OpenCV inverts the inverse scale, in double
    f = ((np.arange(n_out) + 0.5) * scale - 0.5).astype(np.float32)
    i0 = np.floor(f).astype(np.int64)
    frac = f - i0.astype(np.float32)
    if clamp_weights:
        frac[(i0 < 0) | (i0 >= n_in - 1)] = 0
    return (np.clip(i0, 0, n_in - 1), np.clip(i0 + 1, 0, n_in - 1), np.float32(1) - frac,
            frac)


def resize_bilinear(image: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """``(h, w)`` map → ``(H, W)`` float32, as ``cv2.resize(np.float32(image), (W, H))``
    (INTER_LINEAR; see the module docstring for how close)."""
    image = np.asarray(image, np.float32)
    if image.ndim != 2 or min(image.shape) < 1:
        raise ValueError(f"expected a non-empty (h, w) map, got shape {image.shape}")
    out_h, out_w = (int(v) for v in out_hw)
    if out_h < 1 or out_w < 1:
        raise ValueError(f"output size must be positive, got {out_hw}")
    if (out_h, out_w) == image.shape:
        return image.copy()
    x0, x1, a0, a1 = _linear_taps(image.shape[1], out_w, clamp_weights=True)
    rows = image[:, x0] * a0 + image[:, x1] * a1  # (h, W): the horizontal pass first
    y0, y1, b0, b1 = _linear_taps(image.shape[0], out_h, clamp_weights=False)
    return rows[y0] * b0[:, None] + rows[y1] * b1[:, None]


# -- the two rules ---------------------------------------------------------------------------
def minmax_scale(cam: np.ndarray) -> np.ndarray:
    """pytorch-grad-cam's ``scale_cam_image`` of one map, in float32:
    ``(cam − min) / (1e-7 + max(cam − min))``, so values lie in [0, 1) and a flat map is 0."""
    cam = np.asarray(cam, np.float32)
    cam = cam - cam.min()
    return cam / (SCALE_EPS + cam.max())


def _check_square(cam: np.ndarray) -> np.ndarray:
    cam = np.asarray(cam)
    if cam.ndim != 2 or cam.shape[0] != cam.shape[1] or cam.shape[0] < 1:
        raise ValueError(f"expected a square (g, g) map, got shape {cam.shape}")
    return cam


def frame_map(cam: np.ndarray, frame_hw: tuple[int, int], image_size: int) -> np.ndarray:
    """The paper's full-frame explanation of a ``(g, g)`` map: ``(H, W)`` float32 in [0, 1],
    zero where CLIP's centre crop cut the frame (module docstring, rule ``"pixel"``).

    The map is used as given: Grad-CAM's ReLU happens before (:func:`avdd.analysis.spatial.
    gradcam_maps`), as in pytorch-grad-cam; a signed map (the patch probe's) is only scaled.
    """
    cam = _check_square(cam)
    hh, ww, top, left = _crop_origin(frame_hw, image_size)
    crop = resize_bilinear(minmax_scale(cam), (image_size, image_size))
    # Grad-CAM's aggregation over target layers (one here): ReLU, mean, min-max again.
    crop = minmax_scale(np.maximum(crop, 0))
    canvas = np.zeros((hh, ww), np.float32)
    canvas[top:top + image_size, left:left + image_size] = crop
    return resize_bilinear(canvas, frame_hw)


def pixel_point(cam: np.ndarray, frame_hw: tuple[int, int],
                image_size: int) -> tuple[float, float]:
    """Rule ``"pixel"``: the mean ``(x, y)`` pixel index of every maximum of
    :func:`frame_map`, divided by the frame's ``(W, H)``."""
    full = frame_map(cam, frame_hw, image_size)
    rows, cols = np.nonzero(full == full.max())
    h, w = full.shape
    return float(cols.mean() / w), float(rows.mean() / h)


def cell_point(cam: np.ndarray, frame_hw: tuple[int, int],
               image_size: int) -> tuple[float, float]:
    """Rule ``"cell"``: the argmax cell's centre (ties: the first cell in row-major order, as
    ``np.argmax``), normalised ``(x̂, ŷ)``."""
    cam = _check_square(cam)
    row, col = np.unravel_index(int(np.argmax(cam)), cam.shape)
    return cell_to_frame_point(row, col, cam.shape[0], frame_hw, image_size)


def map_to_frame_point(cam: np.ndarray, frame_hw: tuple[int, int], image_size: int, *,
                       rule: str = "pixel") -> tuple[float, float]:
    """Predicted point ``(x̂, ŷ)`` in [0, 1] of a ``(g, g)`` map by ``rule``
    (:data:`POINT_RULES`)."""
    if rule == "pixel":
        return pixel_point(cam, frame_hw, image_size)
    if rule == "cell":
        return cell_point(cam, frame_hw, image_size)
    raise ValueError(f"unknown point rule {rule!r}; expected one of {POINT_RULES}")
