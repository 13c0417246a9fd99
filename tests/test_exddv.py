"""ExDDV adapter: the released ExDDV.csv format (hand-written rows in that format)."""

import dataclasses

import pytest

from avdd.config import DATASETS, Profile, demo_profile
from avdd.datasets import DatasetError, load_items
from avdd.datasets.check import check_dataset

HEADER = "id,username,movie_name,text,dataset,manipulation,click_locations,difficulty,split\n"
ROWS = [
    # Two annotators on one test video: merged into one item with both sets of clicks.
    '0,Annotator1,890_837.mp4,"Blurry mouth, teeth merge.",Farceforensics++,FaceSwap,'
    '"{""100"": {""x"": 0.54, ""y"": 0.62}, ""12"": {""x"": 0.52, ""y"": 0.61}}",2,test\n',
    '1,Annotator2,890_837.mp4,The chin flickers.,Farceforensics++,FaceSwap,'
    '"{""40"": {""x"": 0.5, ""y"": 0.8}}",1,test\n',
    '2,Annotator1,iyheosista.mp4,Eyes.,DeepfakeDetection,dfdc_train_part_49,'
    '"{""7"": {""x"": 0.3, ""y"": 0.25}}",3,test\n',
    '3,Annotator2,553_W040.mp4,Teeth.,Deeperforensics,end_to_end,'
    '"{""5"": {""x"": 0.1, ""y"": 0.2}}",3,train\n',
]


REALS = ("movie_name,full_path,split\n"
         "000.mp4,/faceforensics/ff++/original_sequences/youtube/c23/videos/000.mp4,test\n"
         "002.mp4,/faceforensics/ff++/original_sequences/youtube/c23/videos/002.mp4,train\n"
         "004.mp4,/faceforensics/ff++/original_sequences/youtube/c23/videos/004.mp4,val\n")


def _profile(root, tmp_path):
    return Profile(name="paper", data_roots={"exddv": root}, cache_dir=tmp_path / "cache",
                   synthetic=False)


@pytest.fixture
def exddv_root(tmp_path):
    root = tmp_path / "exddv"
    root.mkdir()
    (root / "ExDDV.csv").write_text(HEADER + "".join(ROWS))
    (root / "ExDDV_reals_FF++.csv").write_text(REALS)  # veridiq's list, as released
    return root


def test_clicks_are_read_and_merged_per_video(exddv_root, tmp_path):
    items = load_items(_profile(exddv_root, tmp_path), "exddv", "test")
    assert [i.video_id for i in items] == ["Farceforensics++/FaceSwap/890_837.mp4",
                                           "DeepfakeDetection/dfdc_train_part_49/iyheosista.mp4",
                                           "real/000.mp4"]
    first = items[0]
    assert first.label == 1 and first.split == "test" and first.dataset == "exddv"
    assert first.path == exddv_root / "Farceforensics++" / "FaceSwap" / "890_837.mp4"
    assert first.annotation["clicks"] == [[12, 0.52, 0.61], [40, 0.5, 0.8], [100, 0.54, 0.62]]
    assert first.annotation["annotators"] == ["Annotator1", "Annotator2"]
    assert first.annotation["click_frame_unit"] == "source frame index"
    assert [i.label for i in load_items(_profile(exddv_root, tmp_path), "exddv", "train")] == [1, 0]


def test_movie_path_column_and_reals(exddv_root, tmp_path):
    (exddv_root / "ExDDV.csv").write_text(
        HEADER.rstrip("\n") + ",movie_path\n" + ROWS[2].rstrip("\n") + ",/videos/dfdc/iy.mp4\n")
    items = load_items(_profile(exddv_root, tmp_path), "exddv", "test")
    # The reals' full_path is read under the root (the paper's code prefixed /data).
    assert [str(i.path) for i in items] == [
        "/videos/dfdc/iy.mp4",
        str(exddv_root / "faceforensics/ff++/original_sequences/youtube/c23/videos/000.mp4")]
    assert [i.label for i in items] == [1, 0] and items[1].annotation is None
    assert items[1].video_id == "real/000.mp4"


def test_without_the_reals_list_every_split_fails(exddv_root, tmp_path):
    """ExDDV has only fakes: a probe trained without the FF++ reals would see one class."""
    prof = _profile(exddv_root, tmp_path)
    (exddv_root / "ExDDV_reals_FF++.csv").unlink()
    for split in ("train", "test"):
        with pytest.raises(DatasetError, match=r"ExDDV_reals_FF\+\+\.csv not found.*"
                                               r"danoneata/veridiq"):
            load_items(prof, "exddv", split)
    (exddv_root / "ExDDV_reals_FF++.csv").write_text("path,split\na.mp4,train\n")
    with pytest.raises(DatasetError, match="needs columns full_path,split"):
        load_items(prof, "exddv", "train")
    (exddv_root / "ExDDV_reals_FF++.csv").write_text(REALS.rsplit("\n", 2)[0] + "\n")  # no val
    with pytest.raises(DatasetError, match="no 'val' rows"):
        load_items(prof, "exddv", "val")


def test_malformed_annotations_are_named(exddv_root, tmp_path):
    prof = _profile(exddv_root, tmp_path)
    (exddv_root / "ExDDV.csv").write_text(HEADER + ROWS[0].replace('""x""', '""xx""', 1))
    with pytest.raises(DatasetError, match=r"ExDDV\.csv \(Farceforensics\+\+/FaceSwap/890_837"
                                           r"\.mp4\): click_locations"):
        load_items(prof, "exddv", "test")
    (exddv_root / "ExDDV.csv").write_text("id,movie_name\n0,a.mp4\n")
    with pytest.raises(DatasetError, match=r"lack column\(s\) \['click_locations', 'dataset'"):
        load_items(prof, "exddv", "test")
    (exddv_root / "ExDDV.csv").write_text(HEADER + ROWS[3])
    with pytest.raises(DatasetError, match="no 'val' rows"):
        load_items(prof, "exddv", "val")
    (exddv_root / "ExDDV.csv").unlink()
    with pytest.raises(DatasetError, match="vladhondru25/ExDDV"):
        load_items(prof, "exddv", "test")


def test_exddv_stays_out_of_the_demo(tmp_path):
    assert "exddv" not in DATASETS  # the demo never synthesises or extracts it
    with pytest.raises(DatasetError, match="no data root for exddv"):
        load_items(demo_profile(tmp_path), "exddv", "test")
    # A paper profile gains ExDDV by naming its root.
    prof = dataclasses.replace(demo_profile(tmp_path), synthetic=False,
                               data_roots={"exddv": tmp_path / "none"})
    with pytest.raises(DatasetError, match="exddv root .* does not exist"):
        load_items(prof, "exddv", "test")


def test_check_data_reports_missing_exddv_videos(exddv_root):
    report = check_dataset(exddv_root, "exddv", sample=2)
    assert report.counts["test"]["listed"] == 3 and report.counts["test"]["missing"] == 3
    assert report.counts["test"]["real"] == 1
    assert "val" not in report.counts  # the fixture has no val rows: reported below
    assert any(p.kind == "split-list" and "no 'val' rows" in p.message for p in report.problems)
    assert not report.ok
    (exddv_root / "ExDDV_reals_FF++.csv").unlink()  # the reals list is part of the check
    report = check_dataset(exddv_root, "exddv", sample=2)
    assert "test" not in report.counts
    assert any(p.kind == "split-list" and "ExDDV_reals_FF++.csv not found" in p.message
               for p in report.problems)
