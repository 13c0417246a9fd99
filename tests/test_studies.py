"""The study steps behind Tables 2-4 and Fig. 5 on the tiny synthetic benchmark, with known
answers: every expected number is recomputed here from the probes' scores with scikit-learn,
or built by hand, so a step that reads the wrong probe, column or split fails a test.

The feature stores are extracted once per module (:func:`prepared`); every test gets a fresh
copy of them and an empty result cache (:func:`study`), as ``tiny_profile`` gives.
"""

import json
import shutil
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import TINY_SCALE
from sklearn.metrics import average_precision_score, roc_auc_score

from avdd.analysis.anomaly import anomaly_table
from avdd.analysis.fusion import complementarity
from avdd.analysis.linear_probing import TABLE2_COLUMNS, linear_probe_grid, table2_matrix
from avdd.analysis.probes import probe_path, probe_scores, trained_probe
from avdd.analysis.sota import select_best, sota_table, validation_table
from avdd.backbones import get_backbone
from avdd.config import make_profile
from avdd.features.extract import store_dir
from avdd.features.prepare import feature_set, prepare
from avdd.features.store import FeatureSet, FeatureStore

CHEAP = ["logmel", "mouth-pixels", "wav2vec2-tiny-random"]
SMALL_NTP = {"d_model": 16, "n_layers": 1, "n_heads": 2, "dim_feedforward": 32, "max_epochs": 3}
SMALL_SYNC = {"hidden": 16, "widths": (16,), "lr": 1e-3, "max_epochs": 3}
#: The paper's column codes, written out here rather than read from the code under test.
PAPER_COLUMNS = {"A": ("favc", "favc"), "B": ("av1m", "favc"), "C": ("av1m", "av1m"),
                 "D": ("favc", "av1m"), "E": ("favc", "avlips"), "F": ("av1m", "avlips"),
                 "G": ("dfe", "dfe"), "H": ("favc", "dfe"), "I": ("av1m", "dfe")}
IN_DOMAIN = ("A", "C", "G")


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one torch thread is faster (the Table 4 detectors train ~10x faster on
    a busy 2-core machine), and fair to a shared one. Per test, so that the extraction in
    :func:`prepared` keeps its threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def prepared(tiny_home, tmp_path_factory):
    """The tiny benchmark with the features these tests read, extracted once: logmel on every
    dataset (the whole Table 2 grid), the other cheap backbones on AV1M and FAVC."""
    profile = replace(make_profile("demo", home=tiny_home, synth_scale=TINY_SCALE),
                      cache_dir=tmp_path_factory.mktemp("prepared") / "cache")
    prepare(profile, ["logmel"], progress=False)
    prepare(profile, CHEAP[1:], ["av1m", "favc"], progress=False)
    return profile


@pytest.fixture
def study(prepared, tmp_path):
    """A fresh copy of the prepared cache: features, no probe, no result table."""
    shutil.copytree(prepared.cache_dir, tmp_path / "cache")
    return replace(prepared, cache_dir=tmp_path / "cache")


def auc(labels, scores) -> float:
    return 100 * roc_auc_score(labels, scores)


def assert_tables_carry_provenance(profile, at_least: int) -> None:
    """Every result cached under ``profile`` (:func:`avdd.analysis.cache.cached`) has its
    provenance record naming the profile, the data, the commit, versions and the code."""
    sidecars = sorted((profile.cache_dir / "results").rglob("provenance.json"))
    assert len(sidecars) >= at_least, sidecars
    for side in sidecars:
        prov = json.loads(side.read_text())
        assert prov["profile"] == profile.name == "demo", side
        assert prov["synthetic"] is True, side
        assert "git_sha" in prov and "git_dirty" in prov, side
        assert {"python", "numpy", "torch", "scikit-learn"} <= set(prov["versions"]), side
        assert prov["code"] and all(m.startswith("avdd.") for m in prov["code"]), side


def relabel_store(profile, backbone: str, dataset: str, split: str, labels) -> None:
    """Rewrite one feature store with new video labels (features and metadata kept)."""
    root = store_dir(profile, get_backbone(backbone), dataset, split)
    old = FeatureSet.open(root)
    new = root.with_name(root.name + "-relabelled")
    with FeatureStore(new, dim=old.dim, fps=old.fps, backbone=old.info.get("backbone"),
                      config=old.info.get("config"), durable=False) as store:
        for i, (video, y) in enumerate(zip(old.ids, labels, strict=True)):
            store.append(video, np.array(old[i]), label=int(y), **old.meta(i))
    shutil.rmtree(root)
    new.rename(root)


# -- Table 2 ------------------------------------------------------------------------------

def long_grid(values: dict[str, dict[str, float]]) -> pd.DataFrame:
    """A hand-made linear_probe_grid: backbone -> {column: auc}, rows in the given order."""
    return pd.DataFrame([{"backbone": b, "column": c, "train": PAPER_COLUMNS[c][0],
                          "test": PAPER_COLUMNS[c][1], "auc": v, "ap": v / 2}
                         for b, cols in values.items() for c, v in cols.items()])


def test_table2_j_is_the_mean_of_the_six_out_of_domain_columns():
    # In-domain columns hold 1000, out-of-domain ones 1, 2, 4, 8, 16, 32 (+ an offset per
    # backbone): any other set of columns averages to another number.
    ood = {"B": 1, "D": 2, "E": 4, "F": 8, "H": 16, "I": 32}
    zeta = {**{c: 1000.0 for c in IN_DOMAIN}, **{c: float(v) for c, v in ood.items()}}
    alpha = {c: v + 0.5 for c, v in zeta.items()}
    # columns listed out of order, and "zeta" before "alpha": the table keeps the grid's
    # backbone order and the paper's column order
    grid = long_grid({"zeta": dict(reversed(list(zeta.items()))), "alpha": alpha})
    wide = table2_matrix(grid)
    assert list(wide.index) == ["zeta", "alpha"]
    assert list(wide.columns) == list("ABCDEFGHIJ")
    assert wide.loc["zeta", "J"] == pytest.approx(63 / 6)
    assert wide.loc["alpha", "J"] == pytest.approx(63 / 6 + 0.5)
    assert wide.loc["zeta", "C"] == 1000 and wide.loc["alpha", "E"] == 4.5
    assert table2_matrix(grid, "ap").loc["zeta", "J"] == pytest.approx(63 / 12)


def test_table2_without_every_out_of_domain_column_has_no_j():
    grid = long_grid({"m": {"I": 3.0, "C": 1.0, "B": 2.0}})
    wide = table2_matrix(grid)
    assert list(wide.columns) == ["B", "C", "I"]  # the paper's order, no J of fewer columns
    with_all_but_one = long_grid({"m": {c: 1.0 for c in "ABCDEFGH"}})
    assert "J" not in table2_matrix(with_all_but_one).columns
    # A one-class test set gives a NaN column: J is then undefined, not a mean of five.
    nan_h = long_grid({"m": {**{c: 1.0 for c in "ABCDEFGHI"}, "H": float("nan")}})
    assert np.isnan(table2_matrix(nan_h).loc["m", "J"])


@pytest.mark.slow
def test_linear_probe_grid_equals_each_columns_probe_scored_by_sklearn(study):
    grid = linear_probe_grid(study, ["logmel"], n_bootstrap=20)
    assert [tuple(r) for r in grid[["column", "train", "test"]].to_numpy()] == [
        (c, *PAPER_COLUMNS[c]) for c in "ABCDEFGHI"]
    assert [c for c, _, _ in TABLE2_COLUMNS] == list("ABCDEFGHI")
    for row in grid.itertuples():
        s = probe_scores(study, "logmel", row.train, row.test)
        labels = feature_set(study, "logmel", row.test, "test").labels
        np.testing.assert_array_equal(s["label"], labels)
        assert row.auc == pytest.approx(auc(s["label"], s["score"]), abs=1e-9), row.column
        assert row.ap == pytest.approx(100 * average_precision_score(s["label"], s["score"]),
                                       abs=1e-9), row.column
        assert (row.n_real, row.n_fake) == ((labels == 0).sum(), (labels == 1).sum())
        assert row.auc_ci_low <= row.auc <= row.auc_ci_high
        assert row.best_epoch == trained_probe(study, "logmel", row.train).best_epoch_
        assert (row.backbone, row.modality, row.weights) == ("logmel", "audio", "handcrafted")
    # the probes differ per training set: a grid that reused one probe would not match
    per_train = {t: probe_scores(study, "logmel", t, "av1m")["score"].to_numpy()
                 for t in ("av1m", "favc", "dfe")}
    assert not np.allclose(per_train["av1m"], per_train["favc"])
    wide = table2_matrix(grid)
    assert wide.loc["logmel", "J"] == pytest.approx(
        grid.set_index("column").loc[list("BDEFHI"), "auc"].mean())
    assert_tables_carry_provenance(study, at_least=1)


def test_linear_probe_grid_keeps_the_order_of_backbones_and_columns(study):
    cols = [c for c in TABLE2_COLUMNS if c[0] in "DCB"]
    grid = linear_probe_grid(study, ["wav2vec2-tiny-random", "logmel"], columns=cols,
                             n_bootstrap=0)
    assert list(grid.backbone) == ["wav2vec2-tiny-random"] * 3 + ["logmel"] * 3
    assert list(grid.column) == ["B", "C", "D"] * 2
    assert grid.auc_ci_low.isna().all()  # no resamples: no interval
    wide = table2_matrix(grid)
    assert list(wide.index) == ["wav2vec2-tiny-random", "logmel"] and "J" not in wide
    w = probe_scores(study, "wav2vec2-tiny-random", "favc", "av1m")
    assert wide.loc["wav2vec2-tiny-random", "D"] == pytest.approx(auc(w.label, w.score))


def test_probes_are_cached_and_scores_reproducible(study):
    a = probe_scores(study, "logmel", "av1m", "favc")
    path = probe_path(study, "logmel", "av1m")
    assert path.is_file()
    stamp = path.stat().st_mtime_ns
    b = probe_scores(study, "logmel", "av1m", "favc")
    assert path.stat().st_mtime_ns == stamp  # loaded, not retrained
    np.testing.assert_array_equal(a["score"], b["score"])
    retrained = trained_probe(study, "logmel", "av1m", force=True)
    fs = feature_set(study, "logmel", "favc", "test")
    np.testing.assert_allclose(retrained.decision_function(fs), a["score"], rtol=1e-6)


# -- Table 3 ------------------------------------------------------------------------------

def val_table(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["backbone", "modality", "val_auc", "val_loss",
                                       "val_ap"]).set_index("backbone")


def test_select_best_ranks_by_val_auc_then_loss_then_ap_then_order():
    val = val_table([
        ("v1", "visual", 80.0, 0.5, 70.0),
        ("a1", "audio", 90.0, 0.9, 50.0),
        ("a2", "audio", 95.0, 2.0, 10.0),  # highest AUC wins despite its loss
        ("v2", "visual", 80.0, 0.4, 60.0),  # AUC tie: lower loss wins
        ("m1", "multimodal", 70.0, 0.3, 60.0),
        ("m2", "multimodal", 70.0, 0.3, 65.0),  # AUC and loss tie: higher AP wins
        ("x1", "other", 50.0, 0.3, 60.0),
        ("x2", "other", 50.0, 0.3, 60.0),  # all tie: the first listed
        ("n1", "none", np.nan, 0.1, np.nan),  # one-class validation: ranks below any AUC
        ("n2", "none", 1.0, 9.0, 1.0),
    ])
    best = select_best(val)
    assert best.to_dict() == {"visual": "v2", "audio": "a2", "multimodal": "m2", "other": "x1",
                              "none": "n2"}
    assert list(best.index) == ["visual", "audio", "multimodal", "other", "none"]
    # changing a validation score changes the choice
    assert select_best(val.assign(val_auc=val.val_auc.where(val.index != "a1", 99.0)))[
        "audio"] == "a1"


def test_sota_table_reads_columns_c_b_f_i():
    grid = long_grid({"a": {"A": 1.0, "B": 2.0, "C": 4.0, "D": 8.0, "E": 16.0, "F": 32.0,
                            "G": 64.0, "H": 128.0, "I": 256.0}, "b": {c: 0.0 for c in "BCFI"}})
    table = sota_table(grid, pd.Series({"audio": "a", "visual": "b"}))
    row = table.loc["audio"]
    assert (row.backbone, row.av1m, row.favc, row.avlips, row.dfe) == ("a", 4.0, 2.0, 32.0, 256.0)
    assert row.all4 == pytest.approx((4 + 2 + 32 + 256) / 4)
    assert row.last3 == pytest.approx((2 + 32 + 256) / 3)
    assert table.loc["visual", "all4"] == 0


def test_table3_choice_reads_validation_only(study):
    backbones = ["logmel", "wav2vec2-tiny-random"]  # both audio: a choice to make
    val = validation_table(study, backbones)
    for b in backbones:  # validation_table's numbers are the val split's, recomputed here
        xv = feature_set(study, b, "av1m", "val")
        s = trained_probe(study, b, "av1m").decision_function(xv)
        assert val.loc[b, "val_auc"] == pytest.approx(auc(xv.labels, s))
        assert (val.loc[b, "n_real"], val.loc[b, "n_fake"]) == ((xv.labels == 0).sum(),
                                                                (xv.labels == 1).sum())
    chosen = select_best(val)["audio"]
    other = next(b for b in backbones if b != chosen)
    # a better validation AUC for the other backbone changes the choice ...
    better = val.assign(val_auc=val.val_auc.where(val.index != other, 101.0))
    assert select_best(better)["audio"] == other
    # Rewrite the AV1M test labels so that a choice on test would pick the other backbone:
    # its test scores become perfect (AUC 100), the chosen one's perfectly wrong (AUC 0).
    for b, sign in ((other, 1), (chosen, -1)):
        s = probe_scores(study, b, "av1m", "av1m")["score"].to_numpy()
        relabel_store(study, b, "av1m", "test", sign * s > np.median(sign * s))
    for b, want in ((other, 100), (chosen, 0)):
        t = probe_scores(study, b, "av1m", "av1m")
        assert auc(t.label, t.score) == want
    # ... test labels that favour it do not
    again = validation_table(study, backbones)
    pd.testing.assert_frame_equal(again, val)
    assert select_best(again)["audio"] == chosen


# -- Table 4 and Fig. 5 ---------------------------------------------------------------------

def test_complementarity_tables(study):
    names = {"LM": "logmel", "MP": "mouth-pixels", "W": "wav2vec2-tiny-random"}
    out = complementarity(study, names, n_bootstrap=20)
    assert list(out["pearson"].index) == ["LM", "MP", "W"]
    assert np.allclose(np.diag(out["pearson"]), 100)
    a, b = (probe_scores(study, names[k], "av1m", "favc") for k in ("LM", "W"))
    assert out["pearson"].loc["LM", "W"] == pytest.approx(
        100 * np.corrcoef(a.score, b.loc[a.index, "score"])[0, 1])
    fusion = out["fusion"]
    assert len(fusion) == 9 and (fusion.auc_fused_low <= fusion.auc_fused_high).all()
    again = complementarity(study, names, n_bootstrap=20)
    assert again["fusion"].equals(fusion)
    assert_tables_carry_provenance(study, at_least=1)


#: The cross-domain probe behind each Table 4 test column (SPEC.md, "Sup." columns).
CROSS = {"av1m": "favc", "favc": "av1m"}


def fused_probe_auc(profile, specs, train: str, test: str) -> float:
    """AUC of the late fusion (mean of raw scores) of the ``train``-trained probes of
    ``specs`` on ``test``, over the videos every probe scored."""
    per = [probe_scores(profile, b, train, test) for b in specs]
    common = per[0].index
    for p in per[1:]:
        common = common.intersection(p.index)
    return auc(per[0].loc[common, "label"], np.mean([p.loc[common, "score"] for p in per], 0))


@pytest.mark.slow
def test_anomaly_table_sup_columns_are_the_cross_domain_probes(study):
    rows = {"LM": ("logmel",), "MP": ("mouth-pixels",), "MP + LM": ("mouth-pixels", "logmel")}
    res = anomaly_table(study, rows, ntp_params=SMALL_NTP, sync_params=SMALL_SYNC,
                        n_bootstrap=20)
    t = res["table"]
    got = set(zip(t.row, t.method))
    assert got == {("LM", "sup"), ("LM", "ntp"), ("MP", "sup"), ("MP", "ntp"),
                   ("MP + LM", "sup"), ("MP + LM", "ntp"), ("MP + LM", "sync")}
    assert set(t.test) == {"av1m", "favc"} and (t.auc_ci_low <= t.auc_ci_high).all()
    assert set(res["pretext"].detector) == {"ntp", "sync"}
    sup = t[t.method == "sup"].set_index(["row", "test"])["auc"]
    for label, specs in rows.items():
        for test in ("av1m", "favc"):
            want = fused_probe_auc(study, specs, CROSS[test], test)
            assert sup[(label, test)] == pytest.approx(want, abs=1e-9), (label, test)
    # The check can tell the probes apart: in each column some row's in-domain probe scores
    # another AUC than its cross-domain one, so a table using it would fail above.
    for test in ("av1m", "favc"):
        assert any(fused_probe_auc(study, specs, test, test) != pytest.approx(sup[(label, test)])
                   for label, specs in rows.items()), test
    assert_tables_carry_provenance(study, at_least=2)


def test_the_papers_fixed_table3_choice_ignores_validation():
    from avdd.analysis.sota import PAPER_CHOICE, fixed_choice

    specs = ["logmel", "wav2vec2-tiny-random", "avhubert-a-tiny-random",
             "braven-v-tiny-random", "clip:model=/x", "avhubert-av:checkpoint=/c.pt"]
    chosen = fixed_choice(specs)
    assert chosen.to_dict() == {"audio": "wav2vec2-tiny-random", "visual": "braven-v-tiny-random",
                                "audio-visual": "avhubert-av:checkpoint=/c.pt"}
    assert set(PAPER_CHOICE.values()) == {"wav2vec2", "braven-v", "avhubert-av"}
    with pytest.raises(ValueError, match="needs a braven-v backbone"):
        fixed_choice(["wav2vec2", "avhubert-av"])
