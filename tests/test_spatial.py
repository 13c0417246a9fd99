"""Spatial explanations (Fig. 4): maps with a known answer, CLIP's geometry undone, errors."""

from __future__ import annotations

import dataclasses
import importlib.util

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import fixed_probe, require

from avdd.analysis import spatial, spatial_points
from avdd.backbones import get_backbone
from avdd.backbones.clip import CLIPFramesRandom, processor_for
from avdd.media import Clip

GRID, PATCH, SIZE = 4, 14, 56  # the tiny CLIP: 56² input, 14-px patches


_probe = fixed_probe


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


def test_cell_rule_undoes_resize_and_centre_crop():
    # 100 high × 200 wide: resized to 56 × 112, crop keeps x in [28, 84) of 112.
    assert spatial.resized_size((100, 200), SIZE) == (56, 112)
    assert spatial.crop_box((100, 200), SIZE) == (0.25, 0.0, 0.75, 1.0)
    cam = np.zeros((GRID, GRID))
    cam[2, 0] = 1.0
    x, y = spatial.map_to_frame_point(cam, (100, 200), SIZE, rule="cell")
    assert x == pytest.approx((28 + 7) / 112) and y == pytest.approx((28 + 7) / 56)
    # Portrait frames crop top and bottom instead.
    x, y = spatial.map_to_frame_point(cam, (300, 150), SIZE, rule="cell")
    assert x == pytest.approx(7 / 56) and y == pytest.approx((28 + 28 + 7) / 112)
    # Square frames: cells tile the whole frame.
    assert spatial.map_to_frame_point(cam, (128, 128), SIZE, rule="cell") == pytest.approx(
        (0.125, 0.625))
    # A flat map: the first cell (np.argmax), whatever the frame.
    assert spatial.map_to_frame_point(np.zeros((GRID, GRID)), (128, 128), SIZE,
                                      rule="cell") == pytest.approx((0.125, 0.125))
    with pytest.raises(ValueError, match="point rule"):
        spatial.map_to_frame_point(cam, (128, 128), SIZE, rule="argmax")


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


def test_click_errors():
    pts = np.array([[0.5, 0.5], [0.1, 0.9]])
    clicks = np.array([[0.7, 0.4], [0.1, 0.9]])
    np.testing.assert_allclose(spatial.click_errors(pts, clicks), [0.15, 0.0])
    with pytest.raises(ValueError):
        spatial.click_errors(pts, clicks[:1])


def test_face_baseline_is_the_box_centre_a_seeded_face_or_the_frame_centre():
    """The paper's code: the centre of face_recognition's box; random.choice among several;
    (0.5, 0.5) when no face was found."""
    hw = (100, 200)
    one = np.array([[20, 10, 60, 50]])  # (left, top, right, bottom)
    rng = np.random.default_rng(0)
    assert spatial.face_centre_point(one, hw, rng) == pytest.approx((0.2, 0.3))
    assert spatial.face_centre_point(np.zeros((0, 4)), hw, rng) == (0.5, 0.5)
    assert spatial.face_centre_point(np.full((1, 4), np.nan), hw, rng) == (0.5, 0.5)
    two = np.array([[20, 10, 60, 50], [120, 40, 180, 100]])
    picks = {spatial.face_centre_point(two, hw, spatial.face_rng(0, "v", f)) for f in range(40)}
    assert picks == {(40 / 200, 30 / 100), (150 / 200, 70 / 100)}  # both faces get drawn
    # Seeded per (seed, video, frame): the same frame always gets the same face.
    again = [spatial.face_centre_point(two, hw, spatial.face_rng(0, "v", 7)) for _ in range(5)]
    assert len(set(again)) == 1
    other_seed = [spatial.face_centre_point(two, hw, spatial.face_rng(1, "v", f))
                  for f in range(40)]
    assert other_seed != [spatial.face_centre_point(two, hw, spatial.face_rng(0, "v", f))
                          for f in range(40)]


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


def test_score_thresholds_are_every_unique_score_or_quantiles():
    df = pd.DataFrame({"video_id": ["a", "a", "b", "c", "c", "d"],
                       "score": [0.5, 0.5, -1.0, 2.0, 2.0, 0.5],
                       "frame_score": [0.1, 0.3, -2.0, 1.0, 1.5, np.nan]})
    # The paper's code: sorted(set(scores)) over the clicks.
    np.testing.assert_array_equal(spatial.score_thresholds(df), [-1.0, 0.5, 2.0])
    np.testing.assert_array_equal(spatial.score_thresholds(df, score="frame_score"),
                                  [-2.0, 0.1, 0.3, 1.0, 1.5])
    q = spatial.score_thresholds(df, "quantiles", n=3)  # per video: -1, .5, .5, 2
    np.testing.assert_allclose(q, np.quantile([-1.0, 0.5, 2.0, 0.5], [0, 0.45, 0.9]))
    with pytest.raises(ValueError, match="threshold rule"):
        spatial.score_thresholds(df, "deciles")
    curve = spatial.mae_vs_threshold(df.assign(err_cam=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]),
                                     spatial.score_thresholds(df), n_bootstrap=10)
    assert curve.n.tolist() == [6, 5, 2]
    assert curve.mae.tolist() == pytest.approx([0.35, 0.36, 0.45])


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


@pytest.mark.slow
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
    probe = _probe(w, 0.1)
    probe.max_epochs = tiny_profile.probe_epochs  # the study's parameters, as install_probe asks
    install_probe(tiny_profile, bb, "favc", probe)
    df = spatial.spatial_table(tiny_profile, bb, "favc")  # the paper's protocol: every click
    assert df.video_id.nunique() == 2  # the fakes only
    from avdd.datasets import load_items

    items = {it.video_id: it for it in load_items(tiny_profile, "favc", "test")}
    n_clicks = {v: len(spatial.clicks_of(items[v].annotation)) for v in df.video_id.unique()}
    assert df.groupby("video_id").size().to_dict() == n_clicks and min(n_clicks.values()) > 2
    for col in ("err_cam", "err_frame_centre", "err_face_centre"):
        assert df[col].between(0, 1).all()
    assert df[["pred_x", "pred_y"]].stack().between(0, 1).all()
    assert (df.point == "pixel").all() and (df.n_faces == 1).all()  # synthetic: one face box
    assert (df.face_source == "annotation").all()
    # The table's point is the pixel rule applied to that frame's Grad-CAM, and its face
    # baseline the centre of the annotated box.
    row = df.iloc[len(df) // 2]
    frames, _ = spatial.decode_for_clicks(items[row.video_id])
    # The same batch as the table's (the video's clicked frames): Grad-CAM of a lone frame
    # differs in the last float bits, which moves "the mean of all maximal pixels" on ties.
    batch = np.sort(df[df.video_id == row.video_id].frame.unique())
    cam = spatial.gradcam_maps(get_backbone(bb), _probe(w, 0.1), frames[batch])[
        int(np.searchsorted(batch, row.frame))]
    hw = (row.frame_h, row.frame_w)
    assert (row.pred_x, row.pred_y) == pytest.approx(spatial_points.pixel_point(cam, hw, SIZE),
                                                     abs=1e-9)
    box = np.asarray(items[row.video_id].annotation["face_box"])[row.frame]
    assert (row.face_x, row.face_y) == pytest.approx(((box[0] + box[2]) / 2 / hw[1],
                                                      (box[1] + box[3]) / 2 / hw[0]))
    cells = spatial.spatial_table(tiny_profile, bb, "favc", point="cell")
    assert (cells.point == "cell").all() and len(cells) == len(df)
    assert cells.iloc[len(df) // 2][["pred_x", "pred_y"]].tolist() == pytest.approx(
        spatial.map_to_frame_point(cam, hw, SIZE, rule="cell"))
    few = spatial.spatial_table(tiny_profile, bb, "favc", max_frames_per_video=2)
    assert (few.groupby("video_id").frame.nunique() == 2).all()
    patch = spatial.spatial_table(tiny_profile, bb, "favc", method="patch")
    assert (patch.method == "patch").all() and len(patch) == len(df)
    again = spatial.spatial_table(tiny_profile, bb, "favc")  # cached
    pd.testing.assert_frame_equal(again, df, check_dtype=False)
    # Fig. 4's examples: the top frame of each fake, explained as the table explained it
    ex = spatial.spatial_examples(tiny_profile, bb, "favc")
    assert (ex.grid, ex.image_size) == (4, 56) and len(ex.examples) == 2
    assert ex.examples[0].score >= ex.examples[1].score
    rows = {m: t.set_index(["video_id", "frame"]) for m, t in (("gradcam", df), ("patch", patch))}
    for e in ex.examples:
        assert e.image.dtype == np.uint8 and e.image.shape[:2] == (df.frame_h[0], df.frame_w[0])
        for m, t in rows.items():
            row = t.loc[(e.video_id, e.frame)]
            assert e.points[m] == pytest.approx((row.pred_x, row.pred_y))
            assert e.errors[m] == pytest.approx(row.err_cam) and e.maps[m].shape == (4, 4)
    cached = spatial.spatial_examples(tiny_profile, bb, "favc")
    assert all(np.array_equal(a.image, b.image) and np.array_equal(a.maps["patch"], b.maps["patch"])
               and a.points == b.points for a, b in zip(cached.examples, ex.examples))


def test_face_locations_are_every_detection_clipped_as_face_recognition(monkeypatch):
    """face_recognition.face_locations: all of dlib's detections, in its order, clipped to the
    frame at (0, 0, W, H)."""
    from avdd.roi import faces as faces_mod

    class Rect:
        def __init__(self, *ltrb):
            self.ltrb = ltrb

        def left(self): return self.ltrb[0]
        def top(self): return self.ltrb[1]
        def right(self): return self.ltrb[2]
        def bottom(self): return self.ltrb[3]

    seen = []

    def detector(frame, upsample):
        seen.append((frame.shape, frame.flags.c_contiguous, upsample))
        return [Rect(-5, 10, 40, 130), Rect(50, -2, 140, 60)] if frame.any() else []

    monkeypatch.setattr(faces_mod.DlibFaceBoxes, "_detector", staticmethod(lambda: detector))
    video = np.zeros((2, 100, 120, 3), np.uint8)
    video[0, 5, 5] = 1
    found = faces_mod.face_locations(video[:, :, ::-1])  # a strided view: made contiguous
    np.testing.assert_array_equal(found[0], [[0, 10, 40, 100], [50, 0, 120, 60]])
    assert found[1].shape == (0, 4)
    assert seen[-2:] == [((100, 120, 3), True, 1)] * 2


@pytest.mark.slow
def test_face_locations_with_dlib_finds_both_faces():
    require(importlib.util.find_spec("dlib") is not None, "dlib is not installed (.[dlib])")
    from avdd.roi.faces import face_locations
    from avdd.synth.common import sample_identity, speak
    from avdd.synth.config import SynthConfig
    from avdd.synth.video import quantise

    rng = np.random.default_rng(0)
    who = sample_identity(rng, "id0")  # centred, so that its mirror image is a second face
    who = dataclasses.replace(who, appearance=dataclasses.replace(who.appearance, centre=(0.5, 0.48)))
    take = speak(rng, SynthConfig(), who, ["hello"])
    face = quantise(take.clean.frames[:1])  # (1, 128, 128, 3), one cartoon face
    two = np.concatenate([face, face[:, :, ::-1]], axis=2)  # a mirrored second face
    boxes = face_locations(np.concatenate([two, np.zeros_like(two)]))
    assert boxes[0].shape == (2, 4) and boxes[1].shape == (0, 4)
    centres = sorted(((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for b in boxes[0])
    (lx, ly), (rx, ry) = centres
    # Mirror images, up to dlib's box grid (its HOG detector is not exactly mirror-symmetric).
    assert lx < 128 < rx and abs((lx + rx) / 2 - 128) <= 4 and ly == ry


def test_real_clips_get_every_detected_face(monkeypatch):
    """Without annotated boxes (ExDDV) the baseline's boxes are face_locations' detections."""
    from avdd.roi import faces as faces_mod

    frames = np.zeros((3, 20, 30, 3), np.uint8)
    found = [np.array([[1, 2, 5, 6], [10, 2, 20, 12]], np.float32), np.zeros((0, 4), np.float32)]
    monkeypatch.setattr(faces_mod, "face_locations", lambda video: found[:len(video)])
    source, boxes = spatial._face_boxes({"clicks": [[0, 0.5, 0.5]]}, frames, np.array([0, 2]))
    assert source == "dlib" and [len(b) for b in boxes] == [2, 0]
    source, boxes = spatial._face_boxes({"face_box": np.tile([1, 2, 3, 4], (3, 1))}, frames,
                                        np.array([2]))
    assert source == "annotation" and np.array_equal(boxes[0], [[1, 2, 3, 4]])
