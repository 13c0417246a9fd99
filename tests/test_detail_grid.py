"""detail-grid: a blurred region shows in its cells, CLIP's geometry, and its explanations."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from conftest import fixed_probe
from scipy.ndimage import gaussian_filter

from avdd.analysis import known_answers, spatial, spatial_points
from avdd.backbones import describe, get_backbone
from avdd.backbones.detail_grid import DetailGrid, DetailGridConfig, square_size
from avdd.media import Clip


def _clip(video: np.ndarray) -> Clip:
    return Clip(video=video, audio=np.zeros(0, np.float32))


def _frames(n: int = 3, hw: tuple[int, int] = (128, 128), blur_cell: tuple[int, int] = (2, 5),
            seed: int = 0) -> np.ndarray:
    """Textured grey frames (sensor-like noise on a smooth pattern), one 16-px cell of each
    blurred as a pasted, generated region would be."""
    rng = np.random.default_rng(seed)
    h, w = hw
    yy, xx = np.mgrid[0:h, 0:w]
    base = 120 + 40 * np.sin(xx / 9.0) * np.cos(yy / 7.0)
    frames = base[None] + rng.normal(0, 6, size=(n, h, w))
    if blur_cell is not None:
        i, j = blur_cell
        sl = (slice(None), slice(16 * i, 16 * i + 16), slice(16 * j, 16 * j + 16))
        frames[sl] = gaussian_filter(frames, sigma=(0, 1.5, 1.5))[sl]
    return np.repeat(np.clip(frames, 0, 255).round().astype(np.uint8)[..., None], 3, axis=-1)


_probe = fixed_probe


def test_a_blurred_cell_has_the_lowest_detail():
    bb = get_backbone("detail-grid")
    feats = bb(_clip(_frames()))
    assert feats.shape == (3, 64) and feats.dtype == np.float32
    grid = bb.cell_grid(_clip(_frames()))
    assert grid.shape == (3, 8, 8, 1)
    np.testing.assert_array_equal(grid.reshape(3, 64), feats)  # row-major flattening
    for t in range(3):
        assert np.unravel_index(grid[t, ..., 0].argmin(), (8, 8)) == (2, 5)
    sharp = bb.cell_grid(_clip(_frames(blur_cell=None)))[..., 0]
    assert grid[:, 2, 5, 0].max() < sharp[:, 2, 5].min() - 0.2


def test_describe_needs_no_network_and_config_is_checked():
    info = describe("detail-grid")
    assert info.modality == "visual" and info.dim == 64 and info.config["grid"] == 8
    with pytest.raises(ValueError, match="must divide"):
        DetailGridConfig(side=100, grid=8)
    with pytest.raises(ValueError, match="fine_sigma"):
        DetailGridConfig(fine_sigma=2.0, coarse_sigma=1.0)


@pytest.mark.parametrize("hw", [(128, 128), (90, 160), (240, 180), (64, 64), (300, 301)])
def test_the_square_is_clips_centre_crop(hw):
    side = DetailGridConfig().side
    assert square_size(hw, side) == spatial_points.resized_size(hw, side)
    bb = DetailGrid()
    frame = np.random.default_rng(1).integers(0, 255, size=(*hw, 3), dtype=np.uint8)
    resized = bb.resize(frame)
    assert resized.shape[:2] == spatial_points.resized_size(hw, side)
    x0, y0, _, _ = spatial_points.crop_box(hw, side)
    top, left = round(y0 * resized.shape[0]), round(x0 * resized.shape[1])
    expect = resized[top:top + side, left:left + side].astype(np.float32) @ np.float32(
        [0.299, 0.587, 0.114])
    np.testing.assert_array_equal(bb.squares(frame[None])[0], expect)


def test_decode_time_resize_and_windows_leave_the_features_unchanged():
    bb = DetailGrid()
    video = _frames(n=5, hw=(90, 160))
    whole = bb(_clip(video))
    resized = np.stack([bb.frame_resize(f) for f in video])
    np.testing.assert_array_equal(bb(_clip(resized)), whole)
    pieces = np.concatenate([bb(_clip(video[:2])), bb(_clip(video[2:]))])
    np.testing.assert_array_equal(pieces, whole)
    assert bb.stream_frames == 1 and bb(_clip(video[:0])).shape == (0, 64)


def test_patch_map_is_each_cells_exact_share_of_the_logit():
    bb = DetailGrid()
    frames = _frames()
    w = -np.ones(64, np.float32)  # less fine detail: more fake, the same in every cell
    probe = _probe(w, b=0.3)
    maps = spatial.patch_probe_maps(bb, probe, frames)
    assert maps.shape == (3, 8, 8)
    feats = bb(_clip(frames))
    z = feats @ w / np.linalg.norm(feats, axis=1) + 0.3
    np.testing.assert_allclose(maps.reshape(3, -1).sum(1) + 0.3, z, rtol=1e-5)
    for t in range(3):
        assert np.unravel_index(maps[t].argmax(), (8, 8)) == (2, 5)
    assert spatial.spatial_maps("patch", bb, probe, frames).shape == (3, 8, 8)


def test_cell_gradcam_is_relu_of_the_mean_gradient_times_the_cells():
    bb = DetailGrid()
    frames = _frames()
    w = np.random.default_rng(2).normal(size=64).astype(np.float32)
    cam = spatial.gradcam_maps(bb, _probe(w, b=-0.1), frames)
    a = bb(_clip(frames)).astype(np.float64)
    n = np.linalg.norm(a, axis=1, keepdims=True)
    grad = w[None] / n - (a @ w)[:, None] * a / n**3  # d(w . a / ||a||) / da
    expect = np.maximum(grad.mean(1, keepdims=True) * a, 0).reshape(3, 8, 8)
    np.testing.assert_allclose(cam, expect, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="64-d"):
        spatial.gradcam_maps(bb, _probe(np.ones(16)), frames)


def _clicks(err_single: float, err_nested: float) -> pd.DataFrame:
    """Spatial-table rows: 6 single-region and 6 face-swap videos, 4 clicks each."""
    rng = np.random.default_rng(0)
    rows = []
    for v in range(12):
        nested = v >= 6
        for f in range(4):
            rows.append({"video_id": f"v{v}", "frame": f,
                         "manipulation": "faceswap-wav2lip" if nested else "wav2lip",
                         "err_cam": (err_nested if nested else err_single) + rng.normal(0, .005),
                         "err_frame_centre": 0.1 + rng.normal(0, 0.005)})
    return pd.DataFrame(rows)


def test_spatial_check_reads_the_single_region_fakes_per_video():
    profile = SimpleNamespace(synthetic=True)
    good = known_answers.spatial_checks(profile, {"gradcam": _clicks(0.04, 0.2),
                                                  "patch": _clicks(0.3, 0.3)})
    assert len(good) == 1 and good[0].passed and "6 videos" in good[0].check
    assert good[0].value == pytest.approx(-0.06, abs=0.01)
    # A broken map (its points as far off as the face swaps') fails the check.
    bad = known_answers.spatial_checks(profile, {"gradcam": _clicks(0.2, 0.04),
                                                 "patch": _clicks(0.04, 0.04)})
    assert not bad[0].passed
    # The map is a parameter: the patch probe's table read instead.
    patch = known_answers.spatial_checks(profile, {"gradcam": _clicks(0.2, 0.04),
                                                   "patch": _clicks(0.04, 0.2)}, method="patch")
    assert patch[0].passed and patch[0].check.startswith("patch-probe map")
    assert known_answers.spatial_checks(SimpleNamespace(synthetic=False),
                                        {"patch": _clicks(0.04, 0.2)}) == []


def test_the_check_reads_detail_grids_exact_map_and_clips_gradcam():
    assert known_answers.spatial_check_method("detail-grid") == "patch"
    assert known_answers.spatial_check_method("clip-tiny-random") == "gradcam"
