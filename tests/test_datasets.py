import json

import pytest

from avdd.config import DATASETS, demo_profile, paper_profile
from avdd.datasets import DatasetError, load_items
from avdd.datasets.av1m import keep_for_evaluation
from avdd.datasets.base import read_split_csv


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def av1m_root(tmp_path):
    root = tmp_path / "av1m"
    meta = [
        {"file": "id1/v/00001/real.mp4", "modify_type": "real", "fake_segments": [],
         "audio_fake_segments": [], "visual_fake_segments": []},
        {"file": "id1/v/00001/fake_video_fake_audio.mp4", "modify_type": "both-modified",
         "fake_segments": [[0.5, 0.9]], "audio_fake_segments": [[0.5, 0.9]],
         "visual_fake_segments": [[0.5, 0.9]]},
        {"file": "id1/v/00001/real_video_fake_audio.mp4", "modify_type": "audio_modified",
         "fake_segments": [[0.5, 0.9]], "audio_fake_segments": [[0.5, 0.9]],
         "visual_fake_segments": []},
    ]
    write(root / "train_metadata.json", json.dumps(meta))
    write(root / "splits" / "train_labels.csv",
          "path,label\n" + "\n".join(f"{m['file']},{int(bool(m['fake_segments']))}"
                                     for m in meta) + "\n")
    return root


def test_av1m_reads_segments_and_applies_the_evaluation_rule(av1m_root, tmp_path):
    prof = demo_profile(tmp_path)
    prof = type(prof)(**{**prof.__dict__, "data_roots": {"av1m": av1m_root}})
    items = load_items(prof, "av1m", "train")
    assert [i.label for i in items] == [0, 1]  # the audio-only fake is dropped
    assert items[1].fake_segments == ((0.5, 0.9),)
    assert items[1].path == av1m_root / "train" / "id1/v/00001/fake_video_fake_audio.mp4"
    assert not keep_for_evaluation({"fake_segments": [[0, 1]], "audio_fake_segments": [[0, 1]]})


@pytest.mark.slow
def test_paper_profile_uses_shipped_split_lists(tmp_path):
    write(tmp_path / "train_metadata.json", "[]")  # AV1M's filter needs its metadata
    prof = paper_profile({d: tmp_path for d in DATASETS}, tmp_path / "cache")
    items = load_items(prof, "favc", "test")
    assert len(items) == 3508
    assert sum(i.label for i in items) == 3357  # SPEC: 151 real / 3,357 fake
    assert len(load_items(prof, "av1m", "train")) == 22972


def test_bad_split_lists_are_named(tmp_path):
    write(tmp_path / "a.csv", "path,lab\nx.mp4,0\n")
    with pytest.raises(DatasetError, match="a.csv lacks column"):
        read_split_csv(tmp_path / "a.csv")
    write(tmp_path / "b.csv", "path,label\nx.mp4,0\ny.mp4,maybe\n")
    with pytest.raises(DatasetError, match="b.csv line 3"):
        read_split_csv(tmp_path / "b.csv")
    with pytest.raises(DatasetError, match="not found"):
        read_split_csv(tmp_path / "missing.csv")


def test_unknown_dataset_and_split(tmp_path):
    prof = demo_profile(tmp_path)
    with pytest.raises(DatasetError, match="unknown dataset"):
        load_items(prof, "nope", "test")
    with pytest.raises(DatasetError, match="no 'train' split"):
        load_items(prof, "avlips", "train")
    with pytest.raises(DatasetError, match="does not exist"):
        load_items(prof, "favc", "test")


def test_av1m_without_its_metadata_fails_instead_of_skipping_the_filter(av1m_root, tmp_path):
    prof = demo_profile(tmp_path)
    prof = type(prof)(**{**prof.__dict__, "data_roots": {"av1m": av1m_root}})
    (av1m_root / "train_metadata.json").unlink()
    with pytest.raises(DatasetError, match=r"train_metadata\.json not found.*both audio and video"):
        load_items(prof, "av1m", "train")


def test_an_av1m_record_with_unreadable_segments_is_named_not_dropped(av1m_root, tmp_path):
    prof = demo_profile(tmp_path)
    prof = type(prof)(**{**prof.__dict__, "data_roots": {"av1m": av1m_root}})
    meta = json.loads((av1m_root / "train_metadata.json").read_text())
    meta[1]["fake_segments"] = "[[0.5, 0.9]]"  # a string, as a hand-edited file may have
    write(av1m_root / "train_metadata.json", json.dumps(meta))
    with pytest.raises(DatasetError, match=r"train_metadata\.json record 1 .*fake_segments"):
        load_items(prof, "av1m", "train")


def test_annotations_are_parsed_once_per_content_and_an_edit_is_seen(tmp_path, monkeypatch):
    """Every page lists the splits ~130 times: the jsonl is parsed once per content, callers
    get their own outer dict, and an edit of the same size (within the clock's resolution)
    is read again."""
    import json

    from avdd.datasets import base

    f = tmp_path / "synth_annotations.jsonl"
    f.write_text('{"path": "a.mp4", "label": 0}\n{"path": "b.mp4", "label": 1}\n')
    calls = []
    real = json.loads
    monkeypatch.setattr(base.json, "loads", lambda s: calls.append(s) or real(s))
    first = base.read_annotations(tmp_path)
    second = base.read_annotations(tmp_path)
    assert first == second and first is not second and len(calls) == 2
    second.pop("a.mp4")
    assert "a.mp4" in base.read_annotations(tmp_path)
    f.write_text('{"path": "a.mp4", "label": 1}\n{"path": "b.mp4", "label": 0}\n')  # same size
    assert base.read_annotations(tmp_path)["a.mp4"]["label"] == 1 and len(calls) == 4
    f.write_bytes(b"\xff\xfe\n")
    with pytest.raises(base.DatasetError, match="not UTF-8"):
        base.read_annotations(tmp_path)
