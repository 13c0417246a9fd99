"""From a map to a frame point (Fig. 4): OpenCV's bilinear resize, the paper's pixel rule."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from conftest import require

from avdd.analysis import spatial_points as sp


def test_bilinear_resize_uses_half_pixel_centres_and_clamps_the_edges():
    # 1 × 2 → 1 × 4: output pixel d samples source x = (d + 0.5) / 2 − 0.5 = −0.25, 0.25,
    # 0.75, 1.25; outside [0, 1] the edge value is kept.
    np.testing.assert_array_equal(sp.resize_bilinear([[0.0, 1.0]], (1, 4)),
                                  [[0.0, 0.25, 0.75, 1.0]])
    # 4 → 2 samples x = 0.5 and 2.5: the mean of each pair.
    np.testing.assert_array_equal(sp.resize_bilinear([[0.0, 2.0, 4.0, 8.0]], (1, 2)),
                                  [[1.0, 6.0]])
    # Both axes, by hand: a 2 × 2 map to 4 × 4 is the outer product of [1, .75, .25, 0]-style
    # weights; its corners are the source corners, its centre the mean of all four.
    out = sp.resize_bilinear([[0.0, 4.0], [8.0, 12.0]], (4, 4))
    np.testing.assert_array_equal(out[0], [0, 1, 3, 4])
    np.testing.assert_array_equal(out[:, 0], [0, 2, 6, 8])
    assert out[1, 1] == 0.75 * (0.75 * 0 + 0.25 * 4) + 0.25 * (0.75 * 8 + 0.25 * 12)
    assert out.dtype == np.float32
    with pytest.raises(ValueError, match="non-empty"):
        sp.resize_bilinear(np.zeros((0, 3)), (2, 2))


def test_bilinear_resize_matches_opencv():
    """Bit for bit with OpenCV's generic resize; within 5e-5 of its default (IPP) path."""
    require(importlib.util.find_spec("cv2") is not None,
            "OpenCV (a dependency of mediapipe, the test extra) is not installed")
    import cv2

    rng = np.random.default_rng(0)
    shapes = [((16, 16), (224, 224)), ((16, 16), (224, 398)), ((224, 398), (720, 1280)),
              ((224, 299), (300, 400)), ((7, 3), (2, 9)), ((1, 5), (4, 1)), ((5, 1), (1, 4))]
    shapes += [(tuple(rng.integers(1, 40, 2)), tuple(rng.integers(1, 300, 2))) for _ in range(30)]
    optimised, ipp = cv2.useOptimized(), cv2.ipp.useIPP()
    try:
        for (h, w), (out_h, out_w) in shapes:
            image = rng.random((h, w)).astype(np.float32)
            ours = sp.resize_bilinear(image, (out_h, out_w))
            cv2.setUseOptimized(True), cv2.ipp.setUseIPP(True)
            np.testing.assert_allclose(ours, cv2.resize(image, (int(out_w), int(out_h))), atol=5e-5)
            cv2.setUseOptimized(False), cv2.ipp.setUseIPP(False)
            np.testing.assert_array_equal(ours, cv2.resize(image, (int(out_w), int(out_h))))
    finally:
        cv2.setUseOptimized(optimised), cv2.ipp.setUseIPP(ipp)


def test_minmax_scale_is_grad_cams():
    np.testing.assert_allclose(sp.minmax_scale([[2.0, 4.0], [3.0, 6.0]]),
                               np.array([[0, 2], [1, 4]]) / (1e-7 + 4), rtol=1e-6)
    assert not sp.minmax_scale(np.full((3, 3), 5.0)).any()  # flat: all zero, no NaN


def test_pixel_rule_on_a_hot_cell_of_a_wide_frame():
    """224 × 448 frame: CLIP resizes nothing (short side already 224) and crops x in
    [112, 336). A hot cell (5, 9) of 16 × 16 peaks around its centre (112 + 9.5·14, 5.5·14);
    the paper's rule gives that pixel (half a pixel less: indices, no half-pixel shift), up
    to one pixel for the ties that float rounding breaks."""
    cam = np.zeros((16, 16), np.float32)
    cam[5, 9] = 3.0
    x, y = sp.pixel_point(cam, (224, 448), 224)
    assert abs(x * 448 - (112 + 9.5 * 14 - 0.5)) <= 1 and abs(y * 224 - (5.5 * 14 - 0.5)) <= 1
    assert sp.frame_map(cam, (224, 448), 224)[:, :112].max() == 0  # outside the crop


def test_pixel_rule_ties_a_flat_map_over_the_whole_frame():
    """An all-zero Grad-CAM (no positive evidence): every pixel is a maximum, so the point is
    the mean pixel index ((W − 1) / 2, (H − 1) / 2), not the top-left cell."""
    for hw in [(224, 448), (361, 640), (720, 1280), (300, 150)]:
        h, w = hw
        assert sp.pixel_point(np.zeros((16, 16)), hw, 224) == pytest.approx(
            ((w - 1) / 2 / w, (h - 1) / 2 / h))
    assert sp.cell_point(np.zeros((16, 16)), (224, 224), 224) == (0.5 / 16, 0.5 / 16)


@pytest.mark.parametrize("hw, offset, shrink", [((224, 448), 112, 1), ((112, 224), 112, 2)])
def test_pixel_rule_takes_the_mean_of_a_plateau(hw, offset, shrink):
    """Four equal cells (rows 5-6, columns 7-8): the upsampled map is exactly 1 on the square
    between their centres, crop pixels 77..90 × 105..118 (source coordinates 5..6 and 7..8:
    (p + 0.5) / 14 − 0.5), an exact tie. Pasted at x + 112 of the 224 × 448 canvas, then
    (second case) halved to a 112 × 224 frame, where the pixels whose two sources are both
    on the plateau tie. The mean is the block's centre, 8 · 14 + 112 and 6 · 14 canvas
    pixels, in indices (−0.5)."""
    cam = np.zeros((16, 16))
    cam[5:7, 7:9] = 1.0
    full = sp.frame_map(cam, hw, 224)
    rows, cols = np.nonzero(full == full.max())
    if shrink == 1:
        assert set(rows) == set(range(77, 91)) and set(cols) == set(range(105 + offset, 119 + offset))
    else:  # canvas plateau 77..90 (rows), 217..230 (cols): output p has sources 2p, 2p + 1
        assert set(rows) == set(range(39, 45)) and set(cols) == set(range(109, 115))
    h, w = hw
    x, y = sp.pixel_point(cam, hw, 224)
    assert x == pytest.approx(((8 * 14 + offset) / shrink - 0.5) / w)
    assert y == pytest.approx((6 * 14 / shrink - 0.5) / h)


def test_pixel_rule_follows_the_crop_of_a_portrait_frame():
    """300 × 150: resized to 448 × 224, crop rows [112, 336). A plateau of cells (1-2, 3-4)
    centred on (4 · 14, 112 + 2 · 14) canvas pixels lands, scaled by 150 / 224, on that point
    of the frame (pixel indices: −0.5; within a pixel, the resize's rounding)."""
    cam = np.zeros((16, 16))
    cam[1:3, 3:5] = 1.0
    x, y = sp.pixel_point(cam, (300, 150), 224)
    assert abs(x * 150 - (4 * 14 * 150 / 224 - 0.5)) <= 1
    assert abs(y * 300 - ((112 + 2 * 14) * 300 / 448 - 0.5)) <= 1
    cx, cy = sp.cell_point(cam, (300, 150), 224)  # the first hot cell, (1, 3)
    assert (cx, cy) == pytest.approx((3.5 * 14 / 224, (112 + 1.5 * 14) / 448))


def test_an_edge_cell_pulls_the_pixel_point_to_the_border():
    """OpenCV clamps outside the source: a hot cell on the crop's edge is a plateau from its
    centre to the edge, so the rule's point lies between them (a property of the paper's
    rule, kept)."""
    cam = np.zeros((16, 16))
    cam[5, 0] = 1.0
    x, _ = sp.pixel_point(cam, (224, 224), 224)
    assert x * 224 == pytest.approx(3.0)  # pixels 0..6 tie (source x ≤ 0)
    assert sp.cell_point(cam, (224, 224), 224)[0] * 224 == 7.0


def test_point_rules_are_checked():
    with pytest.raises(ValueError, match="square"):
        sp.pixel_point(np.zeros((4, 5)), (10, 10), 56)
    with pytest.raises(ValueError, match="point rule"):
        sp.map_to_frame_point(np.zeros((4, 4)), (10, 10), 56, rule="max")
    assert sp.POINT_RULES == ("pixel", "cell")
