"""``avdd score`` (probe on any video), the temporal plot, and importing the official probes."""

import json
import sys
import types

import numpy as np
import pandas as pd
import pytest
import torch

from avdd.backbones import get_backbone
from avdd.cli import main
from avdd.datasets import load_items
from avdd.features.featureset import FeatureSet
from avdd.heads.probe import LinearProbe
from avdd.heads.probe_io import import_official_probe, load_probe, save_probe
from avdd.media import read_clip, stream_video, write_clip
from avdd.report.plots import plot_timeline
from avdd.score import fake_ranges


@pytest.fixture
def logmel_probe(tiny_profile, tmp_path):
    """A logmel probe fitted on the tiny AV1M train split, and a test fake to score."""
    bb = get_backbone("logmel")
    items = load_items(tiny_profile, "av1m", "train")
    feats = [bb(read_clip(i.path, video=False)) for i in items]
    fs = FeatureSet.from_arrays(feats, [i.label for i in items], fps=bb.fps)
    probe = LinearProbe(max_epochs=5).fit(fs)
    path = save_probe(probe, tmp_path / "logmel.safetensors", backbone="logmel")
    fake = next(i for i in load_items(tiny_profile, "av1m", "test") if i.label == 1)
    return path, probe, fake


def test_score_writes_json_and_plot(logmel_probe, tmp_path, capsys):
    path, probe, fake = logmel_probe
    out, png = tmp_path / "out.json", tmp_path / "plot.png"
    assert main(["score", str(fake.path), "--probe", str(path), "--json", str(out),
                 "--plot", str(png), "--threshold", "0.4"]) == 0
    doc = json.loads(out.read_text())
    assert doc["backbone"] == "logmel" and doc["fps"] == 25.0
    (v,) = doc["videos"]
    feats = get_backbone("logmel")(read_clip(fake.path, video=False))
    fs = FeatureSet.from_arrays([feats], fps=25.0)
    s = float(probe.decision_function(fs)[0])
    assert v["score"] == pytest.approx(s, abs=1e-5)
    assert v["probability"] == pytest.approx(1 / (1 + np.exp(-2 * s)), abs=1e-6)
    assert v["fake"] == (s > 0) and v["error"] is None and v["threshold"] == 0.4
    z = probe.frame_logits(fs)[0]
    assert len(v["frame_scores"]) == len(z)
    assert v["ranges"] == [[round(a, 3), round(b, 3)] for a, b in fake_ranges(z, 25.0, 0.4)]
    assert png.stat().st_size > 10_000
    assert "P(fake)" in capsys.readouterr().out


def test_score_many_records_failures_and_continues(logmel_probe, tmp_path, capsys):
    path, _, fake = logmel_probe
    silent = write_clip(tmp_path / "video_only.mp4", np.zeros((10, 32, 32, 3), np.uint8), None)
    (tmp_path / "junk.mp4").write_bytes(b"not a video at all" * 10)
    videos = [tmp_path / "missing.mp4", silent, tmp_path / "junk.mp4", fake.path]
    out = tmp_path / "out.csv"
    assert main(["score", *map(str, videos), "--probe", str(path), "--csv", str(out)]) == 1
    df = pd.read_csv(out)
    assert len(df) == 4 and df["error"].notna().tolist() == [True, True, True, False]
    assert "no such file" in df["error"][0]
    assert "audio model" in df["error"][1] and "no audio stream" in df["error"][1]
    assert np.isfinite(df["score"][3])
    assert "3 of 4 video(s) could not be scored" in capsys.readouterr().err


def test_score_bad_probe_and_missing_weights(tmp_path, capsys):
    assert main(["score", "x.mp4", "--probe", str(tmp_path / "none.safetensors")]) == 2
    err = capsys.readouterr().err
    assert "none.safetensors not found" in err and "import-probe" in err
    probe = LinearProbe()
    probe.coef_, probe.intercept_, probe.best_epoch_, probe.history_ = \
        np.ones(3840, np.float32), 0.0, 0, []
    probe.n_features_in_, probe.classes_ = 3840, np.array([0, 1])
    p = save_probe(probe, tmp_path / "w2v.safetensors",
                   backbone=f"wav2vec2:model={tmp_path / 'no-weights'}")
    assert main(["score", "x.mp4", "--probe", str(p)]) == 2
    assert "pretrained weights" in capsys.readouterr().err
    assert main(["score", "x.mp4", "--probe", str(p), "--threshold", "1.5"]) == 2


def test_fake_ranges_and_plot_with_frames():
    z = np.array([-1, 0.3, 0.4, -1, -1, 2, 2])  # σ(2z) > 0.5 ⇔ z > 0
    assert fake_ranges(z, 12.5) == [(1 / 12.5, 3 / 12.5), (5 / 12.5, 7 / 12.5)]
    assert fake_ranges(z, 25.0, threshold=0.9) == [(5 / 25, 7 / 25)]  # logit(0.9)/2 = 1.10
    t = np.arange(len(z)) / 12.5
    img = np.zeros((16, 16, 3), np.uint8)
    fig = plot_timeline(t, z, segments=fake_ranges(z, 12.5),
                        frames=[(0.0, img), (0.4, img), (0.5, img)], title="visual")
    assert len(fig.axes) == 5  # score, probability, three frames
    with pytest.raises(ValueError, match="must both be"):
        plot_timeline(t, z[:3])


# --- official release import --------------------------------------------------------------

def _stub(module, name, base=object):
    """A fresh class that pickles as ``module.name`` (e.g. Lightning's AttributeDict)."""
    return type(name, (base,), {"__module__": module, "__qualname__": name})


def _save_as(obj, path, monkeypatch, *classes):
    # torch.save pickles classes by module path and name: expose the stubs there (parent
    # packages included) only while saving, so that loading cannot import anything.
    with monkeypatch.context() as m:
        for cls in classes:
            parts = cls.__module__.split(".")
            for i in range(1, len(parts) + 1):
                name = ".".join(parts[:i])
                if name not in sys.modules or i == len(parts):
                    m.setitem(sys.modules, name, types.ModuleType(name))
            setattr(sys.modules[cls.__module__], cls.__name__, cls)
        torch.save(obj, path)


def _lightning_ckpt(d=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    head = torch.nn.Linear(d, 1)
    with torch.no_grad():
        head.weight.copy_(torch.randn(1, d, generator=g))
        head.bias.fill_(-0.3)
    attr_dict = _stub("lightning.fabric.utilities.data", "AttributeDict", dict)
    hp = attr_dict(config={"model_hparams": {"input_type": "audio", "feats_dim": d}})
    return head, {"state_dict": {"head.weight": head.weight.detach().clone(),
                                 "head.bias": head.bias.detach().clone()},
                  "epoch": 17, "global_step": 1234, "pytorch-lightning_version": "2.6.1",
                  "hyper_parameters": hp, "hparams_name": "kwargs",
                  "optimizer_states": [{"state": {}, "param_groups": [{"lr": 1e-3}]}]}


def test_import_official_probe_matches_the_official_forward(tmp_path, monkeypatch, capsys):
    head, ckpt = _lightning_ckpt()
    path = tmp_path / "model-epoch=17.ckpt"
    _save_as(ckpt, path, monkeypatch, type(ckpt["hyper_parameters"]))
    out = tmp_path / "imported.safetensors"
    assert main(["import-probe", str(path), str(out), "--backbone", "logmel"]) == 0
    assert "D=6" in capsys.readouterr().out
    probe, meta = load_probe(out)
    assert meta["backbone"] == "logmel" and meta["source"] == str(path.resolve())
    assert "official release" in meta["release"] and meta["input_type"] == "audio"
    assert probe.best_epoch_ == 17
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((int(rng.integers(3, 30)), 6)) for _ in range(5)]
    fs = FeatureSet.from_arrays(arrays)
    # The official LinearModel.forward: logsumexp over time of head(x / ||x||).
    ref = []
    for i in range(len(fs)):
        x = torch.from_numpy(fs[i].astype(np.float32))
        x = x / torch.linalg.vector_norm(x, dim=-1, keepdim=True)
        ref.append(torch.logsumexp(head(x)[:, 0], dim=0).item())
    np.testing.assert_allclose(probe.decision_function(fs), ref, rtol=1e-5, atol=1e-5)
    p_fake = torch.softmax(torch.tensor([[-s, s] for s in ref]), dim=1)[:, 1].numpy()
    np.testing.assert_allclose(probe.predict_proba(fs)[:, 1], p_fake, rtol=1e-5, atol=1e-6)


def test_import_refuses_unknown_pickled_objects_and_bad_heads(tmp_path, monkeypatch):
    _, ckpt = _lightning_ckpt()
    payload = _stub("evil_module", "Payload")
    ckpt["callbacks"] = {"evil": payload()}
    bad = tmp_path / "evil.ckpt"
    _save_as(ckpt, bad, monkeypatch, payload, type(ckpt["hyper_parameters"]))
    with pytest.raises(ValueError, match=r"evil\.ckpt: refusing to unpickle evil_module\.Payload"):
        import_official_probe(bad, tmp_path / "x.safetensors", "logmel")
    assert not (tmp_path / "x.safetensors").exists()
    wrong = tmp_path / "wrong.ckpt"
    torch.save({"state_dict": {"head.weight": torch.zeros(2, 6), "head.bias": torch.zeros(2)}},
               wrong)
    with pytest.raises(ValueError, match=r"expected \(1, D\) and \(1,\)"):
        import_official_probe(wrong, tmp_path / "x.safetensors", "logmel")
    torch.save({"weights": torch.zeros(3)}, wrong)
    with pytest.raises(ValueError, match="no 'state_dict'"):
        import_official_probe(wrong, tmp_path / "x.safetensors", "logmel")
    with pytest.raises(FileNotFoundError, match="ssr-dfd"):
        import_official_probe(tmp_path / "none.ckpt", tmp_path / "x.safetensors", "logmel")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_probe_with_non_finite_weights_is_refused_on_load(tmp_path, capsys, bad):
    """Issue 14.8: a NaN probe scored `nan`, exit 0, `fake: false`; now it is refused, in one
    line naming the file, before any video is decoded."""
    probe = LinearProbe()
    w = np.ones(160, np.float32)
    w[7] = bad
    probe.coef_, probe.intercept_, probe.best_epoch_, probe.history_ = w, 0.0, 0, []
    probe.n_features_in_, probe.classes_ = 160, np.array([0, 1])
    p = save_probe(probe, tmp_path / "nan.safetensors", backbone="logmel")
    with pytest.raises(ValueError, match="nan.safetensors.*non-finite"):
        load_probe(p)
    assert main(["score", str(tmp_path / "any.mp4"), "--probe", str(p)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "non-finite" in err[0] and "Traceback" not in err[0]


def test_a_picture_renamed_mp4_and_a_clip_shorter_than_the_context_are_refused(tmp_path, capsys):
    """Issue 14.7: a PNG renamed .mp4 was scored as a one-frame video; now it is refused, and
    a clip shorter than VideoMAE's window (4 frames in the tiny config) gets a clear error
    instead of a score of padding. Both in one line each, and the batch goes on."""
    from PIL import Image

    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "photo.png")
    (tmp_path / "photo.mp4").write_bytes((tmp_path / "photo.png").read_bytes())
    short = write_clip(tmp_path / "short.mp4", np.zeros((3, 32, 32, 3), np.uint8), None)
    ok = write_clip(tmp_path / "ok.mp4", np.full((12, 32, 32, 3), 90, np.uint8), None)
    bb = get_backbone("videomae-tiny-random")
    probe = LinearProbe(max_epochs=2).fit(FeatureSet.from_arrays(
        [np.random.default_rng(i).standard_normal((4, bb.dim)) for i in range(6)], [0, 1] * 3))
    p = save_probe(probe, tmp_path / "vmae.safetensors", backbone="videomae-tiny-random")
    out = tmp_path / "out.csv"
    assert main(["score", str(tmp_path / "photo.mp4"), str(short), str(ok), "--probe", str(p),
                 "--csv", str(out)]) == 1
    df = pd.read_csv(out)
    assert "still image" in df["error"][0] and "png_pipe" in df["error"][0]
    assert "3 video frame(s)" in df["error"][1] and "at least 4" in df["error"][1]
    assert pd.isna(df["error"][2]) and np.isfinite(df["score"][2])
    assert "Traceback" not in capsys.readouterr().err


def test_messages_say_what_is_wrong_with_the_file(tmp_path, capsys):
    """Issue 14.13: a zero-byte file was 'a audio model, needs an audio stream'; a FIFO and
    /dev/zero were 'empty (0 bytes)'. Each now says what it is, in one line."""
    import os

    probe = LinearProbe(max_epochs=1).fit(FeatureSet.from_arrays(
        [np.random.default_rng(i).standard_normal((5, 160)) for i in range(4)], [0, 1, 0, 1]))
    p = save_probe(probe, tmp_path / "p.safetensors", backbone="logmel")
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "folder.mp4").mkdir()
    os.mkfifo(tmp_path / "fifo.mp4")
    silent = write_clip(tmp_path / "silent.mp4", np.zeros((10, 32, 32, 3), np.uint8), None)
    videos = [tmp_path / "empty.mp4", tmp_path / "fifo.mp4", tmp_path / "folder.mp4", silent]
    out = tmp_path / "out.csv"
    assert main(["score", *map(str, videos), "/dev/zero", "--probe", str(p),
                 "--csv", str(out)]) == 1
    err = pd.read_csv(out)["error"].tolist()
    assert "empty (0 bytes)" in err[0] and "model" not in err[0]
    assert "not a regular file" in err[1] and "not a regular file" in err[4]
    assert "is a directory" in err[2]
    assert "an audio model, needs an audio stream" in err[3]
    assert "Traceback" not in capsys.readouterr().err


def test_lip_models_without_a_landmark_detector_fail_once_before_decoding(tmp_path, capsys,
                                                                         monkeypatch):
    """Issue 14.6: with neither dlib nor mediapipe, `avdd score` with a lip model ended in an
    ImportError traceback at the first video and wrote nothing. Now: one line, before any
    video is decoded, naming the extra to install."""
    import avdd.media
    from avdd.roi import landmarks

    bb = get_backbone("avhubert-v-tiny-random")
    probe = LinearProbe(max_epochs=1).fit(FeatureSet.from_arrays(
        [np.random.default_rng(i).standard_normal((5, bb.dim)) for i in range(4)], [0, 1, 0, 1]))
    p = save_probe(probe, tmp_path / "lip.safetensors", backbone="avhubert-v-tiny-random")
    monkeypatch.setattr(landmarks, "_importable", lambda name: False)
    decoded = []
    monkeypatch.setattr(avdd.media, "read_clip", lambda *a, **k: decoded.append(a))
    assert main(["score", "a.mp4", "b.mp4", "--probe", str(p)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install" in err[0] and "dlib" in err[0], err
    assert decoded == []


def _moving_pattern(n: int, h: int, w: int) -> np.ndarray:
    """Frames that differ from each other (a drifting two-tone gradient)."""
    t = np.arange(n)[:, None, None]
    y, x = np.arange(h)[None, :, None], np.arange(w)[None, None, :]
    red = ((x * 3 + y + 5 * t) % 256).astype(np.uint8)
    green = ((y * 2 + x * 0 + 3 * t) % 256).astype(np.uint8)
    return np.stack([red, green, np.full_like(red, 128)], axis=-1)


@pytest.mark.parametrize("spec", ["clip-tiny-random", "videomae-tiny-random",
                                  "videomae-tiny-random:trailing=pad"])
@pytest.mark.slow
def test_a_long_clip_is_scored_in_small_windows_with_the_whole_clips_features(
        tmp_path, monkeypatch, spec):
    """Issue 14.5: `avdd score` decoded the whole clip at its own size (2.6 GB for 60 s of
    640 × 360). Frame-wise models now read it in windows of a few hundred frames, resized as
    decoded to what their preprocessing makes of a frame, and the features are those of the
    whole clip at full size, bit for bit."""
    from avdd.features.threads import one_thread
    from avdd.score import load_scorer, reads_windows, score_video

    path = write_clip(tmp_path / "long.mp4", _moving_pattern(603, 120, 160), None)
    bb = get_backbone(spec)
    whole = read_clip(path, audio=False)
    with one_thread():
        feats = bb(whole)
        pieces = [bb(piece) for piece in stream_video(
            path, window=bb.stream_window(25.0), resize=bb.frame_resize, min_last=bb.min_frames)]
    assert np.array_equal(np.concatenate(pieces), feats)  # fp32, before any fp16 store
    probe = LinearProbe(max_epochs=2).fit(FeatureSet.from_arrays(
        [np.random.default_rng(i).standard_normal((8, bb.dim)) for i in range(4)], [0, 1] * 2))
    scorer = load_scorer(save_probe(probe, tmp_path / "p.safetensors", backbone=spec))
    assert reads_windows(scorer.backbone)
    seen = []
    call = type(scorer.backbone).__call__
    monkeypatch.setattr(type(scorer.backbone), "__call__",
                        lambda self, clip, roi=None: seen.append(clip.video.shape)
                        or call(self, clip, roi))
    result, clip = score_video(path, scorer)
    assert clip is None and len(seen) == 3 and sum(s[0] for s in seen) == 603
    assert max(s[0] for s in seen) <= scorer.backbone.stream_window(25.0) + 4
    assert {min(s[1:3]) for s in seen} == {bb.image_size}  # decoded at 32 / 56, not 120
    fs = FeatureSet.from_arrays([feats], fps=bb.fps)
    assert result.score == float(probe.decision_function(fs)[0])
    assert np.array_equal(result.frame_scores, np.asarray(probe.frame_logits(fs)[0], np.float64))


def test_out_of_memory_is_one_line_naming_memory_not_the_file(tmp_path, capsys, monkeypatch):
    """Issue 14.5: under a memory limit the failure read "truncated or corrupt: download or
    copy it again". Now the batch goes on, the message says memory and how much, and no
    traceback is printed; a MemoryError outside decoding is one line too."""
    import avdd.media as media

    path = write_clip(tmp_path / "a.mp4", np.zeros((30, 32, 32, 3), np.uint8), _sine_tone())
    probe = LinearProbe(max_epochs=1).fit(FeatureSet.from_arrays(
        [np.random.default_rng(i).standard_normal((5, 160)) for i in range(4)], [0, 1, 0, 1]))
    p = save_probe(probe, tmp_path / "p.safetensors", backbone="logmel")

    def no_memory(*args, **kwargs):
        return np.empty(2**62, np.uint8)  # numpy's own _ArrayMemoryError

    monkeypatch.setattr(media, "_audio", no_memory)
    out = tmp_path / "out.csv"
    assert main(["score", str(path), "--probe", str(p), "--csv", str(out)]) == 1
    (error,) = pd.read_csv(out)["error"].tolist()
    assert error.startswith("OutOfMemory: ") and "out of memory while decoding" in error
    assert "corrupt" not in error and "not at fault" in error
    err = capsys.readouterr().err
    assert "Traceback" not in err and "out of memory" in err

    monkeypatch.setattr("avdd.score.load_scorer", no_memory)
    assert main(["score", str(path), "--probe", str(p)]) == 3
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("avdd: error: out of memory")


def _sine_tone(seconds: float = 1.2) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * 16000)) / 16000)
            ).astype(np.float32)


def test_the_plot_of_a_clip_read_in_windows_shows_the_frames_of_the_whole_clip(tmp_path,
                                                                               monkeypatch):
    """A windowed score keeps no clip: --plot decodes the three frames it shows again (at
    full size), the same frames a whole clip would give, clamped at both ends alike."""
    import avdd.report.plots as plots
    from avdd.score import VideoScore, load_scorer, plot_result

    path = write_clip(tmp_path / "a.mp4", _moving_pattern(40, 64, 96), None)
    bb = get_backbone("clip-tiny-random")
    probe = LinearProbe(max_epochs=1).fit(FeatureSet.from_arrays(
        [np.random.default_rng(i).standard_normal((8, bb.dim)) for i in range(4)], [0, 1] * 2))
    scorer = load_scorer(save_probe(probe, tmp_path / "p.safetensors", backbone=bb.name))
    shown = []
    monkeypatch.setattr(plots, "plot_timeline", lambda *a, frames=None, **k: shown.append(frames))
    whole = read_clip(path, audio=False)
    for peak in (0.1, 0.8, 1.55):  # near the start, inside, near the end (1.6 s)
        r = VideoScore(path=str(path), score=0.0, probability=0.5, times=np.arange(40) / 25,
                       frame_scores=np.zeros(40), fps=25.0, peak_time=peak)
        plot_result(r, None, scorer)
        plot_result(r, whole, scorer)
        again, ref = shown[-2], shown[-1]
        assert [t for t, _ in again] == [t for t, _ in ref]
        assert all(np.array_equal(a, b) and a.shape == (64, 96, 3)
                   for (_, a), (_, b) in zip(again, ref, strict=True))
