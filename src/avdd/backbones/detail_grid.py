"""``detail-grid``: how much fine detail each cell of the frame keeps, a handcrafted visual
representation with a spatial layout that Fig. 4 can explain (``backbone="detail-grid"``).

Face-manipulation pipelines paste a generated region (a re-drawn mouth, a swapped face) that
is a little blurrier than the camera's frame, often rendered at a lower resolution, with the
sensor noise of the generator rather than the camera's (:mod:`avdd.synth.video`). Each frame's
shortest side is resized to ``side`` pixels and its centre ``side × side`` square (the same
geometry as CLIP's preprocessing, :mod:`avdd.analysis.spatial_points`) cut into a
``grid × grid`` grid; each cell gets one number, the log ratio of its fine-scale to its
next-coarser detail on the luminance::

    fine = |y - G(σ₁) y|,   coarse = |G(σ₁) y - G(σ₂) y|,
    feature = log((mean_cell fine + ε) / (mean_cell coarse + ε))

(G: Gaussian blur). A sharp cell is near 0, a blurred or upscaled one negative, whatever its
contrast; ε (in grey levels) keeps flat cells from dividing noise by noise. The ratio's
origin, 0, is "as much fine as coarse detail": no centring is needed, and none is done (a
per-frame centring made each cell relative to the rest of the face and lost the pasted
region's own level; prototype on the scale-0.5 FAVC-like domain: AUC 74 either way, but the
probe's hottest cell 0.10 of the frame from the lip-sync region's centre instead of 0.05).

The feature vector is the grid in row-major order, ``grid²`` dims (64 by default), so a linear
probe's logit is a sum of per-cell terms and its explanation is exact
(:func:`avdd.analysis.spatial.patch_probe_maps`). :meth:`DetailGrid.cell_grid` gives the grid
as Fig. 4 reads it. Frames are independent: clips may be read in windows of any length.

An honest baseline, not an imitation of an SSL feature: it sees only what blur, resolution
and noise leave in a cell. Measured on the scale-0.5 FAVC-like domain (session 10): the
paper's probe with the demo's epoch cap (:data:`avdd.config.DEMO_PROBE_EPOCHS`) reaches a
test AUC of 60, and its patch map's point lies 0.078 of the frame from the lip-sync region's
centre on average (the frame centre: 0.128); capped at 100 epochs the probe stayed at chance
(AUC 49) and its map found nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from avdd.backbones.base import Backbone, register
from avdd.media import Clip
from avdd.roi.regions import Roi

#: ITU-R BT.601 luma weights (what "luminance" means for the cells).
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


@dataclass(frozen=True)
class DetailGridConfig:
    """``side``: pixels of the centre square the grid covers (frames are resized to it);
    ``grid``: cells per side (must divide ``side``); ``fine_sigma``, ``coarse_sigma``: the
    two Gaussian blurs (pixels at ``side``); ``floor``: ε of the ratio, in grey levels."""

    side: int = 128
    grid: int = 8
    fine_sigma: float = 0.7
    coarse_sigma: float = 1.5
    floor: float = 0.3

    def __post_init__(self):
        if self.grid < 1 or self.side % self.grid:
            raise ValueError(f"detail-grid: grid {self.grid} must divide side {self.side}")
        if not 0 < self.fine_sigma < self.coarse_sigma:
            raise ValueError("detail-grid: need 0 < fine_sigma < coarse_sigma, got "
                             f"{self.fine_sigma}, {self.coarse_sigma}")


def square_size(frame_hw: tuple[int, int], side: int) -> tuple[int, int]:
    """``(H', W')`` of a frame whose shortest side is resized to ``side``: the long side
    becomes ``int(side * long / short)``, transformers' rounding, so that the centre square
    is the one :func:`avdd.analysis.spatial_points.crop_box` places."""
    h, w = frame_hw
    return (int(side * h / w), side) if w <= h else (side, int(side * w / h))


@register("detail-grid")
class DetailGrid(Backbone):
    """Fine-detail ratio of each cell of a ``grid × grid`` grid over the frame's centre
    square: ``(T, grid²)`` float32 at 25 Hz (64 dims by default)."""

    modality = "visual"
    weights = "handcrafted"

    def __init__(self, config: DetailGridConfig | None = None, fps: float = 25.0) -> None:
        self.cfg = config or DetailGridConfig()
        self.name = "detail-grid"
        self.fps = fps
        self.grid = self.cfg.grid
        self.image_size = self.cfg.side  # the square the grid covers, as CLIP's image_size
        self.dim = self.grid**2

    @classmethod
    def unbuilt(cls, config: DetailGridConfig | None = None, fps: float = 25.0) -> DetailGrid:
        """For :func:`avdd.backbones.describe`: the backbone itself, as it has no network."""
        return cls(config, fps)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "fps": self.fps,
                "input": "full-frame", **asdict(self.cfg)}

    def feature_rate(self, clip: Clip) -> float:
        # One row per decoded frame: a natively decoded clip's features are at its own rate.
        return float(clip.fps) if clip.native else self.fps

    @property
    def stream_frames(self) -> int:
        # Each frame's features are its own: any split of the clip gives the same rows.
        return 1

    @property
    def frame_resize(self) -> Callable[[np.ndarray], np.ndarray]:
        # The resize the features begin with, done as frames are decoded; a frame already at
        # the size is returned as it is, so applying it twice changes nothing.
        return self.resize

    def resize(self, frame: np.ndarray) -> np.ndarray:
        """One ``(H, W, 3)`` uint8 frame with its shortest side at ``side`` (PIL bilinear,
        which averages over the footprint when shrinking); unchanged when already there."""
        from PIL import Image

        hh, ww = square_size(frame.shape[:2], self.cfg.side)
        if (hh, ww) == frame.shape[:2]:
            return frame
        return np.asarray(Image.fromarray(frame).resize((ww, hh), Image.BILINEAR))

    def squares(self, video: np.ndarray) -> np.ndarray:
        """``(T, side, side)`` float32 luminance of the frames' centre squares."""
        s = self.cfg.side
        out = np.empty((len(video), s, s), np.float32)
        for t, frame in enumerate(video):
            frame = self.resize(np.asarray(frame, np.uint8))
            top, left = (frame.shape[0] - s) // 2, (frame.shape[1] - s) // 2
            out[t] = frame[top:top + s, left:left + s].astype(np.float32) @ LUMA
        return out

    def cell_grid(self, clip: Clip, roi: Roi | None = None) -> np.ndarray:
        """``(T, grid, grid, 1)`` float32: the features as a grid (row i from the top,
        column j from the left of the centre square; one channel). ``__call__`` is its
        row-major flattening."""
        from scipy.ndimage import gaussian_filter

        c, g = self.cfg, self.grid
        y = self.squares(clip.video)
        if len(y) == 0:
            return np.zeros((0, g, g, 1), np.float32)
        fine_blur = gaussian_filter(y, sigma=(0, c.fine_sigma, c.fine_sigma))
        coarse_blur = gaussian_filter(y, sigma=(0, c.coarse_sigma, c.coarse_sigma))
        k = c.side // g

        def cell_means(a: np.ndarray) -> np.ndarray:
            return a.reshape(len(a), g, k, g, k).mean(axis=(2, 4))

        fine = cell_means(np.abs(y - fine_blur))
        coarse = cell_means(np.abs(fine_blur - coarse_blur))
        return np.log((fine + c.floor) / (coarse + c.floor)).astype(np.float32)[..., None]

    def __call__(self, clip: Clip, roi: Roi | None = None) -> np.ndarray:
        grid = self.cell_grid(clip, roi)
        return grid.reshape(len(grid), self.dim)
