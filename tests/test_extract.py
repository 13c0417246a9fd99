import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from avdd.datasets import load_items
from avdd.features.extract import extract, extract_many
from avdd.features.store import FeatureSet

BACKBONES = ["logmel", "mouth-pixels"]


@pytest.mark.slow
def test_extract_resumes_without_recomputing(tiny_profile):
    first = extract(tiny_profile, BACKBONES, "favc", "train", limit=3, progress=False)
    assert [r.extracted for r in first] == [3, 3]
    again = extract(tiny_profile, BACKBONES, "favc", "train", progress=False)
    n = len(load_items(tiny_profile, "favc", "train"))
    assert [(r.already_done, r.extracted, r.failed) for r in again] == [(3, n - 3, 0)] * 2
    fs = FeatureSet.open(again[0].store)
    assert len(fs) == n and len(set(fs.ids)) == n
    # Features are 25 Hz: one feature frame per video frame (within rounding).
    item = {i.video_id: i for i in load_items(tiny_profile, "favc", "train")}[fs.ids[0]]
    assert abs(len(fs[0]) - len(item.annotation["mouth_centre"])) <= 1


# Backbones whose features changed with the thread count before every path ran on one thread
# (numpy matmul in logmel, torch kernels in the transformers): the determinism canaries.
DETERMINISM = ["logmel", "wav2vec2-tiny-random", "clip-tiny-random"]


def _same_features(a: Path, b: Path) -> None:
    fa, fb = FeatureSet.open(a), FeatureSet.open(b)
    assert sorted(fa.ids) == sorted(fb.ids)
    pos = {vid: i for i, vid in enumerate(fb.ids)}
    for i, vid in enumerate(fa.ids):
        np.testing.assert_array_equal(fa[i], fb[pos[vid]], err_msg=f"{a.name}: {vid}")


@pytest.mark.slow
def test_every_path_gives_bit_identical_features(tiny_profile, tmp_path):
    """Worker count, the device path and the caller's thread settings do not change a bit."""
    import torch

    runs = {"w1": dict(workers=1), "w2": dict(workers=2),
            "cpu": dict(device="cpu", workers=0), "cpu-w2": dict(device="cpu", workers=2)}
    stores = {}
    threads = torch.get_num_threads()
    for name, kwargs in runs.items():
        prof = replace(tiny_profile, cache_dir=tmp_path / name)
        torch.set_num_threads(2)  # the caller's pool must not leak into the features
        try:
            reports = extract_many(prof, DETERMINISM, [("avlips", "test")], progress=False,
                                   **kwargs)
        finally:
            torch.set_num_threads(threads)
        assert torch.get_num_threads() == threads  # and the caller's setting is given back
        stores[name] = {r.backbone: r.store for r in reports}
    for name in runs:
        for b in DETERMINISM:
            _same_features(stores["w1"][b], stores[name][b])


@pytest.mark.slow
def test_resuming_with_another_worker_count_equals_one_run(tiny_profile, tmp_path):
    whole = extract_many(replace(tiny_profile, cache_dir=tmp_path / "whole"), DETERMINISM,
                         [("avlips", "test")], workers=1, progress=False)
    part = replace(tiny_profile, cache_dir=tmp_path / "part")
    extract_many(part, DETERMINISM, [("avlips", "test")], workers=1, limit=3, progress=False)
    resumed = extract_many(part, DETERMINISM, [("avlips", "test")], workers=2, progress=False)
    assert [r.already_done for r in resumed] == [3] * len(DETERMINISM)
    for a, b in zip(whole, resumed):
        _same_features(a.store, b.store)


def test_a_store_never_mixes_batched_and_single_forward_passes(tiny_profile):
    import pytest

    extract_many(tiny_profile, ["wav2vec2-tiny-random"], [("avlips", "test")], limit=2,
                 progress=False)
    with pytest.raises(ValueError, match="batched"):
        extract_many(tiny_profile, ["wav2vec2-tiny-random"], [("avlips", "test")],
                     device="cpu", batch_size=4, progress=False)
    # A backbone that never batches computes the same either way: its store resumes.
    extract_many(tiny_profile, ["logmel"], [("avlips", "test")], limit=2, progress=False)
    r = extract_many(tiny_profile, ["logmel"], [("avlips", "test")], device="cpu",
                     batch_size=4, progress=False)
    assert r[0].already_done == 2


def test_bad_media_is_recorded_and_the_run_goes_on(tiny_profile, tmp_path):
    root = tmp_path / "favc"
    shutil.copytree(tiny_profile.data_roots["favc"], root)
    prof = replace(tiny_profile, data_roots={**tiny_profile.data_roots, "favc": root})
    items = load_items(prof, "favc", "test")
    broken, empty = items[0].path, items[1].path
    broken.write_bytes(broken.read_bytes()[:300])  # truncated
    empty.write_bytes(b"")  # zero bytes
    reports = extract(prof, BACKBONES, "favc", "test", progress=False)
    for r in reports:
        assert (r.failed, r.extracted) == (2, len(items) - 2)
        logged = [json.loads(line) for line in r.failures_log.read_text().splitlines()]
        assert {rec["path"] for rec in logged} == {str(broken), str(empty)}
        assert all(str(rec["path"]) in rec["error"] for rec in logged)
    # Nothing already computed is lost; a rerun retries only the failed files.
    again = extract(prof, BACKBONES, "favc", "test", progress=False)
    assert [(r.already_done, r.failed) for r in again] == [(len(items) - 2, 2)] * 2


@pytest.mark.slow
def test_sigkill_then_rerun_equals_an_uninterrupted_run(tiny_profile, tmp_path):
    """Kill the runner with SIGKILL mid-way; a rerun completes the store, identical to a run
    that was never interrupted (no video lost, duplicated or corrupted)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = (
        "import sys, dataclasses, pathlib\n"
        "from avdd.config import make_profile\n"
        "from avdd.features.extract import extract\n"
        "p = make_profile('demo', home=sys.argv[1], synth_scale=float(sys.argv[2]))\n"
        "p = dataclasses.replace(p, cache_dir=pathlib.Path(sys.argv[3]))\n"
        "extract(p, ['logmel', 'clip-tiny-random'], 'favc', 'train', progress=False)\n"
    )
    home = tiny_profile.data_roots["favc"].parents[2]
    cache = tmp_path / "killed"
    args = [sys.executable, "-c", script, str(home), str(tiny_profile.synth_scale), str(cache)]
    proc = subprocess.Popen(args)
    index = None
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        found = list(cache.glob("features/clip-tiny-random-*/favc/train/index-*.jsonl"))
        if found and len(found[0].read_text().splitlines()) >= 2:
            index = found[0]
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait()
    killed = proc.returncode == -signal.SIGKILL
    subprocess.run(args, check=True)  # the rerun resumes
    clean = replace(tiny_profile, cache_dir=tmp_path / "clean")
    ref = extract(clean, ["logmel", "clip-tiny-random"], "favc", "train", progress=False)
    n = len(load_items(tiny_profile, "favc", "train"))
    for r in ref:
        a = FeatureSet.open(r.store)
        b = FeatureSet.open(cache / r.store.relative_to(clean.cache_dir))
        assert len(b) == len(a) == n and len(set(b.ids)) == n
        order = {vid: i for i, vid in enumerate(b.ids)}
        for i, vid in enumerate(a.ids):
            np.testing.assert_array_equal(a[i], b[order[vid]])
            assert a.meta(i) == b.meta(order[vid])
    assert killed and index is not None, "the runner finished before it could be killed"


def test_odd_media_through_the_runner(tiny_profile, tmp_path):
    """Odd but valid files are featurised; unusable ones are recorded with a readable error
    naming the file, per backbone (a file without audio still serves a visual backbone)."""
    from avdd.media import write_clip

    rng = np.random.default_rng(0)
    root = tmp_path / "avlips"

    def video(t, size):
        return rng.integers(0, 255, (t, size, size, 3), dtype=np.uint8)

    def tone(seconds, sr, channels=1):
        x = 0.2 * np.sin(2 * np.pi * 300 * np.arange(int(seconds * sr)) / sr).astype(np.float32)
        return np.stack([x] * channels, axis=1) if channels > 1 else x

    files = {
        "0_real/fps30.mp4": dict(video=video(60, 64), audio=tone(2, 16000), fps=30),
        "0_real/stereo8k.mp4": dict(video=video(50, 64), audio=tone(2, 8000, 2), sample_rate=8000),
        "0_real/tiny.mp4": dict(video=video(50, 16), audio=tone(2, 16000)),
        "1_fake/no_audio.mp4": dict(video=video(50, 64), audio=None),
        "1_fake/no_video.mp4": dict(video=None, audio=tone(2, 16000)),
    }
    for rel, kw in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        write_clip(root / rel, kw.pop("video"), kw.pop("audio"), **kw)
    (root / "1_fake" / "not_a_video.mp4").write_text("this is not a video\n")
    (root / "splits").mkdir()
    rels = [*files, "1_fake/not_a_video.mp4"]
    (root / "splits" / "test_labels.csv").write_text(
        "path,label\n" + "".join(f"{r},{int(r.startswith('1_'))}\n" for r in rels))
    prof = replace(tiny_profile, data_roots={**tiny_profile.data_roots, "avlips": root})
    reports = {r.backbone: r for r in extract(prof, BACKBONES, "avlips", "test", progress=False)}

    def failed(name):
        recs = [json.loads(x) for x in reports[name].failures_log.read_text().splitlines()]
        for rec in recs:
            assert rec["path"] in rec["error"]
        return {Path(rec["path"]).name for rec in recs}

    assert failed("logmel") == {"no_audio.mp4", "not_a_video.mp4"}
    assert failed("mouth-pixels") == {"no_video.mp4", "not_a_video.mp4"}
    fs = FeatureSet.open(reports["logmel"].store)
    lengths = dict(zip(fs.ids, fs.lengths))
    assert abs(lengths["0_real/fps30.mp4"] - 50) <= 1  # 2 s at 30 fps -> 50 frames at 25 Hz
    assert abs(lengths["0_real/stereo8k.mp4"] - 50) <= 1
    vis = FeatureSet.open(reports["mouth-pixels"].store)
    assert abs(dict(zip(vis.ids, vis.lengths))["0_real/tiny.mp4"] - 50) <= 1


def test_spec_strings_key_their_own_stores(tiny_profile):
    specs = ["wav2vec2-tiny-random", "wav2vec2-tiny-random:seed=1"]
    reports = extract(tiny_profile, specs, "avlips", "test", progress=False)
    assert reports[0].store != reports[1].store and all(r.failed == 0 for r in reports)
    a, b = (FeatureSet.open(r.store) for r in reports)
    assert list(a.ids) == list(b.ids) and not np.array_equal(a[0], b[0])


@pytest.mark.slow
def test_lip_models_share_one_cached_mouth_roi(tiny_profile, tmp_path):
    from avdd.backbones import get_backbone
    from avdd.media import read_clip
    from avdd.roi.regions import Roi

    prof = replace(tiny_profile, cache_dir=tmp_path)
    names = ["avhubert-v-tiny-random", "avhubert-av-tiny-random", "avhubert-a-tiny-random"]
    reports = extract(prof, names, "avlips", "test", progress=False, workers=2)
    assert all(r.failed == 0 and r.extracted == r.total for r in reports)
    cached = list((tmp_path / "roi").rglob("*.npz"))
    assert len(cached) == reports[0].total  # one ROI per video, shared by the lip models
    stamp = {p: p.stat().st_mtime_ns for p in cached}
    extract(prof, ["avhubert-v-tiny-random:seed=1"], "avlips", "test", progress=False)
    assert {p: p.stat().st_mtime_ns for p in cached} == stamp  # reused, not recomputed
    # The cached path gives the features the backbone computes on its own.
    item = load_items(prof, "avlips", "test")[0]
    own = get_backbone(names[0])(read_clip(item.path), Roi.from_annotation(item.annotation))
    fs = FeatureSet.open(reports[0].store)
    stored = fs[list(fs.ids).index(item.video_id)].astype(np.float32)
    np.testing.assert_allclose(stored, own, rtol=1e-2, atol=1e-2)


def test_a_full_disk_stops_avdd_extract_with_one_line(tiny_profile, tmp_path, monkeypatch,
                                                       capsys):
    """The runner ends on the first append that finds no space, with one clear line and no
    traceback; what was stored before stays (the next run resumes)."""
    import errno

    from avdd.cli import main
    from avdd.features import store as store_mod

    real, calls = store_mod._write_all, []

    def fills_up(f, data):
        calls.append(1)
        if len(calls) > 4:  # two videos fit (frames + index line each)
            raise OSError(errno.ENOSPC, "No space left on device")
        real(f, data)

    monkeypatch.setattr(store_mod, "_write_all", fills_up)
    home = tiny_profile.data_roots["favc"].parents[2]
    args = ["extract", "--home", str(home), "--synth-scale", str(tiny_profile.synth_scale),
            "--dataset", "favc", "--split", "test", "--backbone", "logmel", "--workers", "1"]
    monkeypatch.setenv("AVDD_HOME", str(tmp_path))  # keep the shared cache untouched
    from avdd.config import make_profile

    prof = make_profile("demo", home=home, synth_scale=tiny_profile.synth_scale)
    monkeypatch.setattr("avdd.config.demo_profile",
                        lambda *a, **k: replace(prof, cache_dir=tmp_path / "cache"))
    assert main(args) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("avdd: error:")]
    assert len(errors) == 1 and "no space left to store" in errors[0]
    assert "Traceback" not in err
    monkeypatch.setattr(store_mod, "_write_all", real)
    stores = list((tmp_path / "cache" / "features").glob("logmel-*/favc/test"))
    assert len(stores) == 1 and len(FeatureSet.open(stores[0])) == 2


def _clip_at(path: Path, fps: int, frames: int, audio_s: float | None = None) -> None:
    from avdd.media import write_clip

    rng = np.random.default_rng(fps)
    n = int((frames / fps if audio_s is None else audio_s) * 16000)
    tone = 0.2 * np.sin(2 * np.pi * 300 * np.arange(n) / 16000) + 0.01 * rng.standard_normal(n)
    write_clip(path, rng.integers(0, 255, (frames, 64, 64, 3), dtype=np.uint8),
               tone.astype(np.float32), fps=fps)


def _one_clip_set(tiny_profile, tmp_path, clips: dict[str, tuple]):
    root = tmp_path / "avlips"
    (root / "0_real").mkdir(parents=True)
    (root / "splits").mkdir()
    for name, args in clips.items():
        _clip_at(root / "0_real" / name, *args)
    (root / "splits" / "test_labels.csv").write_text(
        "path,label\n" + "".join(f"0_real/{name},0\n" for name in clips))
    return replace(tiny_profile, data_roots={**tiny_profile.data_roots, "avlips": root})


def test_an_audio_backbone_gives_the_same_features_whatever_else_is_extracted(tiny_profile,
                                                                              tmp_path):
    """A job that also decodes video must not change an audio backbone's input: Wav2Vec2
    extracted alone and with a visual backbone are bit-identical, on a clip whose audio
    outlasts its video by 0.5 s (it used to be cut to the video when both were decoded)."""
    prof = _one_clip_set(tiny_profile, tmp_path, {"long_audio.mp4": (25, 50, 2.5)})
    alone = extract(replace(prof, cache_dir=tmp_path / "alone"), ["wav2vec2-tiny-random"],
                    "avlips", "test", progress=False)
    mixed = extract(replace(prof, cache_dir=tmp_path / "mixed"),
                    ["wav2vec2-tiny-random", "clip-tiny-random"], "avlips", "test",
                    progress=False)
    assert alone[0].failed == mixed[0].failed == 0
    _same_features(alone[0].store, mixed[0].store)
    assert FeatureSet.open(alone[0].store).lengths[0] == 62  # 2.5 s: 124 frames at 50 Hz, paired


@pytest.mark.slow
def test_native_frame_rate_is_kept_and_recorded(tiny_profile, tmp_path):
    """Profile.video_fps=None (the paper profile) decodes every native frame, as the paper's
    extractors did: a 2 s clip at 30 fps gives 60 CLIP rows (50 at 25 fps), 30 VideoMAE rows
    (two 16-frame windows would be 16: the tiny model's 4-frame windows give 30), and the
    video's feature rate in its meta; 25 fps sources are unchanged."""
    base = _one_clip_set(tiny_profile, tmp_path, {"a30.mp4": (30, 60), "b25.mp4": (25, 50)})
    names = ["clip-tiny-random", "videomae-tiny-random", "wav2vec2-tiny-random"]
    out = {}
    for rate in (25.0, None):
        prof = replace(base, cache_dir=tmp_path / f"cache-{rate}", video_fps=rate)
        reports = {r.backbone: r for r in extract(prof, names, "avlips", "test",
                                                  progress=False)}
        assert all(r.failed == 0 for r in reports.values())
        out[rate] = {n: FeatureSet.open(r.store) for n, r in reports.items()}
    resampled, native = out[25.0], out[None]
    for fs in native.values():  # native stores are keyed apart from the 25 fps ones
        assert fs.info["config"]["video_fps"] == "native"

    def rows(fs, vid):
        return dict(zip(fs.ids, fs.lengths))[vid], fs.meta(list(fs.ids).index(vid))

    assert rows(resampled["clip-tiny-random"], "0_real/a30.mp4")[0] == 50
    n, meta = rows(native["clip-tiny-random"], "0_real/a30.mp4")
    assert n == 60 and meta["fps"] == 30.0
    n, meta = rows(native["videomae-tiny-random"], "0_real/a30.mp4")
    assert n == 30 and meta["fps"] == 15.0
    # Audio is not resampled by the video rate; a 25 fps source reads as before.
    n, meta = rows(native["wav2vec2-tiny-random"], "0_real/a30.mp4")
    assert "fps" not in meta
    np.testing.assert_array_equal(native["wav2vec2-tiny-random"][0], resampled["wav2vec2-tiny-random"][0])
    n, meta = rows(native["clip-tiny-random"], "0_real/b25.mp4")
    assert n == 50 and "fps" not in meta
    i, j = (list(fs.ids).index("0_real/b25.mp4") for fs in (native["clip-tiny-random"],
                                                            resampled["clip-tiny-random"]))
    np.testing.assert_array_equal(native["clip-tiny-random"][i], resampled["clip-tiny-random"][j])


@pytest.mark.slow
def test_frame_wise_backbones_read_long_clips_in_windows_with_the_same_features(
        tiny_profile, tmp_path, monkeypatch):
    """Issue 14.5: the runner decoded each clip whole at its own size. CLIP and VideoMAE now
    get a long clip in windows, resized as decoded (64 → 56 / 32 px), with every stored bit
    equal to the whole-clip path (the device path still decodes whole clips)."""
    from avdd.backbones.clip import CLIPFrames
    from avdd.backbones.videomae import VideoMAE

    prof = _one_clip_set(tiny_profile, tmp_path, {"long.mp4": (25, 603)})
    names = ["clip-tiny-random", "videomae-tiny-random:trailing=pad"]
    seen: list[tuple[str, tuple]] = []
    for family in (CLIPFrames, VideoMAE):
        call = family.__call__
        monkeypatch.setattr(family, "__call__", lambda self, clip, roi=None, call=call:
                            seen.append((self.name, clip.video.shape)) or call(self, clip, roi))
    windowed = extract(replace(prof, cache_dir=tmp_path / "w"), names, "avlips", "test",
                       progress=False)
    pieces = {n: [s for who, s in seen if who == n] for n in ("clip-tiny-random",
                                                              "videomae-tiny-random")}
    assert [s[0] for s in pieces["clip-tiny-random"]] == [256, 256, 91]
    assert {s[1:3] for s in pieces["clip-tiny-random"]} == {(56, 56)}
    assert [s[0] for s in pieces["videomae-tiny-random"]] == [256, 256, 91]
    assert {s[1:3] for s in pieces["videomae-tiny-random"]} == {(32, 32)}
    seen.clear()
    whole = extract(replace(prof, cache_dir=tmp_path / "d"), names, "avlips", "test",
                    progress=False, device="cpu", workers=0)
    assert sorted(s[0] for _, s in seen) == [603, 603] and {s[1] for _, s in seen} == {64}
    for a, b in zip(windowed, whole, strict=True):
        assert a.failed == b.failed == 0
        _same_features(a.store, b.store)
