"""Feature health (issue 13): the measures on arrays with known answers, the flag's
thresholds, and the lip models' random init that no longer collapses every frame."""

from __future__ import annotations

import math

import numpy as np
import pytest

from avdd.features.featureset import FeatureSet
from avdd.features.health import (
    HealthThresholds,
    feature_health,
    frame_health,
    sample_frames,
)


def constant_direction(n: int = 300, d: int = 32, seed: int = 0) -> np.ndarray:
    """Frames that differ in length only: the collapsed stores' geometry."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0.5, 2.0, (n, 1)) * rng.normal(size=(1, d))


def test_a_constant_direction_is_flagged():
    h = frame_health(constant_direction())
    assert h.mean_cosine == pytest.approx(1.0, abs=1e-12)
    assert h.spread == pytest.approx(0.0, abs=1e-12)
    assert h.effective_rank == 0.0  # centred, nothing is left
    assert h.degenerate and "mean cosine" in h.reason and "effective rank" in h.reason


def test_gaussian_frames_are_healthy():
    x = np.random.default_rng(1).normal(size=(2000, 32))
    h = frame_health(x, np.stack([x[:-1], x[1:]], axis=1))
    # Isotropic unit vectors: cosine to a (noise) mean direction ~0, spread ~1, rank near D.
    assert abs(h.mean_cosine) < 0.1 and h.spread == pytest.approx(1.0, abs=0.01)
    assert 25 < h.effective_rank <= 32
    assert h.identical_fraction == 0.0
    assert not h.degenerate and h.reason == ""


def test_effective_rank_counts_directions():
    rng = np.random.default_rng(2)
    basis = np.linalg.qr(rng.normal(size=(16, 16)))[0][:3]  # 3 orthonormal directions
    # Frames = a big common offset + equal, independent variation along 3 directions.
    coef = rng.choice([-1.0, 1.0], size=(4000, 3))
    x = 10 * np.eye(16)[0] + coef @ basis
    assert frame_health(x).effective_rank == pytest.approx(3.0, abs=0.1)


def tilted(cosine: float, directions: int) -> np.ndarray:
    """Unit frames at a fixed angle from one axis, tilted by ±1 along ``directions`` other
    axes in every combination: the mean cosine is ``cosine`` exactly, the effective rank
    ``directions``."""
    signs = np.array(np.meshgrid(*[[-1.0, 1.0]] * directions)).reshape(directions, -1).T
    signs = np.repeat(signs, 50, axis=0)
    tilt = np.zeros((len(signs), 8))
    tilt[:, 1:1 + directions] = signs / math.sqrt(directions)
    return cosine * np.eye(8)[0] + math.sqrt(1 - cosine ** 2) * tilt


def test_the_thresholds_decide_the_flag():
    collapsed = frame_health(tilted(0.99995, 2))  # just above 0.9999
    assert collapsed.mean_cosine == pytest.approx(0.99995, abs=1e-9)
    assert collapsed.effective_rank == pytest.approx(2.0, abs=1e-6)
    assert collapsed.degenerate and collapsed.reason.startswith("mean cosine")
    assert not frame_health(tilted(0.9998, 2)).degenerate  # just below
    line = frame_health(tilted(0.9, 1))  # far from one direction, but along one line
    assert line.effective_rank == pytest.approx(1.0, abs=1e-6)
    assert line.degenerate and line.reason.startswith("effective rank")
    lax = HealthThresholds(max_mean_cosine=0.99999, min_effective_rank=0.5)
    assert not frame_health(tilted(0.99995, 2), thresholds=lax).degenerate
    assert not frame_health(tilted(0.9, 1), thresholds=lax).degenerate


def test_near_identical_pairs_are_counted():
    x = np.random.default_rng(3).normal(size=(10, 8))
    pairs = np.stack([x, x * 3.0], axis=1)  # same direction: identical to the probe
    pairs[:4, 1] = -pairs[:4, 1]
    assert frame_health(x, pairs).identical_fraction == pytest.approx(0.6)
    assert np.isnan(frame_health(x).identical_fraction)


def test_sampling_is_bounded_deterministic_and_pairs_stay_in_a_video():
    rng = np.random.default_rng(4)
    videos = [rng.normal(size=(t, 4)).astype(np.float32) for t in (1, 50, 7, 300)]
    fs = FeatureSet.from_arrays(videos)
    frames, pairs = sample_frames(fs, max_frames=40)
    assert len(frames) == 40 and np.array_equal(frames, sample_frames(fs, max_frames=40)[0])
    flat = np.concatenate([np.asarray(fs[i], np.float32) for i in range(len(fs))])
    rows = {r.tobytes(): i for i, r in enumerate(flat)}
    # Every pair is (frame t, frame t + 1) of one video: consecutive rows of one video.
    ends = np.cumsum([len(v) for v in videos])
    for a, b in pairs:
        i, j = rows[a.tobytes()], rows[b.tobytes()]
        assert j == i + 1 and not np.isin(j, ends)
    all_frames, _ = sample_frames(fs, max_frames=10_000)
    assert np.array_equal(all_frames, flat)


def test_a_store_of_one_direction_is_flagged_through_its_feature_set():
    fs = FeatureSet.from_arrays([constant_direction(n, seed=0) for n in (20, 35)])
    assert feature_health(fs).degenerate
    assert not feature_health(FeatureSet.from_arrays(
        [np.random.default_rng(5).normal(size=(40, 32))])).degenerate
    with pytest.raises(ValueError, match="N >= 1"):
        frame_health(np.zeros((0, 4)))


def moving_mouth(t: int = 24, seed: int = 0) -> np.ndarray:
    """``(T, 88, 88)`` float32, normalised as the lip inputs are ((v − 0.421) / 0.165): a dark
    ellipse (a mouth) that opens and closes over a textured background."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:88, :88] / 88.0
    background = 0.5 + 0.1 * rng.standard_normal((88, 88))
    out = []
    for i in range(t):
        opening = 0.05 + 0.15 * (1 + math.sin(2 * math.pi * i / 8)) / 2
        mouth = ((xx - 0.5) / 0.25) ** 2 + ((yy - 0.6) / opening) ** 2 < 1
        out.append(np.where(mouth, 0.15, background))
    return ((np.stack(out) - 0.421) / 0.165).astype(np.float32)


@pytest.mark.parametrize("spec", ["braven-v-tiny-random", "autoavsr-vsr-tiny-random"])
def test_tiny_lip_models_do_not_collapse(spec):
    from avdd.backbones import get_backbone

    bb = get_backbone(spec)
    frames = np.concatenate([bb.encode(moving_mouth(seed=s)) for s in range(3)])
    h = frame_health(frames)
    # PyTorch's default init gave 1 − cos = 4e-7 (BRAVEn) and 1e-4 (Auto-AVSR) here; now
    # 0.06 and 0.009.
    assert not h.degenerate, h
    assert h.mean_cosine < 0.999


# --- every store of a profile, Table 1 and the pages' notice -------------------------------

def write_store(profile, backbone: str, dataset: str, split: str, videos) -> None:
    from avdd.backbones import describe
    from avdd.features.extract import store_dir
    from avdd.features.store import FeatureStore

    with FeatureStore(store_dir(profile, describe(backbone), dataset, split),
                      dim=videos[0].shape[1], fps=25.0) as store:
        for i, v in enumerate(videos):
            store.append(f"v{i}", v.astype(np.float32), label=i % 2)


@pytest.fixture
def flagged_profile(tmp_path):
    """A demo profile (no data needed) with three stores: logmel healthy on two splits,
    mouth-pixels collapsed on one of its two."""
    from avdd.config import make_profile

    prof = make_profile("demo", home=tmp_path)
    rng = np.random.default_rng(6)
    write_store(prof, "logmel", "favc", "train", [rng.normal(size=(30, 160)) for _ in range(4)])
    write_store(prof, "logmel", "favc", "test", [rng.normal(size=(30, 160)) for _ in range(4)])
    write_store(prof, "mouth-pixels", "favc", "train",
                [rng.normal(size=(30, 579)) for _ in range(4)])
    write_store(prof, "mouth-pixels", "favc", "test",
                np.split(constant_direction(120, 579), 4))  # one direction, all videos
    return prof


def test_every_extracted_store_is_measured_and_the_worst_one_summarises(flagged_profile):
    from avdd.analysis.health import degenerate_backbones, health_summary, health_table

    table = health_table(flagged_profile, ["logmel", "mouth-pixels", "clip-tiny-random"])
    assert sorted(zip(table.backbone, table.split)) == [
        ("logmel", "test"), ("logmel", "train"), ("mouth-pixels", "test"),
        ("mouth-pixels", "train")]  # clip-tiny-random: nothing extracted, no row
    assert table.set_index(["backbone", "split"])["degenerate"].to_dict() == {
        ("logmel", "train"): False, ("logmel", "test"): False,
        ("mouth-pixels", "train"): False, ("mouth-pixels", "test"): True}
    summary = health_summary(table)
    assert summary.loc["mouth-pixels", "mean_cosine"] == pytest.approx(1.0)
    assert summary.loc["mouth-pixels", "reason"].startswith("favc/test: mean cosine")
    assert summary.loc["logmel", "stores"] == 2 and summary.loc["logmel", "reason"] == ""
    # The cached table reads back the same (flags as booleans, empty reasons as "").
    again = health_table(flagged_profile, ["logmel", "mouth-pixels"])
    assert again["degenerate"].tolist() == table["degenerate"].tolist()
    assert list(degenerate_backbones(flagged_profile, ["logmel", "mouth-pixels"])) == [
        "mouth-pixels"]
    assert degenerate_backbones(flagged_profile, ["logmel"]) == {}


def test_table1_shows_the_health_and_every_page_names_a_degenerate_store(flagged_profile):
    from avdd.analysis.representations import demo_table
    from avdd.report.page import Page

    demo = demo_table(["logmel", "mouth-pixels", "clip-tiny-random"], profile=flagged_profile)
    assert demo["degenerate"].tolist()[:2] == [False, True]
    assert np.isnan(demo.loc["clip-tiny-random", "mean_cosine"])  # no store: no health
    assert "mean_cosine" not in demo_table(["logmel"])  # without a profile: as before
    notice = Page("fig9_test", flagged_profile, ["logmel", "mouth-pixels"]).notice()
    assert "**Degenerate representation.**" in notice and "- `mouth-pixels`: favc/test" in notice
    assert "`logmel`:" not in notice
    assert "Degenerate" not in Page("fig9_test", flagged_profile, ["logmel"]).notice()
