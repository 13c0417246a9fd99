"""The paper profile's data protocol on small fabricated layouts: Deepfake-Eval-2024 read the
BitDF way (string labels, removal list, DFE prefix)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest

from avdd.config import Profile, paper_profile
from avdd.datasets import DatasetError, load_items
from avdd.datasets.check import check_dataset

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
