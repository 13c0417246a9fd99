"""The paper profile's data protocol on small fabricated layouts: Deepfake-Eval-2024 read the
BitDF way (string labels, removal list, DFE prefix) and AV1M's real-only 45k / 5k split that
trains the anomaly detectors."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest

from avdd.config import Profile, paper_profile
from avdd.datasets import DatasetError, load_items
from avdd.datasets.check import check_dataset

SHIPPED = Path(__file__).resolve().parents[1] / "src" / "avdd" / "data" / "splits" / "av1m"


# -- Deepfake-Eval-2024 in the BitDF layout ---------------------------------------------------
def bitdf_root(tmp_path: Path, *, removal: list[str] | None = None) -> Path:
    """A BitDF root: DFE real/fake/unknown test rows, one DFE row in the removal list, a
    tiktok test row, an original_split=train DFE row; train/val lists over two sources."""
    root = tmp_path / "filtered_tracks_processed"
    root.mkdir()
    d = "Deepfake-Eval-2024/videos"
    pd.DataFrame({
        "full_file_path": [f"{d}/a_track_000.mp4", f"{d}/b_track_001.mp4", f"{d}/c_track_000.mp4",
                           f"{d}/gone_track_002.mp4", "tiktok/videos/t_track_000.mp4",
                           f"{d}/trained_track_000.mp4"],
        "label": ["real", "fake", "unknown", "fake", "fake", "real"],
        "original_split": ["test", "test", "test", "test", "test", "train"],
    }).to_csv(root / "metadata.csv", index=False)
    pd.DataFrame({"full_file_path": [f"{d}/trained_track_000.mp4", "youtube/feats/y_track_000.mp4",
                                     "tiktok/videos/u_track_000.mp4"],
                  "label": ["real", "fake", "unknown"]}).to_csv(root / "train_labels.csv", index=False)
    pd.DataFrame({"full_file_path": ["facebook-real/videos/f_track_000.mp4"], "label": ["real"]}).to_csv(
        root / "val_labels.csv", index=False)
    lines = [f"{d}/gone_track_002.mp4", "facebook-real/videos/other_track_001.mp4"] if removal is None else removal
    (root / "files_to_remove.txt").write_text("".join(f"{x}\n" for x in lines))
    return root


def dfe_items(root: Path, split: str):
    return load_items(paper_profile({"dfe": root}, root.parent / "cache"), "dfe", split)


def test_bitdf_test_is_dfe_minus_removed_unknown_and_train_rows(tmp_path):
    root = bitdf_root(tmp_path)
    test = dfe_items(root, "test")
    d = "Deepfake-Eval-2024/videos"
    assert [(i.video_id, i.label) for i in test] == [(f"{d}/a_track_000.mp4", 0), (f"{d}/b_track_001.mp4", 1)]
    assert test[0].path == root / f"{d}/a_track_000.mp4"


def test_bitdf_train_and_val_are_the_whole_mix(tmp_path):
    root = bitdf_root(tmp_path)
    train = dfe_items(root, "train")
    assert [(i.video_id, i.label) for i in train] == [
        ("Deepfake-Eval-2024/videos/trained_track_000.mp4", 0), ("youtube/videos/y_track_000.mp4", 1)]
    assert [i.video_id for i in dfe_items(root, "val")] == ["facebook-real/videos/f_track_000.mp4"]


def test_bitdf_labels_other_than_real_fake_unknown_fail(tmp_path):
    root = bitdf_root(tmp_path)
    df = pd.read_csv(root / "metadata.csv")
    df.loc[1, "label"] = "Real"
    df.to_csv(root / "metadata.csv", index=False)
    with pytest.raises(DatasetError, match=r"line 3: label 'Real'"):
        dfe_items(root, "test")


def test_bitdf_missing_removal_list_says_where_to_put_it(tmp_path):
    root = bitdf_root(tmp_path)
    (root / "files_to_remove.txt").unlink()
    with pytest.raises(DatasetError, match=r"files_to_remove\.txt not found.*danoneata/veridiq"):
        dfe_items(root, "test")
    assert len(dfe_items(root, "train")) == 2  # train/val do not need it
    (root / "val_labels.csv").unlink()
    with pytest.raises(DatasetError, match=r"val_labels\.csv not found"):
        dfe_items(root, "val")


def test_bitdf_removal_list_that_matches_nothing_warns(tmp_path):
    root = bitdf_root(tmp_path, removal=["Deepfake-Eval-2024/feats/a_track_000.npz"])
    with pytest.warns(UserWarning, match="no line of"):
        assert len(dfe_items(root, "test")) == 3  # a, b and gone: nothing removed
    (root / "files_to_remove.txt").write_text("")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(dfe_items(root, "test")) == 3  # an empty list removes nothing, silently


def test_plain_dfe_layout_still_reads_split_lists_and_integer_metadata(tmp_path):
    """The synthetic benchmark's DFE-like domain (split lists; metadata.csv with 0/1 labels)."""
    root = tmp_path / "dfe"
    (root / "splits").mkdir(parents=True)
    (root / "splits" / "test_labels.csv").write_text("path,label\nvideos/a_track_000.mp4,1\n")
    (root / "metadata.csv").write_text("path,label,split\nvideos/a_track_000.mp4,1,test\n"
                                       "videos/b_track_000.mp4,0,train\n")
    prof = Profile(name="demo", data_roots={"dfe": root}, cache_dir=tmp_path, synthetic=True)
    assert [(i.video_id, i.label) for i in load_items(prof, "dfe", "test")] == [("videos/a_track_000.mp4", 1)]
    (root / "splits" / "test_labels.csv").unlink()
    assert [i.video_id for i in load_items(prof, "dfe", "train")] == ["videos/b_track_000.mp4"]


def test_check_data_reads_a_bitdf_root(tmp_path):
    root = bitdf_root(tmp_path)
    report = check_dataset(root, "dfe", sample=0)
    assert not [p for p in report.problems if p.kind in ("metadata", "split-list")]
    assert report.counts["test"]["listed"] == 2 and report.counts["train"]["listed"] == 2
    (root / "files_to_remove.txt").unlink()
    report = check_dataset(root, "dfe", sample=0)
    assert any(p.kind == "split-list" and "files_to_remove" in p.message for p in report.problems)


# -- AV1M's real-only split (anomaly detectors' training data) --------------------------------
def av1m_root(tmp_path: Path) -> Path:
    root = tmp_path / "AV1M"
    root.mkdir()
    (root / "train_metadata.json").write_text("[]")
    return root


@pytest.mark.slow
def test_shipped_real_only_split_is_avh_align_45k_5k(tmp_path):
    root = av1m_root(tmp_path)
    prof = paper_profile({"av1m": root}, tmp_path / "cache")
    train, val = (load_items(prof, "av1m", s) for s in ("real_train", "real_val"))
    assert (len(train), len(val)) == (45_000, 5_000)
    assert {i.label for i in train + val} == {0}
    assert all(i.path.parent.parent.parent.parent == root / "train" and i.path.name == "real.mp4"
               for i in train + val)
    ids_t, ids_v = {i.video_id for i in train}, {i.video_id for i in val}
    assert not ids_t & ids_v
    probe_reals = {p for s in ("train", "val") for p, y in
                   pd.read_csv(SHIPPED / f"{s}_labels.csv").itertuples(index=False) if y == 0}
    assert probe_reals <= ids_t | ids_v  # every real of the probe's train/val lists
    test = pd.read_csv(SHIPPED / "test_labels.csv")
    assert not set(test.path) & (ids_t | ids_v)


def test_real_only_split_from_fabricated_lists(tmp_path):
    root = av1m_root(tmp_path)
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "real_train_labels.csv").write_text("path,label\nid1/v/00001/real.mp4,0\nid2/v/00002/real.mp4,0\n")
    prof = Profile(name="paper", data_roots={"av1m": root}, cache_dir=tmp_path, synthetic=False,
                   splits_dirs={"av1m": lists})
    items = load_items(prof, "av1m", "real_train")
    assert [i.path for i in items] == [root / "train" / "id1/v/00001/real.mp4", root / "train" / "id2/v/00002/real.mp4"]
    with pytest.raises(DatasetError, match="real_val_labels.csv not found"):
        load_items(prof, "av1m", "real_val")
    with pytest.raises(DatasetError, match="no 'real_train' split"):
        load_items(prof, "favc", "real_train")
    counts = check_dataset(root, "av1m", splits_dir=lists, sample=0).counts  # listed: checked
    assert counts["real_train"]["listed"] == counts["real_train"]["missing"] == 2
    assert "real_val" not in counts


@pytest.mark.slow
def test_anomaly_detectors_train_on_the_real_only_split(tiny_home, tmp_path, monkeypatch):
    """On a real-data profile Table 4's NTP and sync read AV1M's real_train / real_val stores
    (extracted by the page when missing), never the probe's train / val; the demo keeps its
    own train / val reals. The real-only lists here are fabricated from the tiny benchmark."""
    from dataclasses import replace

    from conftest import TINY_SCALE

    from avdd.analysis import anomaly
    from avdd.backbones import describe
    from avdd.config import make_profile
    from avdd.features.extract import store_dir
    from avdd.features.prepare import prepare
    from avdd.features.store import FeatureSet

    demo = make_profile("demo", home=tiny_home, synth_scale=TINY_SCALE)
    lists = tmp_path / "lists"
    lists.mkdir()
    src = Path(demo.data_roots["av1m"]) / "splits"
    for s in ("train", "val", "test"):
        df = pd.read_csv(src / f"{s}_labels.csv")
        df.to_csv(lists / f"{s}_labels.csv", index=False)
        if s != "test":
            df[df.label == 0].iloc[::-1].to_csv(lists / f"real_{s}_labels.csv", index=False)
    prof = Profile(name="paper", data_roots={d: demo.data_roots[d] for d in ("av1m", "favc")},
                   cache_dir=tmp_path / "cache", synthetic=False,
                   splits_dirs={"av1m": lists, "favc": Path(demo.data_roots["favc"]) / "splits"})
    assert anomaly.training_splits(prof) == ("real_train", "real_val")
    assert anomaly.training_splits(demo) == ("train", "val")
    assert anomaly.training_splits(prof, "favc") == ("train", "val")
    rows = {"LM": ("logmel",), "MP + LM": ("mouth-pixels", "logmel")}
    # What the page needs besides the real-only stores (tests=("av1m",): the FAVC probes of
    # the "sup" column and the AV1M test set); the real-only ones are anomaly_table's to make.
    for ds, split in (("favc", "train"), ("favc", "val"), ("av1m", "test")):
        prepare(prof, ["logmel", "mouth-pixels"], [ds], splits=[split], progress=False)
    seen = []
    opened = anomaly.feature_set
    monkeypatch.setattr(anomaly, "feature_set", lambda *a: seen.append(a[2:]) or opened(*a))
    res = anomaly.anomaly_table(prof, rows, ntp_params={"d_model": 16, "n_layers": 1, "n_heads": 2,
                                                        "dim_feedforward": 32, "max_epochs": 2},
                                sync_params={"hidden": 16, "widths": (16,), "max_epochs": 2},
                                tests=("av1m",), n_bootstrap=10)
    assert {("av1m", "real_train"), ("av1m", "real_val")} <= set(seen)
    assert ("av1m", "train") not in seen and ("av1m", "val") not in seen
    for split in ("real_train", "real_val"):
        want = (pd.read_csv(lists / f"{split}_labels.csv").path).tolist()
        for b in ("logmel", "mouth-pixels"):
            fs = FeatureSet.open(store_dir(prof, describe(b), "av1m", split))
            assert sorted(fs.ids) == sorted(want) and set(fs.labels) == {0}
    assert set(res["table"].method) == {"sup", "ntp", "sync"}
    seen.clear()
    # The demo profile on the same stores: the probe's train / val reals, as before.
    demo_same_stores = replace(demo, cache_dir=prof.cache_dir)
    for split in ("train", "val"):
        prepare(demo_same_stores, ["logmel"], ["av1m"], splits=[split], progress=False)
    anomaly.anomaly_table(demo_same_stores, {"LM": ("logmel",)}, tests=("av1m",),
                          ntp_params={"d_model": 16, "n_layers": 1, "n_heads": 2, "dim_feedforward": 32,
                                      "max_epochs": 1}, n_bootstrap=10)
    assert ("av1m", "train") in seen and ("av1m", "real_train") not in seen
