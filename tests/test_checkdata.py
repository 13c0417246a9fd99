"""``avdd check-data``: hand-written dataset roots with metadata edge cases."""

import json

import numpy as np
import pytest

from avdd.cli import main
from avdd.config import Profile
from avdd.datasets import DatasetError, load_items
from avdd.datasets.check import check_av1m_metadata, check_dataset
from avdd.media import write_clip

GOOD = {"file": "id1/v1/00001/real.mp4", "original": None, "split": "val", "modify_type": "real",
        "audio_model": None, "fake_segments": [], "visual_fake_segments": [],
        "audio_fake_segments": [], "video_frames": 10, "audio_frames": 6400}
FAKE = {**GOOD, "file": "id1/v1/00001/fake_video_fake_audio.mp4", "modify_type": "both-modified",
        "fake_segments": [[0.1, 0.3]], "visual_fake_segments": [[0.1, 0.3]],
        "audio_fake_segments": [[0.1, 0.3]]}


@pytest.fixture(scope="module")
def clip_bytes(tmp_path_factory):
    """One valid 0.4 s audio-visual mp4 (copied wherever a readable video is needed)."""
    rng = np.random.default_rng(0)
    path = write_clip(tmp_path_factory.mktemp("clip") / "c.mp4",
                      rng.integers(0, 255, (10, 32, 32, 3), dtype=np.uint8),
                      0.1 * rng.standard_normal(6400).astype(np.float32))
    return path.read_bytes()


def _av1m_root(tmp_path, clip_bytes, records, *, junk=False):
    """AV1M layout: val/<clip> files, val_metadata.json, splits/test_labels.csv."""
    root = tmp_path / "av1m"
    for rec in (GOOD, FAKE):
        f = root / "val" / rec["file"]
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"\x00garbage" * 50 if junk and rec is FAKE else clip_bytes)
    (root / "splits").mkdir()
    (root / "splits" / "test_labels.csv").write_text(
        f"path,label\n{GOOD['file']},0\n{FAKE['file']},1\nid1/v1/00002/real.mp4,0\n")
    for s in ("train", "val"):  # empty lists: the splits exist, with no videos
        (root / "splits" / f"{s}_labels.csv").write_text("path,label\n")
    meta = root / "val_metadata.json"
    meta.write_text(records if isinstance(records, str) else json.dumps(records))
    (root / "train_metadata.json").write_text("[]")  # the (empty) train and val lists' folder
    return root


def test_clean_root_passes_but_missing_and_unreadable_files_fail(tmp_path, clip_bytes, capsys):
    root = _av1m_root(tmp_path, clip_bytes, [GOOD, FAKE], junk=True)
    report = check_dataset(root, "av1m", sample=5)
    assert report.counts["test"]["listed"] == 3 and report.counts["test"]["fake"] == 1
    assert report.counts["test"]["missing"] == 1
    assert report.counts["test"]["decoded"] == 1 and report.counts["test"]["unreadable"] == 1
    kinds = sorted(p.kind for p in report.errors)
    assert kinds == ["media", "missing"]
    assert main(["check-data", str(root), "--dataset", "av1m"]) == 1
    out = capsys.readouterr().out
    assert "00002/real.mp4" in out and "PROBLEMS FOUND" in out
    (root / "val" / "id1/v1/00002").mkdir()
    (root / "val" / "id1/v1/00002/real.mp4").write_bytes(clip_bytes)
    (root / "val" / FAKE["file"]).write_bytes(clip_bytes)
    assert main(["check-data", str(root), "--dataset", "av1m", "--sample", "3"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("OK")


@pytest.mark.parametrize("records, expect", [
    ('[{"file": "a.mp4", "fake_segments": [[0.1, 0.2]]', "not valid JSON"),
    ({"file": "a.mp4"}, "expected a JSON list"),
    ([{"fake_segments": []}], "missing key(s) ['file', 'audio_fake_segments'"),
    ([{**FAKE, "fake_segments": "[[0.1, 0.3]]"}], "fake_segments: segments '[[0.1, 0.3]]'"),
    ([{**FAKE, "visual_fake_segments": [[0.5]]}], "visual_fake_segments"),
    ([{**FAKE, "audio_fake_segments": [[0.9, 0.3]]}], "start > end"),
    (["id1/v1/00001/real.mp4"], "is not an object"),
])
def test_av1m_metadata_edge_cases(tmp_path, clip_bytes, records, expect):
    root = _av1m_root(tmp_path, clip_bytes, records)
    problems = check_av1m_metadata(root / "val_metadata.json")
    assert len(problems) >= 1 and any(expect in p.message for p in problems), problems
    assert all(str(root / "val_metadata.json") in p.path for p in problems)
    assert not check_dataset(root, "av1m", sample=0).ok


def test_empty_segment_lists_and_absent_optional_keys_are_fine(tmp_path, clip_bytes):
    real = {k: v for k, v in GOOD.items() if k not in ("original", "audio_model")}
    root = _av1m_root(tmp_path, clip_bytes, [real, FAKE])
    (root / "splits" / "test_labels.csv").write_text(
        f"path,label\n{GOOD['file']},0\n{FAKE['file']},1\n")
    assert check_av1m_metadata(root / "val_metadata.json") == []
    assert check_dataset(root, "av1m", sample=0).ok


def test_adapter_errors_name_the_file_and_the_expected_layout(tmp_path, clip_bytes):
    bad = [{**FAKE, "fake_segments": "[[0.1, 0.3]]"}]
    root = _av1m_root(tmp_path, clip_bytes, bad)
    prof = Profile(name="paper", data_roots={"av1m": root}, cache_dir=tmp_path, synthetic=False,
                   splits_dirs={"av1m": root / "splits"})
    with pytest.raises(DatasetError, match=r"val_metadata\.json record 0 \(id1/v1/00001/fake_video"
                                           r"_fake_audio\.mp4\) fake_segments: segments .* "
                                           r"expected e\.g\."):
        load_items(prof, "av1m", "test")
    (root / "val_metadata.json").write_text(json.dumps([{"path": "x.mp4"}]))
    with pytest.raises(DatasetError, match=r"val_metadata\.json record 0: expected an object "
                                           r"with a 'file' key"):
        load_items(prof, "av1m", "test")


def test_dfe_and_favc_metadata(tmp_path, clip_bytes):
    dfe = tmp_path / "dfe"
    (dfe / "videos").mkdir(parents=True)
    (dfe / "videos" / "a_track_000.mp4").write_bytes(clip_bytes)
    (dfe / "metadata.csv").write_text('path,label,split\n"videos/a_track_000.mp4,1,test\n')
    report = check_dataset(dfe, "dfe", sample=0)
    assert not report.ok and "not a readable CSV" in report.problems[0].message
    (dfe / "metadata.csv").write_text("path,label,split\nvideos/a_track_000.mp4,2,test\n")
    assert any("labels other than 0/1" in p.message for p in check_dataset(dfe, "dfe").problems)
    (dfe / "metadata.csv").write_text("path,label,split\nvideos/a_track_000.mp4,1,test\n")
    report = check_dataset(dfe, "dfe", sample=1)
    assert report.ok and report.counts["test"]["decoded"] == 1
    favc = tmp_path / "favc"
    favc.mkdir()
    (favc / "meta_data.csv").write_text("")
    report = check_dataset(favc, "favc", splits_dir=tmp_path / "nowhere", sample=0)
    assert [p.kind for p in report.errors] == ["metadata"] + ["split-list"] * 3
    assert "FAVC meta_data.csv is not a readable CSV" in report.errors[0].message
    assert "split list" in report.errors[1].message


def test_synthetic_root_passes(tiny_profile, capsys):
    root = tiny_profile.data_roots["avlips"]
    assert main(["check-data", str(root), "--dataset", "avlips", "--sample", "2"]) == 0
    out = capsys.readouterr().out
    assert f"split lists: {root / 'splits'}" in out and "OK" in out


def test_a_root_without_split_lists_falls_back_to_the_shipped_paper_lists(tmp_path):
    from avdd.datasets import check

    shipped = check._splits_dir(tmp_path, "av1m", None)
    assert (shipped / "train_labels.csv").is_file(), shipped
