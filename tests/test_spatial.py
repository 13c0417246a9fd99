"""Spatial explanations (Fig. 4): maps with a known answer, CLIP's geometry undone, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from avdd.analysis import spatial
from avdd.backbones.clip import CLIPFramesRandom, processor_for
from avdd.heads.probe import LinearProbe
from avdd.media import Clip

GRID, PATCH, SIZE = 4, 14, 56  # the tiny CLIP: 56² input, 14-px patches


def _probe(w: np.ndarray, b: float = 0.0) -> LinearProbe:
    """A 'fitted' probe with the given weights (what fit would set, without training)."""
    probe = LinearProbe()
    probe.coef_, probe.intercept_ = np.asarray(w, np.float32), float(b)
    probe.n_features_in_, probe.classes_ = len(probe.coef_), np.array([0, 1])
    probe.best_epoch_, probe.history_ = 0, []
    return probe


@pytest.fixture(scope="module")
def planted_clip():
    """A one-layer tiny CLIP whose Grad-CAM has a known answer.

    Position embeddings are zero, so patches of equal content get equal tokens; the last
    (only) block's queries are zero, so attention is uniform and the CLS output depends on
    every patch token through the same linear map: the gradient of the logit is the same
    vector g at every patch, and Grad-CAM's cell p is ReLU(g . A_p). A frame that is black
    but for one white patch then has two kinds of cells, and a probe pointing from the
    black frame's embedding towards the one-patch frame's makes g . (A_white − A_black) > 0.
    """
    from transformers import CLIPVisionConfig

    config = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                              num_attention_heads=4, image_size=SIZE, patch_size=PATCH,
                              projection_dim=16)
    bb = CLIPFramesRandom(config=config, seed=3, name="clip-planted")
    vision = bb.net.vision_model
    with torch.no_grad():
        vision.embeddings.position_embedding.weight.zero_()
        attn = vision.encoder.layers[-1].self_attn
        attn.q_proj.weight.zero_()
        attn.q_proj.bias.zero_()
    return bb


def _one_patch_frame(row: int, col: int) -> np.ndarray:
    frame = np.zeros((1, SIZE, SIZE, 3), np.uint8)
    frame[0, row * PATCH:(row + 1) * PATCH, col * PATCH:(col + 1) * PATCH] = 255
    return frame


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x)


@pytest.mark.parametrize("row, col", [(0, 0), (1, 2), (3, 1)])
def test_gradcam_argmax_is_the_planted_patch(planted_clip, row, col):
    frame = _one_patch_frame(row, col)
    black = np.zeros_like(frame)
    e = planted_clip(Clip(video=np.concatenate([frame, black]), audio=np.zeros(0, np.float32)))
    w = _unit(e[0]) - _unit(e[1])  # the frame logit rises with the white patch
    cam = spatial.gradcam_maps(planted_clip, _probe(w), frame)
    assert cam.shape == (1, GRID, GRID) and (cam >= 0).all()
    assert np.unravel_index(cam[0].argmax(), cam[0].shape) == (row, col)
    assert cam[0, row, col] > 0
    # Flipping the probe flips the evidence: the white patch is now the least fake cell.
    flipped = spatial.gradcam_maps(planted_clip, _probe(-w), frame)
    assert flipped[0, row, col] == flipped[0].min()


def test_gradcam_runs_inside_inference_mode(planted_clip):
    frame = _one_patch_frame(2, 2)
    w = np.random.default_rng(0).normal(size=planted_clip.dim)
    plain = spatial.gradcam_maps(planted_clip, _probe(w), frame)
    with torch.inference_mode():
        inside = spatial.gradcam_maps(planted_clip, _probe(w), frame)
    np.testing.assert_allclose(inside, plain, rtol=1e-5, atol=1e-7)
    assert not any(p.requires_grad for p in planted_clip.net.parameters())


def test_patch_probe_argmax_is_the_planted_patch(planted_clip):
    frame = _one_patch_frame(1, 3)
    tokens = planted_clip.patch_grid(Clip(video=frame, audio=np.zeros(0, np.float32)))[0]
    w = _unit(tokens[1, 3]) - _unit(tokens[0, 0])  # white-patch token minus a black one
    maps = spatial.patch_probe_maps(planted_clip, _probe(w, b=0.25), frame)
    assert maps.shape == (1, GRID, GRID)
    assert np.unravel_index(maps[0].argmax(), (GRID, GRID)) == (1, 3)
    # Per-patch logits are w . p / ||p|| + b.
    expect = tokens @ w / np.linalg.norm(tokens, axis=-1) + 0.25
    np.testing.assert_allclose(maps[0], expect, rtol=1e-5, atol=1e-6)


def test_probe_dimension_is_checked(planted_clip):
    with pytest.raises(ValueError, match="16-d"):
        spatial.gradcam_maps(planted_clip, _probe(np.ones(5)), _one_patch_frame(0, 0))


def test_map_to_frame_point_undoes_resize_and_centre_crop():
    # 100 high × 200 wide: resized to 56 × 112, crop keeps x in [28, 84) of 112.
    assert spatial.resized_size((100, 200), SIZE) == (56, 112)
    assert spatial.crop_box((100, 200), SIZE) == (0.25, 0.0, 0.75, 1.0)
    cam = np.zeros((GRID, GRID))
    cam[2, 0] = 1.0
    x, y = spatial.map_to_frame_point(cam, (100, 200), SIZE)
    assert x == pytest.approx((28 + 7) / 112) and y == pytest.approx((28 + 7) / 56)
    # Portrait frames crop top and bottom instead.
    x, y = spatial.map_to_frame_point(cam, (300, 150), SIZE)
    assert x == pytest.approx(7 / 56) and y == pytest.approx((28 + 28 + 7) / 112)
    # Square frames: cells tile the whole frame.
    assert spatial.map_to_frame_point(cam, (128, 128), SIZE) == pytest.approx((0.125, 0.625))


@pytest.mark.parametrize("hw", [(90, 160), (160, 90), (61, 97)])
def test_cell_centres_match_clip_preprocessing(hw):
    """A marker drawn at a frame point lands, after CLIP's own processor, in the cell whose
    mapped-back centre is that point (up to rounding of the resize)."""
    proc = processor_for(SIZE)
    h, w = hw
    for row in range(GRID):
        for col in range(GRID):
            x, y = spatial.cell_to_frame_point(row, col, GRID, hw, SIZE)
            frame = np.zeros((h, w, 3), np.uint8)
            cx, cy = int(x * w), int(y * h)
            frame[max(cy - 2, 0):cy + 3, max(cx - 2, 0):cx + 3] = 255
            pix = proc(images=[frame], input_data_format="channels_last",
                       return_tensors="pt")["pixel_values"][0].mean(0).numpy()
            cells = pix.reshape(GRID, PATCH, GRID, PATCH).mean((1, 3))
            assert np.unravel_index(cells.argmax(), cells.shape) == (row, col)


def test_click_errors_and_baselines():
    pts = np.array([[0.5, 0.5], [0.1, 0.9]])
    clicks = np.array([[0.7, 0.4], [0.1, 0.9]])
    np.testing.assert_allclose(spatial.click_errors(pts, clicks), [0.15, 0.0])
    faces = spatial.face_centre_points(np.array([[20, 10, 60, 50], [np.nan] * 4]), (100, 200))
    np.testing.assert_allclose(faces[0], [0.2, 0.3])
    assert np.isnan(faces[1]).all()
    with pytest.raises(ValueError):
        spatial.click_errors(pts, clicks[:1])


def test_clicks_of_reads_exddv_and_synthetic_annotations():
    assert spatial.clicks_of({"clicks": [[3, 0.2, 0.4]]}) == [(3, 0.2, 0.4)]
    assert spatial.clicks_of({"region_centre": [None, [0.5, 0.6], None]}) == [(1, 0.5, 0.6)]
    assert spatial.clicks_of(None) == []


def test_source_frame_clicks_are_decoded_at_the_source_rate(tmp_path):
    """ExDDV counts clicks in the source video's own frames (here 30 fps), not at 25 fps."""
    from avdd.datasets.base import Item
    from avdd.media import write_clip

    n = 45  # 1.5 s at 30 fps: 45 source frames, 38 at 25 fps
    video = np.repeat(np.arange(n, dtype=np.uint8)[:, None, None, None] * 5, 32, 1)
    video = np.repeat(np.repeat(video, 32, 2), 3, 3)
    path = tmp_path / "clip.mp4"
    write_clip(path, video, np.zeros(24000, np.float32), fps=30, crf=0)
    note = {"clicks": [[40, 0.5, 0.5]], "click_frame_unit": "source frame index"}
    frames, fps = spatial.decode_for_clicks(Item("clip.mp4", path, 1, "exddv", "test",
                                                 annotation=note))
    assert fps == pytest.approx(30) and len(frames) == n
    assert abs(float(frames[40].mean()) - 200) < 3
    frames, fps = spatial.decode_for_clicks(Item("clip.mp4", path, 1, "favc", "test",
                                                 annotation={"region_centre": [None]}))
    assert fps == 25 and len(frames) == round(n / 30 * 25)


def test_mae_vs_threshold_filters_monotonically():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"video_id": np.repeat(np.arange(20), 5).astype(str),
                       "score": np.repeat(np.linspace(-1, 2, 20), 5),
                       "err_cam": rng.uniform(0, 0.3, 100)})
    out = spatial.mae_vs_threshold(df, [-2, 0, 1, 1.9, 5], n_bootstrap=200)
    assert out["n"].tolist() == sorted(out["n"], reverse=True)
    assert out["n"].iloc[0] == 100 and out["n"].iloc[-1] == 0
    assert np.isnan(out["mae"].iloc[-1])
    kept = df[df.score >= 1]
    row = out.set_index("threshold").loc[1.0]
    assert row.mae == pytest.approx(kept.err_cam.mean()) and row.n_videos == kept.video_id.nunique()
    assert row.ci_low <= row.mae <= row.ci_high


def test_spatial_table_on_tiny_profile(tiny_profile, tmp_path):
    """End to end on three synthetic FAVC test videos (a split list of their own keeps the
    extraction short; a probe with fixed weights stands in for the trained one, so nothing
    is trained here)."""
    from dataclasses import replace

    from avdd.analysis.probes import install_probe
    from avdd.features.extract import extract_many

    split = pd.read_csv(tiny_profile.splits_dir("favc") / "test_labels.csv")
    (tmp_path / "splits").mkdir()
    pd.concat([split[split.label == 1].head(2), split[split.label == 0].head(1)]).to_csv(
        tmp_path / "splits" / "test_labels.csv", index=False)
    tiny_profile = replace(tiny_profile, splits_dirs={"favc": tmp_path / "splits"})
    bb = "clip-tiny-random"
    list(extract_many(tiny_profile, [bb], [("favc", "test")], workers=1, progress=False))
    w = np.random.default_rng(1).normal(size=16).astype(np.float32)
    install_probe(tiny_profile, bb, "favc", _probe(w, 0.1))
    df = spatial.spatial_table(tiny_profile, bb, "favc", max_frames_per_video=2)
    assert df.video_id.nunique() == 2  # the fakes only
    assert (df.groupby("video_id").frame.nunique() == 2).all()
    for col in ("err_cam", "err_frame_centre", "err_face_centre"):
        assert df[col].between(0, 1).all()
    assert df[["pred_x", "pred_y"]].stack().between(0, 1).all()
    patch = spatial.spatial_table(tiny_profile, bb, "favc", method="patch", max_frames_per_video=2)
    assert (patch.method == "patch").all() and len(patch) == len(df)
    again = spatial.spatial_table(tiny_profile, bb, "favc", max_frames_per_video=2)  # cached
    pd.testing.assert_frame_equal(again, df, check_dtype=False)
    # Fig. 4's examples: the top frame of each fake, explained as the table explained it
    ex = spatial.spatial_examples(tiny_profile, bb, "favc", max_frames_per_video=2)
    assert (ex.grid, ex.image_size) == (4, 56) and len(ex.examples) == 2
    assert ex.examples[0].score >= ex.examples[1].score
    rows = {m: t.set_index(["video_id", "frame"]) for m, t in (("gradcam", df), ("patch", patch))}
    for e in ex.examples:
        assert e.image.dtype == np.uint8 and e.image.shape[:2] == (df.frame_h[0], df.frame_w[0])
        for m, t in rows.items():
            row = t.loc[(e.video_id, e.frame)]
            assert e.points[m] == pytest.approx((row.pred_x, row.pred_y))
            assert e.errors[m] == pytest.approx(row.err_cam) and e.maps[m].shape == (4, 4)
    cached = spatial.spatial_examples(tiny_profile, bb, "favc", max_frames_per_video=2)
    assert all(np.array_equal(a.image, b.image) and np.array_equal(a.maps["patch"], b.maps["patch"])
               and a.points == b.points for a, b in zip(cached.examples, ex.examples))
