"""Temporal explanations: frame labels, localisation AUC, the leading-silence check, and the
Fig. 2 table end to end on the tiny synthetic benchmark."""

import json
import math

import numpy as np
import pytest
from scipy.special import logsumexp
from sklearn.metrics import roc_auc_score

from avdd.analysis import temporal, timeline
from avdd.analysis.linear_probing import trained_probe
from avdd.analysis.temporal import (
    drop_leading_silence,
    frame_labels,
    leading_silence_check,
    localisation_auc,
)
from avdd.backbones.layers.audio import silence_frames
from avdd.config import DEMO_PROBE_EPOCHS
from avdd.features.featureset import FeatureSet
from avdd.features.prepare import feature_set, prepare
from avdd.heads.probe import LinearProbe


def test_frame_labels_floor_both_ends_inclusive():
    lab = frame_labels([(0.1, 0.3)], 10, 25.0)  # frames 2.5 -> 2 .. 7.5 -> 7
    assert lab.dtype == np.int64 and lab.shape == (10,)
    assert np.flatnonzero(lab).tolist() == [2, 3, 4, 5, 6, 7]


def test_frame_labels_follow_the_papers_float_arithmetic():
    # 25 * 1.16 == 28.999999999999996 and 12.5 * 2.32 == 28.999999999999996 in floating
    # point: the official evaluation's int() makes both frame 28, and so does avdd (it used
    # to add a slack and say 29, one frame off the paper's labels at such boundaries).
    assert 25 * 1.16 < 29 and 12.5 * 2.32 < 29
    assert np.flatnonzero(frame_labels([(1.16, 1.16)], 40, 25.0)).tolist() == [28]
    assert np.flatnonzero(frame_labels([(2.32, 2.32)], 40, 12.5)).tolist() == [28]
    assert np.flatnonzero(frame_labels([(0.28, 0.32)], 20, 25.0)).tolist() == [7, 8]


def test_frame_labels_clip_and_empty():
    assert frame_labels([], 5, 25.0).tolist() == [0] * 5
    assert frame_labels([(3.0, 10.0)], 80, 25.0)[75:].tolist() == [1] * 5  # past the end
    assert frame_labels([(3.0, 10.0)], 80, 25.0)[:75].sum() == 0
    assert frame_labels([(5.0, 6.0)], 80, 25.0).sum() == 0  # starts after the last frame
    assert frame_labels([(-1.0, 0.0)], 4, 25.0).tolist() == [1, 0, 0, 0]
    assert frame_labels([(0.0, 1.0)], 0, 25.0).shape == (0,)
    with pytest.raises(ValueError, match="ends before"):
        frame_labels([(1.0, 0.5)], 50, 25.0)


def _videos():
    """Three 50-frame fake videos with one segment each, and their perfect frame scores."""
    segs = [[(0.4, 0.8)], [(1.0, 1.2)], [(0.0, 0.2), (1.6, 1.96)]]
    perfect = [frame_labels(s, 50, 25.0).astype(np.float32) for s in segs]
    return segs, perfect


def test_localisation_auc_perfect_and_inverted():
    segs, perfect = _videos()
    res = localisation_auc(perfect, segs, [50] * 3, 25.0, n_bootstrap=50)
    assert res.mean == 100 and res.n_used == 3 and res.ci_low == res.ci_high == 100
    assert res.per_video.tolist() == [100, 100, 100]
    inv = localisation_auc([-z for z in perfect], segs, [50] * 3, 25.0, n_bootstrap=0)
    assert inv.mean == 0 and math.isnan(inv.ci_low)
    # a padded (N, T_max) array with valid lengths gives the same result
    padded = np.zeros((3, 60), np.float32)
    padded[:, :50] = np.stack(perfect)
    assert localisation_auc(padded, segs, [50] * 3, 25.0).mean == 100


def test_localisation_auc_counts_skipped_videos():
    segs, perfect = _videos()
    z = perfect + [np.zeros(50), np.ones(40)]
    segs = segs + [[], [(0.0, 5.0)]]  # no fake frame; all frames fake
    res = localisation_auc(z, segs, [50, 50, 50, 50, 40], 25.0,
                           expected_lengths=[50, 52, 53, 50, 40], n_bootstrap=0)
    # video 2 is 3 frames short of its expected length (> 2): skipped; 1 is within tolerance
    assert (res.n_used, res.n_skipped_length, res.n_single_class) == (2, 1, 2)
    assert math.isnan(res.per_video[2]) and res.mean == 100
    none = localisation_auc([np.zeros(5)], [[]], [5], 25.0)
    assert none.n_used == 0 and math.isnan(none.mean)
    with pytest.raises(ValueError, match="lengths"):
        localisation_auc([np.zeros(5)], [[]], [6], 25.0)


def test_localisation_auc_offsets_shift_the_labels():
    # scores of a trimmed input: score j belongs to original frame j + 5
    labels = frame_labels([(1.0, 1.4)], 50, 25.0)
    z = labels[5:].astype(float)
    assert localisation_auc([z], [[(1.0, 1.4)]], [45], 25.0, offsets=[5]).mean == 100
    assert localisation_auc([z], [[(1.0, 1.4)]], [45], 25.0).mean < 100


def test_leading_silence_check():
    z_silence = np.r_[5.0, np.zeros(49)]  # peaks at frame 0
    z_late = np.r_[np.zeros(40), 5.0, np.zeros(9)]  # peaks at frame 40
    # silence 0.32 s covers frames 0..8 (int(25 * 0.32) + 1 = 9, as AVH-Align's trimming)
    assert silence_frames(0.32, 25.0) == 9 and silence_frames(0.0, 25.0) == 0
    chk = leading_silence_check([z_silence, z_late, z_silence], [0.32, 0.32, 0.0], 25.0)
    assert (chk.n_videos, chk.n_in_silence, chk.fraction) == (2, 1, 0.5)
    assert chk.chance == pytest.approx(9 / 50)
    # once the silence is cut from the scores, no peak can lie in it
    kept, dropped = drop_leading_silence([z_silence, z_late], [0.32, 0.32], 25.0)
    assert dropped.tolist() == [9, 9] and len(kept[0]) == 41
    after = leading_silence_check(kept, [0.32, 0.32], 25.0, offsets=dropped)
    assert after.n_videos == 0 and math.isnan(after.fraction)
    # a one-frame offset leaves the rest of the silence in (8 frames)
    part = leading_silence_check([z_silence[1:]], [0.32], 25.0, offsets=[1])
    assert part.n_videos == 1 and part.chance == pytest.approx(8 / 49)
    none = leading_silence_check([z_late], [0.0], 25.0)
    assert none.n_videos == 0 and math.isnan(none.fraction)


def _hand_labelled():
    """Two 50-frame videos at 25 Hz whose fake frames are written out by hand:
    (0.4, 0.8) s covers frames 10..20 (frame t spans [t/25, (t+1)/25) s), and
    (1.0, 1.2) s covers frames 25..30."""
    segs = [[(0.4, 0.8)], [(1.0, 1.2)]]
    perfect = [np.zeros(50), np.zeros(50)]
    perfect[0][10:21] = 1
    perfect[1][25:31] = 1
    return segs, perfect


def test_localisation_auc_known_answers():
    segs, perfect = _hand_labelled()
    assert localisation_auc(perfect, segs, [50, 50], 25.0, n_bootstrap=0).mean == 100
    assert localisation_auc([-z for z in perfect], segs, [50, 50], 25.0).mean == 0
    assert localisation_auc([np.full(50, 3.0)] * 2, segs, [50, 50], 25.0).mean == 50
    # one real frame above every fake one: 11 of the 11 * 39 (fake, real) pairs misordered
    z = perfect[0].copy()
    z[0] = 2
    res = localisation_auc([z, perfect[1]], segs, [50, 50], 25.0)
    assert res.per_video[0] == pytest.approx(100 * 38 / 39) and res.per_video[1] == 100
    assert res.mean == pytest.approx((100 * 38 / 39 + 100) / 2)
    # at 12.5 Hz (VideoMAE) the same seconds are frames 5..10
    half = np.zeros(25)
    half[5:11] = 1
    assert localisation_auc([half], segs[:1], [25], 12.5).mean == 100
    # scores of an input trimmed by 5 frames: score j is frame j + 5
    assert localisation_auc([perfect[0][5:]], segs[:1], [45], 25.0, offsets=[5]).mean == 100


def test_labels_shifted_by_a_second_lower_a_perfect_detectors_auc():
    """What a shifted-label bug would do: the detector that is perfect on the hand-made frame
    labels, scored against the segments one second (25 frames) later, gets AUC 14/39: its 11
    fake frames (now scored 0) tie with 28 real frames and lose to the 11 it scores 1."""
    segs, perfect = _hand_labelled()
    late = [[(a + 1.0, b + 1.0) for a, b in s] for s in segs]
    res = localisation_auc(perfect[:1], late[:1], [50], 25.0)
    assert res.mean == pytest.approx(100 * 14 / 39)
    assert res.mean < localisation_auc(perfect[:1], segs[:1], [50], 25.0).mean == 100


def test_leading_silence_check_at_the_frame_boundary():
    """The silence of s seconds covers the frames that start at or before s (the silent ones
    and the one in which sound starts): 0.32 s at 25 Hz is frames 0..8, 0.28 s frames 0..7."""
    def peak(t, n=50):
        z = np.zeros(n)
        z[t] = 1
        return z

    chk = leading_silence_check([peak(8), peak(9), peak(0), peak(7), peak(0)],
                                [0.32, 0.32, 0.32, 0.28, 0.0], 25.0)
    assert (chk.n_videos, chk.n_in_silence) == (4, 3)  # the silent-free video cannot count
    assert chk.fraction == 0.75 and chk.chance == pytest.approx((9 + 9 + 9 + 8) / 4 / 50)
    trimmed = leading_silence_check([peak(3, 47)], [0.32], 25.0, offsets=[3])  # 6 frames left
    assert (trimmed.n_in_silence, trimmed.chance) == (1, pytest.approx(6 / 47))
    assert leading_silence_check([peak(6, 47)], [0.32], 25.0, offsets=[3]).n_in_silence == 0


def _hand_frame_labels(segments, n: int, fps: float) -> np.ndarray:
    """Frame t is fake when it lies between the frames that contain a segment's ends, with the
    paper's float arithmetic (``int(fps * seconds)``: an end at 1.16 s is in frame 28, as
    ``25 * 1.16`` is 28.999...; span arithmetic, ``t / fps <= end``, would say 29)."""
    t = np.arange(n)
    return np.any([(t >= int(fps * a)) & (t <= int(fps * b)) for a, b in segments], axis=0)


@pytest.mark.slow
def test_leading_silence_table_known_answers(tiny_profile):
    """Every number of the table's rows recomputed from the probe's frame logits."""
    prepare(tiny_profile, ["logmel"], ["av1m"], progress=False)
    table = temporal.leading_silence_table(tiny_profile, ["logmel"], n_bootstrap=20)
    assert list(table.ablation) == ["none", "scores", "frames"]  # no trim_silence option
    probe = trained_probe(tiny_profile, "logmel", "av1m")
    fs = feature_set(tiny_profile, "logmel", "av1m", "test")

    def silence_of(split, store):
        return temporal.video_info(tiny_profile, "av1m", split).loc[list(store.ids),
                                                                    "leading_silence_s"]

    def cuts(store, seconds):  # the frames that start at or before the silence ends (one kept)
        return [min(n - 1, int(np.sum(np.arange(n) / store.fps <= s))) if s > 0 else 0
                for n, s in zip(store.lengths, seconds)]

    def without_silence(split):  # copies of the frames after the silence, by hand
        store = feature_set(tiny_profile, "logmel", "av1m", split)
        cut = cuts(store, silence_of(split, store))
        return FeatureSet.from_arrays([np.array(store[i][k:]) for i, k in enumerate(cut)],
                                      store.labels, fps=store.fps, ids=list(store.ids))

    # the "frames" probe, retrained by hand on those copies
    retrained = LinearProbe(random_state=43, max_epochs=DEMO_PROBE_EPOCHS).fit(
        without_silence("train"), without_silence("val"))
    silence = silence_of("test", fs)
    fps, labels = fs.fps, fs.labels
    assert (silence[labels == 1] > 0).any(), "the benchmark's fakes start with silence"
    for row in table.itertuples():
        cut = cuts(fs, silence)
        if row.ablation == "frames":
            logits = retrained.frame_logits(without_silence("test"))
        else:
            logits = probe.frame_logits(fs)
        if row.ablation == "scores":
            logits = [z[k:] for z, k in zip(logits, cut)]
        elif row.ablation == "none":
            cut = [0] * len(logits)
        assert row.auc == pytest.approx(100 * roc_auc_score(
            labels, [logsumexp(z.astype(np.float64)) for z in logits]), abs=1e-6)
        fakes = np.flatnonzero(labels == 1)
        per_video = []
        for i in fakes:
            y = _hand_frame_labels(fs.meta(int(i))["fake_segments"], len(logits[i]) + cut[i],
                                   fps)[cut[i]:]
            if 0 < y.sum() < len(y):
                per_video.append(100 * roc_auc_score(y, logits[i]))
        assert row.loc_n_used == len(per_video) > 0
        assert row.loc_auc == pytest.approx(np.mean(per_video), abs=1e-6)
        ranked = []  # the leading silence as the segment, over the fakes that still hold it
        for i in fakes:
            if silence.iloc[i] > 0 and cut[i] == 0:
                y = np.arange(len(logits[i])) < silence_frames(silence.iloc[i], fps)
                if 0 < y.sum() < len(y):
                    ranked.append(100 * roc_auc_score(y, logits[i]))
        assert row.silence_loc_n_used == len(ranked) and (ranked or row.ablation != "none")
        if ranked:
            assert row.silence_loc_auc == pytest.approx(np.mean(ranked), abs=1e-6)
        else:
            assert math.isnan(row.silence_loc_auc)
        silent = [i for i in fakes if silence.iloc[i] > 0 and cut[i] == 0]
        assert row.silence_videos == len(silent)
        if silent:
            in_silence = [np.argmax(logits[i]) / fps <= silence.iloc[i] for i in silent]
            assert row.silence_top == pytest.approx(100 * np.mean(in_silence))
        else:  # every silent frame was cut: no peak can lie in one
            assert row.ablation in ("scores", "frames") and math.isnan(row.silence_top)
    sidecars = list((tiny_profile.cache_dir / "results").rglob("provenance.json"))
    assert len(sidecars) >= 2  # the table and the videos' durations and silences
    for side in sidecars:
        prov = json.loads(side.read_text())
        assert prov["profile"] == "demo" and prov["synthetic"] is True
        assert "git_sha" in prov and {"numpy", "torch"} <= set(prov["versions"])


def test_trim_spec():
    assert temporal.trim_spec("logmel") is None
    assert (temporal.trim_spec("avhubert-a-tiny-random")
            == "avhubert-a-tiny-random:trim_silence=true")
    assert temporal.trim_spec("avhubert-a-tiny-random:trim_silence=true") is None
    assert temporal.silence_specs(["logmel", "avhubert-a-tiny-random"])[-1].endswith(
        "trim_silence=true")


def test_localisation_table_tiny(tiny_profile):
    prepare(tiny_profile, ["logmel"], ["av1m"], progress=False)
    df = temporal.localisation_table(tiny_profile, ["logmel"], n_bootstrap=20)
    row = df.iloc[0]
    assert row.backbone == "logmel" and row.modality == "audio" and row.fps == 25.0
    assert 0 <= row.auc <= 100 and row.auc_ci_low <= row.auc <= row.auc_ci_high
    n_fake = row.n_fake
    assert row.loc_n_used + row.loc_n_skipped_length + row.loc_n_single_class == n_fake
    assert row.loc_n_skipped_length == 0  # the benchmark's features line up with its labels
    assert row.loc_n_used > 0 and 0 <= row.loc_auc <= 100
    info = temporal.video_info(tiny_profile, "av1m", "test")
    assert (info.silence_source == "annotation").all() and (info.duration_s > 0).all()
    # cached: the same table without recomputation
    again = temporal.localisation_table(tiny_profile, ["logmel"], n_bootstrap=20)
    assert again.equals(df)
    tl = timeline.timeline(tiny_profile, "logmel")
    assert tl.labels.sum() > 0 and tl.scores.shape == tl.times.shape
    assert tl.video_score >= tl.scores.max()
    media = timeline.timeline_media(tl)  # an audio model: its audio, no frames
    assert media.frames is None and len(media.audio) == pytest.approx(
        16000 * info.loc[tl.video_id, "duration_s"], abs=640)
    peak = timeline.peak_summary(tl, 0.0)
    assert peak["probability"] == pytest.approx(1 / (1 + np.exp(-2 * tl.video_score)))
    assert peak["peak_in_fake"] == bool(tl.labels[tl.peak]) and not peak["peak_in_silence"]
    assert timeline.peak_summary(tl, tl.peak_time + 0.04)["peak_in_silence"]


def test_the_papers_label_and_length_rule():
    """Upstream's arithmetic: labels int(fps s)..int(fps e) without slack, lengths held
    against the metadata's frame count (VideoMAE: its windows), skipped when off by more than
    2, otherwise compared on the common length."""
    from avdd.analysis.temporal import expected_frames

    lab = frame_labels([(1.16, 1.40)], 40, 25.0)
    assert np.flatnonzero(lab).tolist() == list(range(28, 36))  # 25 * 1.16 = 28.999...
    mae = {"window": 16, "tubelet": 2, "trailing": "drop"}
    assert expected_frames(mae, 40) == 16 and expected_frames({**mae, "trailing": "pad"}, 40) == 20
    assert expected_frames({"name": "clip"}, 40) == 40
    truth = frame_labels([(1.0, 1.6)], 100, 25.0).astype(float)
    late = np.r_[truth, 5.0, 5.0]  # 102 scores: two extra frames that would look fake
    too_long = np.r_[truth, 5.0, 5.0, 5.0]  # 103: off by 3, skipped
    res = localisation_auc([late, too_long], [[(1.0, 1.6)]] * 2, [102, 103], 25.0,
                           expected_lengths=[100, 100], n_bootstrap=0)
    assert res.per_video[0] == 100 and np.isnan(res.per_video[1])
    assert (res.n_used, res.n_skipped_length) == (1, 1)


# -- Fig. 3: the paper's picks and frame rule ---------------------------------------------------
def test_segment_frames_follow_the_papers_rule():
    """50 frames at 25 fps, fake segment (0.4, 0.8): frames 10..19 are the segment; the paper
    shows frame 9 (before), the most probable of 10..19 and frame 21 (it skips frame 20)."""
    p = np.zeros(50)
    p[14], p[30] = 0.9, 1.0  # the overall top lies outside the segment: not taken
    assert timeline.segment_frames(p, (0.4, 0.8), 25) == (9, 14, 21)
    # a store that starts 5 frames into the video: indices shift, the frame stays
    assert timeline.segment_frames(p, (0.4, 0.8), 25, offset=5) == (4, 14, 16)
    assert timeline.segment_frames(p, (0.4, 0.8), 12.5) == (4, 5, 11)  # VideoMAE's rate
    assert timeline.segment_frames(p, (2.5, 3.0), 25) is None  # past the end: skipped
    assert timeline.segment_frames(p, (0.0, 0.2), 25)[0] == -1  # before the clip: caller skips


def test_paper_picks_name_registered_backbones_and_shipped_test_videos():
    import pandas as pd

    from avdd.backbones import available
    from avdd.config import Profile

    paper = Profile(name="paper", data_roots={}, cache_dir=None, synthetic=False)
    test = set(pd.read_csv(paper.splits_dir("av1m") / "test_labels.csv").path)
    assert [p.backbone for p in timeline.PAPER_FIG3] == [
        "avhubert-a", "wav2vec2", "avhubert-v", "clip", "videomae"]
    for pick in timeline.PAPER_FIG3:
        assert pick.backbone in available() and pick.video_id in test
        assert bool(pick.mel_windows) != (pick.segment is not None)  # audio xor visual
    assert [p.in_figure for p in timeline.PAPER_FIG3] == [True] * 4 + [False]
    assert timeline.paper_pick("avhubert-a:checkpoint=/ckpt/x.pt").mel_windows == (
        (0.0, 0.25), (1.3, 1.8))
    assert timeline.paper_pick("clip:model=/ckpt/clip").segment == 1
    assert timeline.paper_pick("avhubert-a-random") is None  # picked for the pretrained model
    assert timeline.paper_pick("clip-tiny-random") is None


@pytest.mark.slow
def test_timeline_takes_the_paper_pick_when_its_video_is_in_the_store(tiny_profile):
    prepare(tiny_profile, ["logmel"], ["av1m"], progress=False)
    top = timeline.timeline(tiny_profile, "logmel", picks=())
    assert top.pick is None
    fs = feature_set(tiny_profile, "logmel", "av1m", "test")
    other = next(str(v) for i, v in enumerate(fs.ids)
                 if fs.labels[i] == 1 and fs.meta(i).get("fake_segments") and v != top.video_id)
    pick = timeline.Fig3Pick("logmel", other, mel_windows=((0.0, 0.5),))
    tl = timeline.timeline(tiny_profile, "logmel", picks=(pick,))
    assert tl.video_id == other and tl.pick == pick
    assert timeline.peak_summary(tl, 0.0)["pick"] == "paper"
    media = timeline.timeline_media(tl)
    assert media.mel_windows == ((0.0, 0.5),) and media.frames is None
    # the pick's video is not in the store (the demo): the top-scoring video
    missing = timeline.Fig3Pick("logmel", "id00000/none/00000/fake_video_fake_audio.mp4")
    assert timeline.timeline(tiny_profile, "logmel", picks=(missing,)).video_id == top.video_id
    assert timeline.timeline_media(top).mel_windows == ()


def test_visual_frames_are_the_papers_three_around_a_segment(tiny_profile):
    from dataclasses import replace

    from avdd.datasets import load_items
    from avdd.media import read_clip

    item = next(it for it in load_items(tiny_profile, "av1m", "test") if it.label == 1)
    video = read_clip(item.path, audio=False).video
    n = min(len(video), 40)
    assert n > 22
    p = np.full(n, 0.1)
    p[14], p[n - 1] = 0.8, 0.99
    z = np.arctanh(2 * p - 1)  # scores whose σ(2z) is p
    tl = timeline.Timeline(backbone="clip-tiny-random", modality="visual", video_id="v",
                           path=item.path, fps=25.0, times=np.arange(n) / 25, scores=z,
                           probability=p, labels=np.zeros(n, int),
                           fake_segments=[(0.4, 0.8), (0.0, 0.1)], video_score=0.0,
                           peak=n - 1)
    media = timeline.timeline_media(tl)
    assert media.segment == 0  # the segment holding the highest probability
    assert [t for t, _ in media.frames] == pytest.approx([9 / 25, 14 / 25, 21 / 25])
    for (_, img), k in zip(media.frames, (9, 14, 21)):
        np.testing.assert_array_equal(img, video[k])
    # the paper's pick names segment 1: frame -1 does not exist and is skipped
    picked = replace(tl, pick=timeline.Fig3Pick("clip", "v", segment=1))
    media = timeline.timeline_media(picked)
    assert media.segment == 1 and [t for t, _ in media.frames] == pytest.approx([0.0, 0.12])
    with pytest.raises(ValueError, match="fake segment #2"):
        timeline.timeline_media(replace(tl, pick=timeline.Fig3Pick("clip", "v", segment=2)))
    peak = timeline.timeline_media(tl, frames="peak")
    assert peak.segment is None and len(peak.frames) == 3
    assert peak.frames[1][0] == pytest.approx((n - 1) / 25)


def test_timeline_plot_shows_only_the_spectrogram_windows():
    from avdd.report.plots import plot_timeline

    t = np.arange(50) / 25
    audio = np.random.default_rng(0).normal(size=32000).astype(np.float32) * 0.1
    whole = plot_timeline(t, np.zeros(50), spectrogram_audio=audio)
    windows = plot_timeline(t, np.zeros(50), spectrogram_audio=audio,
                            spectrogram_windows=[(0.0, 0.25), (1.3, 1.8)])
    assert len(whole.axes) == 3 and len(windows.axes) == 4
    assert [ax.get_xlim() for ax in windows.axes[2:]] == [(0.0, 0.25), (1.3, 1.8)]
    with pytest.raises(ValueError, match="end after"):
        plot_timeline(t, np.zeros(50), spectrogram_audio=audio, spectrogram_windows=[(1, 1)])
