"""Visual manipulations of the synthetic benchmark: pasted regions, warps, blends, resizing.

Frames are float32 ``(T, H, W, 3)`` in [0, 255] (see :mod:`avdd.synth.face`) until the
"camera" adds sensor noise (:func:`add_grain`) and quantises them (:func:`quantise`). A generated
region (a re-rendered mouth, a swapped face) is pasted the way face-manipulation pipelines do:
the generator's output is a little blurrier, has its own colour cast, lower or missing sensor
noise, sometimes a lower resolution, and it is alpha-blended into the target frame with a
feathered elliptical mask. Those are the artefacts detectors look for; their strengths are
drawn from ranges, not tuned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter, map_coordinates

__all__ = ["PatchStyle", "sample_patch_style", "paste", "lipsync_opening", "face_warp", "frame_blend", "resize",
           "add_grain", "quantise"]


@dataclass(frozen=True)
class PatchStyle:
    """How a generated region is pasted.

    Attributes:
        blur: Gaussian blur sigma of the generated region (px).
        colour: per-channel RGB offset of the generated region (levels).
        flicker: per-frame random brightness jitter of the region (levels, std).
        feather: width of the mask's soft edge (px); 0.5 is a hard seam.
        noise: sensor-noise std inside the region (levels; the camera's is ~1-2.5).
        lowres: the generator's resolution relative to the frame (1 = full).
        scale: mask half-axes relative to the region's radii.
    """

    blur: float = 0.8
    colour: tuple[float, float, float] = (0.0, 0.0, 0.0)
    flicker: float = 0.0
    feather: float = 2.0
    noise: float = 0.8
    lowres: float = 1.0
    scale: float = 1.0


def sample_patch_style(rng: np.random.Generator, kind: str) -> PatchStyle:
    """Random style for a generator ``kind``: "lipsync" (mouth), "faceswap", "fsgan" (face)."""
    colour = tuple(float(v) for v in rng.normal(0, 3.5, size=3))
    if kind == "lipsync":
        return PatchStyle(blur=rng.uniform(0.3, 1.1), colour=colour, flicker=rng.uniform(0, 1.2),
                          feather=rng.uniform(0.5, 3.0), noise=rng.uniform(0.2, 1.2),
                          lowres=float(rng.choice([1.0, 0.75, 0.6])), scale=rng.uniform(1.25, 1.6))
    if kind == "faceswap":
        return PatchStyle(blur=rng.uniform(0.2, 0.7), colour=colour, flicker=rng.uniform(0.5, 2.0),
                          feather=rng.uniform(0.5, 2.0), noise=rng.uniform(0.5, 1.5),
                          scale=rng.uniform(0.82, 0.92))
    if kind == "fsgan":
        return PatchStyle(blur=rng.uniform(0.6, 1.3), colour=tuple(0.5 * c for c in colour),
                          flicker=rng.uniform(0.3, 1.2), feather=rng.uniform(2.0, 4.0),
                          noise=rng.uniform(0.1, 0.6),
                          lowres=float(rng.choice([1.0, 0.75])), scale=rng.uniform(0.85, 0.95))
    raise ValueError(f"unknown patch kind {kind!r}")


def paste(frames: np.ndarray, generated: np.ndarray, indices: np.ndarray, centres: np.ndarray,
          radii: tuple[float, float], style: PatchStyle, rng: np.random.Generator) -> None:
    """Paste generated regions into ``frames`` in place.

    Args:
        frames: ``(T, H, W, 3)`` float32 target frames (with sensor noise).
        generated: ``(len(indices), H, W, 3)`` float32 clean renders of the new content.
        indices: ``(K,)`` frame indices to edit.
        centres: ``(T, 2)`` region centres (x, y) in pixels, per frame of ``frames``.
        radii: region half-axes (rx, ry) in pixels, before ``style.scale``.
        style: artefacts of the generator.
        rng: for noise and flicker.
    """
    indices = np.asarray(indices, int)
    if len(indices) == 0:
        return
    h, w = frames.shape[1:3]
    rx, ry = radii[0] * style.scale, radii[1] * style.scale
    margin = style.feather + 2
    bw, bh = min(w, 2 * int(np.ceil(rx + margin)) + 1), min(h, 2 * int(np.ceil(ry + margin)) + 1)
    # One fixed-size box per frame (shifted inside the frame at the borders) lets the
    # generator's artefacts be applied to all patches at once.
    cx, cy = centres[indices, 0], centres[indices, 1]
    x0 = np.clip(np.round(cx).astype(int) - bw // 2, 0, w - bw)
    y0 = np.clip(np.round(cy).astype(int) - bh // 2, 0, h - bh)
    patches = np.stack([generated[k, y0[k] : y0[k] + bh, x0[k] : x0[k] + bw] for k in range(len(indices))])
    if style.lowres < 1:  # detail lost by a low-resolution generator
        small = resize(patches, max(2, round(bh * style.lowres)), max(2, round(bw * style.lowres)))
        patches = resize(small, bh, bw)
    if style.blur > 0:
        patches = gaussian_filter(patches, sigma=(0, style.blur, style.blur, 0), mode="nearest")
    cast = np.asarray(style.colour, np.float32)[None, None, None, :]
    flicker = rng.normal(0, style.flicker, size=(len(indices), 1, 1, 1)) if style.flicker else 0.0
    patches = patches + (cast + flicker).astype(np.float32)
    patches += (rng.random(patches.shape, dtype=np.float32) - 0.5) * (style.noise * np.sqrt(12.0))
    yy = (y0[:, None] + np.arange(bh)[None, :] + 0.5 - cy[:, None]) / ry  # (K, bh)
    xx = (x0[:, None] + np.arange(bw)[None, :] + 0.5 - cx[:, None]) / rx  # (K, bw)
    d = np.sqrt(yy[:, :, None] ** 2 + xx[:, None, :] ** 2)
    alpha = np.clip((1.0 - d) * min(rx, ry) / style.feather + 0.5, 0.0, 1.0)[..., None].astype(np.float32)
    for k, t in enumerate(indices):
        target = frames[t, y0[k] : y0[k] + bh, x0[k] : x0[k] + bw]
        target += alpha[k] * (patches[k] - target)


def lipsync_opening(opening: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mouth opening as a lip-sync generator produces it from audio: smoother, with a
    compressed range and possibly a one-frame lag. ``(T,)`` -> ``(T,)`` in [0, 1]."""
    width = int(rng.choice([1, 3, 5]))
    kernel = np.hanning(width + 2)[1:-1]
    smooth = np.convolve(np.pad(opening, width // 2, mode="edge"), kernel / kernel.sum(), mode="valid")
    gamma = rng.uniform(0.75, 1.3)
    out = rng.uniform(0.75, 1.0) * np.clip(smooth, 0, 1) ** gamma
    lag = int(rng.choice([0, 0, 1]))
    return np.concatenate([np.repeat(out[:1], lag), out[: len(out) - lag]]).astype(np.float32)


def face_warp(frames: np.ndarray, indices: np.ndarray, centres: np.ndarray, radii: tuple[float, float],
              strength: float, kind: str) -> None:
    """Geometric face warp in place: ``kind`` "bulge" (magnify the centre), "pinch", or "stretch"
    (vertical elongation), smoothly fading to nothing at the face ellipse's edge.

    ``strength`` is the largest displacement in pixels.
    """
    h, w = frames.shape[1:3]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for t in indices:
        cx, cy = centres[t]
        u, v = (xx - cx) / radii[0], (yy - cy) / radii[1]
        r2 = u * u + v * v
        fall = np.clip(1 - r2, 0, 1) ** 2  # 1 at the centre, 0 outside the face
        if kind == "stretch":
            dx, dy = 0 * u, -strength * v * fall
        else:
            sign = 1.0 if kind == "bulge" else -1.0
            dx, dy = -sign * strength * u * fall, -sign * strength * v * fall
        coords = np.stack([yy + dy, xx + dx])
        for c in range(3):
            frames[t, :, :, c] = map_coordinates(frames[t, :, :, c], coords, order=1, mode="nearest")


def frame_blend(frames: np.ndarray, other: np.ndarray, indices: np.ndarray, alpha: float) -> None:
    """Cross-blend whole frames with ``other`` (``(len(indices), H, W, 3)``) in place (ghosting)."""
    frames[indices] = (1 - alpha) * frames[indices] + alpha * other


def _resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` linear (triangle) interpolation weights; the triangle widens when
    shrinking so that every input pixel contributes (area-like anti-aliasing)."""
    support = max(1.0, n_in / n_out)
    centres = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
    weights = np.clip(1 - np.abs(np.arange(n_in)[None, :] - centres[:, None]) / support, 0, None)
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


def resize(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize ``(T, H, W, C)`` -> ``(T, height, width, C)`` float32 (separable triangle filter:
    bilinear when enlarging, anti-aliased when shrinking)."""
    frames = np.asarray(frames, np.float32)
    rows = _resize_matrix(frames.shape[1], height)
    cols = _resize_matrix(frames.shape[2], width)
    t, h, w, c = frames.shape
    # Two plain GEMMs (numpy's broadcast batched matmul is ~100x slower here).
    out = rows @ frames.transpose(1, 0, 2, 3).reshape(h, t * w * c)  # (height, T * W * C)
    out = out.reshape(height, t, w, c).transpose(1, 0, 3, 2).reshape(-1, w) @ cols.T  # (T*height*C, width)
    return np.ascontiguousarray(out.reshape(t, height, c, width).transpose(0, 1, 3, 2))


def add_grain(frames: np.ndarray, rng: np.random.Generator, noise: float = 1.5) -> np.ndarray:
    """Add uniform sensor noise of standard deviation ``noise`` (grey levels) in place.

    Each frame gets a randomly offset window of one of 8 noise fields (8 x 64 different
    patterns per clip): independent enough between frames, and ~5x cheaper than fresh noise.

    ``frames (T, H, W, 3)`` float32; returns ``frames``.
    """
    t, h, w, c = frames.shape
    scale = np.float32(noise * np.sqrt(12.0))  # uniform on [-0.5, 0.5) has std 1 / sqrt(12)
    bank = (rng.random((8, h + 8, w + 8, c), dtype=np.float32) - 0.5) * scale
    picks = rng.integers(0, [8, 9, 9], size=(t, 3))
    for frame, (b, dy, dx) in zip(frames, picks):
        frame += bank[b, dy : dy + h, dx : dx + w]
    return frames


def quantise(frames: np.ndarray) -> np.ndarray:
    """``(T, H, W, 3)`` float in [0, 255] -> uint8 (rounded, clipped)."""
    out = np.empty(frames.shape, np.uint8)
    for t in range(len(frames)):
        out[t] = np.clip(frames[t] + 0.5, 0, 255)
    return out
