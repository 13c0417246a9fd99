"""Known-answer checks: the rules, the book-wide table, the controls, and a broken analysis
that a check catches."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from avdd.analysis import known_answers, temporal
from avdd.analysis.checks import (
    COLUMNS,
    above_chance,
    at_chance,
    at_least,
    below,
    binomial_interval,
    correlation_gap,
    frame,
)
from avdd.features.featureset import FeatureSet

NAN = float("nan")


def test_rules_pass_and_fail_where_they_say():
    assert at_least("p", "c", 93, 85, 98, minimum=90, lower_bound=80, why="w").passed
    assert not at_least("p", "c", 93, 75, 98, minimum=90, lower_bound=80, why="w").passed
    assert not at_least("p", "c", 89.9, 85, 98, minimum=90, why="w").passed
    assert not at_least("p", "c", NAN, NAN, NAN, minimum=90, why="w").passed
    assert at_chance("p", "c", 55, 45, 62, why="w").passed
    assert at_chance("p", "c", 55, 45, 62, why="w").expected.startswith("99 % interval")
    assert not at_chance("p", "c", 60, 51, 70, why="w").passed
    assert not at_chance("p", "c", 50, NAN, NAN, why="w").passed  # no interval: not shown
    assert above_chance("p", "c", 45, 31, 60, chance=10, margin=10, why="w").passed
    assert not above_chance("p", "c", 45, 19, 60, chance=10, margin=10, why="w").passed
    assert below("p", "c", -0.05, -0.08, -0.01, limit=0, limit_name="x", why="w").passed
    assert not below("p", "c", -0.05, -0.08, 0.01, limit=0, limit_name="x", why="w").passed


def test_measured_is_the_value_and_its_interval():
    c = at_least("p", "c", 93.14, 88.04, 97.25, minimum=90, why="w")
    assert c.measured == "93.1 [88.0, 97.2]"
    assert at_least("p", "c", NAN, NAN, NAN, minimum=90, why="w").measured == "–"
    table = frame([c])
    assert list(table.columns) == [*COLUMNS, "why"] and table.loc[0, "passed"]


def test_binomial_interval_is_clopper_pearson():
    share, lo, hi = binomial_interval(5, 10)
    assert share == 50 and lo == pytest.approx(18.709, abs=1e-3) and hi == pytest.approx(81.291, abs=1e-3)
    assert all(math.isnan(x) for x in binomial_interval(0, 0))


def test_correlation_gap_sees_which_pair_agrees():
    rng = np.random.default_rng(0)
    cue = rng.standard_normal(400)
    scores = pd.DataFrame({"a1": cue + 0.3 * rng.standard_normal(400),
                           "a2": cue + 0.3 * rng.standard_normal(400),
                           "v": rng.standard_normal(400)})
    gap, lo, hi = correlation_gap(scores, ("a1", "a2"), [("a1", "v"), ("a2", "v")],
                                  n_bootstrap=200)
    assert gap > 80 and lo > 70 and hi <= 100
    gap, lo, hi = correlation_gap(scores, ("a1", "v"), [("a1", "a2")], n_bootstrap=200)
    assert hi < 0


def test_the_book_gathers_every_pages_checks(tmp_path):
    from avdd.report.book import collect_known_answers

    for page, value in (("table2_linear_probing", 95.0), ("fig2_localisation", 60.0)):
        folder = tmp_path / f"{page}_files"
        folder.mkdir()
        frame([at_least(page, "c", value, value - 5, value + 5, minimum=90, why="w")]).to_csv(
            folder / f"{page}-known-answers.csv", index=False)
    out = collect_known_answers(tmp_path)
    table = pd.read_csv(out)
    assert list(table.columns) == list(COLUMNS)
    assert table["page"].tolist() == ["fig2_localisation", "table2_linear_probing"]
    assert table["passed"].tolist() == [False, True]
    for f in tmp_path.glob("*_files/*.csv"):
        f.unlink()
    assert collect_known_answers(tmp_path) is None and not out.exists()  # no stale table


def test_page_writes_its_checks_where_the_book_gathers_them(tmp_path):
    from avdd.config import make_profile
    from avdd.report.page import Page

    prof = make_profile("demo", home=tmp_path / "home")
    page = Page("table2_linear_probing", prof, [], outputs=tmp_path / "table2_linear_probing_files")
    page.checks([at_chance("table2_linear_probing", "c", 52, 40, 61, why="w")])
    written = pd.read_csv(tmp_path / "table2_linear_probing_files"
                          / "table2_linear_probing-known-answers.csv")
    assert written["check"].tolist() == ["c"] and written["passed"].tolist() == [True]


def test_no_known_answers_on_real_data(tmp_path):
    from avdd.config import make_profile

    prof = make_profile("paper", data_roots={"av1m": str(tmp_path)}, cache_dir=tmp_path)
    assert known_answers.table2_checks(prof, pd.DataFrame()) == []
    assert known_answers.localisation_checks(prof) == []


def _separable(n: int, rng: np.random.Generator) -> FeatureSet:
    """Fakes have a small offset along one of 64 dimensions in every frame: a probe that
    learns it separates them, a direction that ignores it does not (as with real cues: a
    shift so large that any direction sees it would make every probe a detector)."""
    labels = np.arange(n) % 2
    arrays = [rng.standard_normal((12, 64)) + np.eye(64)[0] * 0.8 * y for y in labels]
    return FeatureSet.from_arrays(arrays, labels, ids=[f"v{i}" for i in range(n)])


def test_shuffled_label_control_is_at_chance_where_the_true_labels_are_not(tmp_path, monkeypatch):
    """The same features and probe: true labels give AUC > 75, random ones chance. A control
    that forgot to shuffle fails its check; so does one that tests on the true labels (the
    probe fitted to random labels still ranks the true groups apart, see
    :func:`known_answers.shuffled_label_auc`)."""
    from avdd.config import make_profile
    from avdd.heads.probe import LinearProbe

    rng = np.random.default_rng(0)
    sets = {s: _separable(n, rng) for s, n in (("train", 200), ("val", 60), ("test", 200))}
    monkeypatch.setattr(known_answers, "feature_set", lambda _p, _b, _d, split: sets[split])
    prof = make_profile("demo", home=tmp_path / "home")
    c = known_answers.shuffled_label_auc(prof, "logmel", "av1m", n_bootstrap=200)
    assert at_chance("p", "control", c["auc"], c["auc_ci_low"], c["auc_ci_high"], why="w").passed
    true = LinearProbe(random_state=43).fit(sets["train"], sets["val"])
    from avdd.analysis.metrics import auc

    assert auc(sets["test"].labels, true.decision_function(sets["test"])) > 0.75
    shuffle = known_answers._shuffled
    true_test = lambda fs, rng: fs if len(fs) == 200 and fs is sets["test"] else shuffle(fs, rng)  # noqa: E731
    monkeypatch.setattr(known_answers, "_shuffled", true_test)
    wrong = known_answers.shuffled_label_auc(prof, "logmel", "av1m", n_bootstrap=200, seed=45)
    assert wrong["auc_ci_high"] < 50  # off chance, below: the groups' losses were equalised
    monkeypatch.setattr(known_answers, "_shuffled", lambda fs, rng: fs)  # the broken control
    broken = known_answers.shuffled_label_auc(prof, "logmel", "av1m", n_bootstrap=200, seed=44)
    assert not at_chance("p", "control", broken["auc"], broken["auc_ci_low"],
                         broken["auc_ci_high"], why="w").passed


def test_frame_labels_shifted_by_a_second_fail_the_localisation_check(monkeypatch):
    """Frame scores that peak on the fake words pass the localisation check; the same scores
    judged against labels shifted by one second (25 frames) fail it."""
    rng = np.random.default_rng(0)
    fps, logits, segments = 25.0, [], []
    for _ in range(40):
        n = int(rng.integers(100, 150))
        start = float(rng.uniform(0.4, n / fps - 1.6))
        seg = [[start, start + 0.5]]
        z = rng.standard_normal(n) + 3 * temporal.frame_labels(seg, n, fps)
        logits.append(z)
        segments.append(seg)

    def check():
        r = temporal.localisation_auc(logits, segments, [len(z) for z in logits], fps,
                                      n_bootstrap=200)
        return at_least("fig2", "loc", r.mean, r.ci_low, r.ci_high, minimum=75, lower_bound=50,
                        why="w")

    assert check().passed
    right = temporal.frame_labels
    monkeypatch.setattr(temporal, "frame_labels",
                        lambda segs, n, f, **kw: np.roll(right(segs, n, f, **kw), int(f)))
    assert not check().passed


def test_table1_check_names_a_degenerate_representation(tmp_path):
    from avdd.config import make_profile

    prof = make_profile("demo", home=tmp_path / "home")
    healthy = pd.DataFrame({"degenerate": [False, False, np.nan]}, index=["a", "b", "c"])
    (ok,) = known_answers.table1_checks(prof, healthy)
    assert ok.passed and "2 measured" in ok.check
    sick = pd.DataFrame({"degenerate": [False, True]}, index=["a", "braven-v-tiny-random"])
    (bad,) = known_answers.table1_checks(prof, sick)
    assert not bad.passed and "braven-v-tiny-random" in bad.check and bad.value == 1


def _complementarity(shared_audio: float, rng: np.random.Generator) -> dict:
    """Fig. 5-shaped result for logmel, ge2e, mouth-pixels: each score is the label plus
    its own noise, the two audio ones also plus a shared factor of weight ``shared_audio``."""
    from avdd.analysis.fusion import fusion_table

    n = 400
    y = np.arange(n) % 2
    common = rng.standard_normal(n)
    scores = pd.DataFrame({
        "logmel": y + rng.standard_normal(n) + shared_audio * common,
        "ge2e": y + rng.standard_normal(n) + shared_audio * common,
        "mouth-pixels": y + rng.standard_normal(n),
    }, index=pd.Index([f"v{i}" for i in range(n)], name="video_id"))
    return {"scores": scores.assign(label=y),
            "fusion": fusion_table(scores, y, n_bootstrap=200, random_state=0)}


def test_complementarity_checks_pass_on_complementary_scores_and_fail_on_shared_ones(
        tmp_path, monkeypatch):
    """Audio scores that share a factor correlate more than audio with visual (the gap check
    passes), and the visual one's independent errors make the fusion beat it. With no shared
    factor the gap is ~0 and the check fails; with the visual score a copy of an audio one
    the fusion gains nothing and its check fails."""
    from avdd.config import make_profile

    prof = make_profile("demo", home=tmp_path / "home")
    monkeypatch.setattr(known_answers, "prepare", lambda *a, **k: None)
    rng = np.random.default_rng(0)
    results = {"shared": _complementarity(1.0, rng), "independent": _complementarity(0.0, rng)}
    copy = _complementarity(1.0, rng)
    s = copy["scores"].assign(**{"mouth-pixels": copy["scores"]["logmel"]})
    from avdd.analysis.fusion import fusion_table

    copy = {"scores": s, "fusion": fusion_table(s.drop(columns="label"), s["label"].to_numpy(),
                                                n_bootstrap=200, random_state=0)}
    results["copy"] = copy
    outcome = {}
    for name, res in results.items():
        monkeypatch.setattr(known_answers, "complementarity", lambda *a, _r=res, **k: _r)
        gap, fusion = known_answers.complementarity_checks(prof, n_bootstrap=200)
        outcome[name] = (gap.passed, fusion.passed)
    assert outcome["shared"] == (True, True)
    assert outcome["independent"][0] is False
    assert outcome["copy"][1] is False
