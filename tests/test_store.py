"""Feature store: round trip, crash recovery, resume, ranks, and the FeatureSet read view."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from avdd.features.store import FeatureSet, FeatureStore

DIM = 16


def video(i: int) -> np.ndarray:
    """Deterministic (T, DIM) features of video i (T varies with i)."""
    return np.random.default_rng(i).standard_normal((5 + 3 * (i % 7), DIM)).astype(np.float16)


def meta(i: int) -> dict:
    return {"fake_segments": [[0.1 * i, 0.1 * i + 0.2]]} if i % 2 else {"fake_segments": []}


def write(root, ids, *, rank=0, **kw) -> None:
    with FeatureStore(root, rank=rank, dim=DIM, fps=25.0, backbone="toy", config={"layer": -1},
                      provenance={"git": "abc"}, **kw) as store:
        for i in ids:
            store.append(f"vid{i:03d}", video(i), label=i % 2, **meta(i))


def contents(root) -> list:
    fs = FeatureSet.open(root)
    return [(fs.ids[k], fs.labels[k], fs.meta(k), np.asarray(fs[k]).tobytes()) for k in range(len(fs))]


def test_round_trip(tmp_path):
    write(tmp_path, range(10))
    fs = FeatureSet.open(tmp_path)
    assert len(fs) == 10 and fs.dim == DIM and fs.fps == 25.0
    assert list(fs.ids) == [f"vid{i:03d}" for i in range(10)]
    assert fs.labels.tolist() == [i % 2 for i in range(10)]
    assert fs.lengths.tolist() == [len(video(i)) for i in range(10)]
    for i in range(10):
        assert fs[i].dtype == np.float16 and np.array_equal(fs[i], video(i))
        assert fs.meta(i) == meta(i)
    assert fs.info["backbone"] == "toy" and fs.info["config"] == {"layer": -1}
    assert fs.info["provenance"] == {"git": "abc"}
    assert not fs[0].flags.writeable


def test_done_ids_and_append_again(tmp_path):
    write(tmp_path, range(4))
    store = FeatureStore(tmp_path)
    assert store.done_ids() == {f"vid{i:03d}" for i in range(4)}
    with pytest.raises(ValueError, match="already"):
        store.append("vid001", video(1))
    store.close()


def test_crash_leaves_torn_tail_then_resume_is_identical(tmp_path):
    write(tmp_path / "ref", range(8))
    crashed = tmp_path / "crashed"
    write(crashed, range(5))
    # A crash mid-append: orphan frame bytes after the last record, a torn index line.
    with open(crashed / "shard-00000.bin", "ab") as f:
        f.write(b"\x13" * 1000)
    with open(crashed / "index-00000.jsonl", "ab") as f:
        f.write(b'{"id": "vid005", "shard": "shard-00000.bin", "offs')
    assert len(FeatureSet.open(crashed)) == 5  # readers ignore the torn tail
    store = FeatureStore(crashed)
    todo = [i for i in range(8) if f"vid{i:03d}" not in store.done_ids()]
    assert todo == [5, 6, 7]
    store.close()
    write(crashed, todo)
    assert contents(crashed) == contents(tmp_path / "ref")
    for name in ("shard-00000.bin", "index-00000.jsonl"):
        assert (crashed / name).read_bytes() == (tmp_path / "ref" / name).read_bytes()


def test_index_line_without_its_data_is_dropped(tmp_path):
    # An index line that points past the end of the shard (e.g. the shard lost its tail in a
    # power cut without fsync) is not committed; the writer sets it aside before appending.
    from avdd.features.layout import DamagedRecord

    write(tmp_path, range(3))
    size = (tmp_path / "shard-00000.bin").stat().st_size
    os.truncate(tmp_path / "shard-00000.bin", size - 10)
    with pytest.warns(DamagedRecord, match="points past the end"):
        assert [str(i) for i in FeatureSet.open(tmp_path).ids] == ["vid000", "vid001"]
    with pytest.warns(DamagedRecord, match="moved to damaged-index-00000.jsonl"):
        write(tmp_path, [2])
    assert contents(tmp_path)[2][3] == video(2).tobytes()


WRITER = """
import sys, time
sys.path.insert(0, {tests!r})
from test_store import write
for i in range(400):
    write({root!r}, [i])  # one open/append/close each: the kill may hit any stage
    time.sleep(0.001)
"""


def test_sigkill_mid_writing_then_resume(tmp_path):
    write(tmp_path / "ref", range(400), durable=False)
    root = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", WRITER.format(tests=os.path.dirname(__file__), root=str(root))])
    index = root / "index-00000.jsonl"
    deadline = time.time() + 30
    while time.time() < deadline and (not index.exists() or index.read_bytes().count(b"\n") < 20):
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store = FeatureStore(root)
    done = store.done_ids()
    store.close()
    assert 20 <= len(done) < 400
    write(root, [i for i in range(400) if f"vid{i:03d}" not in done], durable=False)
    assert contents(root) == contents(tmp_path / "ref")


def test_ranks_merge_and_lock(tmp_path):
    write(tmp_path, range(0, 10, 2), rank=0)
    write(tmp_path, range(1, 10, 2), rank=3)
    fs = FeatureSet.open(tmp_path)
    assert sorted(fs.ids) == [f"vid{i:03d}" for i in range(10)]
    for k in range(len(fs)):
        assert np.array_equal(fs[k], video(int(fs.ids[k][3:])))
    assert FeatureStore(tmp_path, rank=1).done_ids() == set(fs.ids)
    first = FeatureStore(tmp_path, rank=0)
    first.append("extra", video(99))
    with pytest.raises(RuntimeError, match="another process"):
        FeatureStore(tmp_path, rank=0).append("extra2", video(98))
    first.close()


def test_duplicate_ids_across_ranks_are_refused(tmp_path):
    write(tmp_path, [1], rank=0)
    write(tmp_path, [1], rank=1)
    with pytest.raises(ValueError, match="more than one rank"):
        FeatureSet.open(tmp_path)


def test_store_json_is_checked(tmp_path):
    with pytest.raises(FileNotFoundError, match="dim= and fps="):
        FeatureStore(tmp_path / "new")
    write(tmp_path, [0])
    with pytest.raises(ValueError, match="dim"):
        FeatureStore(tmp_path, dim=DIM + 1)
    with pytest.raises(ValueError, match="config"):
        FeatureStore(tmp_path, config={"layer": 3})
    info = json.loads((tmp_path / "store.json").read_text())
    assert info["dtype"] == "float16" and info["dim"] == DIM


def test_append_validates(tmp_path):
    store = FeatureStore(tmp_path, dim=DIM, fps=25.0)
    with pytest.raises(ValueError, match="shape"):
        store.append("a", np.zeros((3, DIM + 1)))
    with pytest.raises(ValueError, match="shape"):
        store.append("a", np.zeros((0, DIM)))
    with pytest.raises(ValueError, match="finite"):
        store.append("a", np.full((3, DIM), 1e6))
    with pytest.raises(TypeError, match="JSON"):
        store.append("a", np.zeros((3, DIM)), bad=object())
    store.append("a", np.zeros((3, DIM)), n=np.int64(3), seg=np.array([1.0, 2.0]))
    store.close()
    fs = FeatureSet.open(tmp_path)
    assert fs.meta(0) == {"n": 3, "seg": [1.0, 2.0]} and fs.labels[0] == -1


def test_featureset_views(tmp_path):
    write(tmp_path, range(6))
    fs = FeatureSet.open(tmp_path)
    sub = fs.subset([4, 1])
    assert list(sub.ids) == ["vid004", "vid001"] and np.array_equal(sub[0], video(4))
    assert list(fs.subset(fs.labels == 1).ids) == ["vid001", "vid003", "vid005"]
    assert list(fs.select(["vid005", "vid000"]).ids) == ["vid005", "vid000"]
    with pytest.raises(KeyError, match="nope"):
        fs.select(["nope"])
    expected = np.linalg.norm(video(2).astype(np.float32), axis=1)
    np.testing.assert_allclose(fs.frame_norms(2), expected, rtol=1e-6)
    np.testing.assert_allclose(fs.subset([2]).frame_norms(0), expected, rtol=1e-6)  # shared cache
    fs.prefetch(np.arange(6))
    fs.release(np.arange(6))  # unmapped pages fault back in on the next read
    assert np.array_equal(fs[3], video(3))
    clone = pickle.loads(pickle.dumps(fs))  # e.g. to DataLoader workers: the map is reopened
    assert np.array_equal(clone[5], video(5))
    assert fs.nbytes == sum(len(video(i)) for i in range(6)) * DIM * 2


def test_drop_leading_frames_is_a_view_that_keeps_one_frame(tmp_path):
    write(tmp_path, range(4))
    fs = FeatureSet.open(tmp_path)
    cut = fs.drop_leading([0, 2, 10_000, 1])  # the third asks for more frames than it has
    assert list(cut.lengths) == [len(video(0)), len(video(1)) - 2, 1, len(video(3)) - 1]
    for i, k in enumerate([0, 2, len(video(2)) - 1, 1]):
        assert np.array_equal(cut[i], video(i)[k:])
        np.testing.assert_allclose(cut.frame_norms(i),  # the shared cache, at the right rows
                                   np.linalg.norm(video(i)[k:].astype(np.float32), axis=1),
                                   rtol=1e-6)
    assert list(cut.ids) == list(fs.ids) and cut.meta(1) == fs.meta(1)
    assert np.array_equal(cut.labels, fs.labels)
    with pytest.raises(ValueError, match="4 frame counts"):
        fs.drop_leading([1, 2])
    with pytest.raises(ValueError, match="4 frame counts"):
        fs.drop_leading([0, -1, 0, 0])


def test_from_arrays():
    arrays = [video(i).astype(np.float32) for i in range(3)]
    fs = FeatureSet.from_arrays(arrays, [0, 1, 1], fps=12.5, ids=["a", "b", "c"], meta=[{}, {"k": 1}, {}])
    assert fs.fps == 12.5 and fs.dim == DIM and fs.labels.tolist() == [0, 1, 1]
    assert fs[1].dtype == np.float16 and np.array_equal(fs[1], video(1))
    assert fs.meta(1) == {"k": 1} and list(fs.ids) == ["a", "b", "c"]
    assert FeatureSet.from_arrays(arrays).labels.tolist() == [-1, -1, -1]
    with pytest.raises(ValueError):
        FeatureSet.from_arrays([np.zeros((0, 4))])


# -- nothing lost, nothing misread (a full disk, damaged files) ---------------------------------
FULL_DISK = """
import resource, signal, sys
sys.path.insert(0, {tests!r})
from test_store import DIM, meta, video
from avdd.features.store import DiskFull, FeatureStore

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
store = FeatureStore({root!r}, dim=DIM, fps=25.0)
store.append("vid000", video(0), label=0)
shard = store.shard_path.stat().st_size
# The disk fills up half-way through video 1's frames.
resource.setrlimit(resource.RLIMIT_FSIZE, (shard + video(1).nbytes // 2, resource.RLIM_INFINITY))
try:
    store.append("vid001", video(1), label=1)
    print("no error")
except DiskFull as e:
    print("DiskFull:", e)
resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
store.append("vid002", video(2), label=0)  # space freed: the next append is sound
store.close()
"""


def test_a_full_disk_leaves_the_store_as_it_was(tmp_path):
    """On real files: the kernel refuses the write half-way (RLIMIT_FSIZE, as a full disk
    would); the failed append is rolled back and the next one reads back intact."""
    script = FULL_DISK.format(tests=os.path.dirname(__file__), root=str(tmp_path))
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert "DiskFull:" in run.stdout and str(tmp_path) in run.stdout
    assert "nothing already stored is lost" in run.stdout
    fs = FeatureSet.open(tmp_path)
    assert list(fs.ids) == ["vid000", "vid002"]
    np.testing.assert_array_equal(fs[0], video(0))
    np.testing.assert_array_equal(fs[1], video(2))
    assert (tmp_path / "shard-00000.bin").stat().st_size == video(0).nbytes + video(2).nbytes


def test_a_short_write_of_the_index_is_rolled_back(tmp_path, monkeypatch):
    import errno

    from avdd.features import store as store_mod

    st = FeatureStore(tmp_path, dim=DIM, fps=25.0)
    st.append("vid000", video(0))
    real = store_mod._write_all

    def index_full(f, data):  # the frames fit, the index line does not
        if f is st._index:
            f.write(memoryview(data)[:7])
            raise OSError(errno.ENOSPC, "No space left on device")
        real(f, data)

    monkeypatch.setattr(store_mod, "_write_all", index_full)
    with pytest.raises(store_mod.DiskFull, match="no space left to store 'vid001'"):
        st.append("vid001", video(1))
    monkeypatch.setattr(store_mod, "_write_all", real)
    st.append("vid002", video(2))
    st.close()
    assert contents(tmp_path) == [("vid000", -1, {}, video(0).tobytes()),
                                  ("vid002", -1, {}, video(2).tobytes())]


def _damage_line(root, lineno: int, text: bytes = b"{not json}") -> None:
    index = root / "index-00000.jsonl"
    lines = index.read_bytes().splitlines(keepends=True)
    lines[lineno - 1] = text + b"\n"
    index.write_bytes(b"".join(lines))


def test_a_damaged_line_in_the_middle_skips_that_video_only(tmp_path):
    from avdd.features.layout import DamagedRecord

    write(tmp_path, range(15))
    _damage_line(tmp_path, 6)
    with pytest.warns(DamagedRecord, match=r"index-00000\.jsonl:6: damaged"):
        fs = FeatureSet.open(tmp_path)
    assert len(fs) == 14 and "vid005" not in set(fs.ids)
    assert np.array_equal(fs[list(fs.ids).index("vid014")], video(14))
    # The writer keeps the 9 good videos after it, sets the line aside, re-extracts vid005.
    store = FeatureStore(tmp_path)
    assert store.done_ids() == {f"vid{i:03d}" for i in range(15) if i != 5}
    with pytest.warns(DamagedRecord, match="moved to damaged-index-00000.jsonl"):
        store.append("vid005", video(5), label=1, **meta(5))
    store.close()
    assert (tmp_path / "damaged-index-00000.jsonl").read_bytes() == b"{not json}\n"
    again = FeatureSet.open(tmp_path)  # silent now
    assert sorted(again.ids) == [f"vid{i:03d}" for i in range(15)]
    for k, vid in enumerate(again.ids):
        assert np.array_equal(again[k], video(int(vid[3:])))


def test_an_edited_label_or_dim_and_a_garbled_store_json_are_caught(tmp_path):
    from avdd.features.layout import DamagedRecord, StoreError

    write(tmp_path, range(3))
    index = tmp_path / "index-00000.jsonl"
    line = json.loads(index.read_bytes().splitlines()[1])
    line["label"] = 1 - line["label"]  # somebody "fixed" a label by hand
    _damage_line(tmp_path, 2, json.dumps(line).encode())
    with pytest.warns(DamagedRecord, match=r":2: damaged index line skipped \(its checksum"):
        assert list(FeatureSet.open(tmp_path).ids) == ["vid000", "vid002"]
    info_path = tmp_path / "store.json"
    info = json.loads(info_path.read_text())
    info_path.write_text(json.dumps({**info, "dim": DIM * 2}))
    with pytest.raises(StoreError, match=r"store\.json was edited"):
        FeatureSet.open(tmp_path)
    info_path.write_text('{"format": "avdd-feature-store/1", "dim": ')
    with pytest.raises(StoreError, match=r"store\.json is damaged"):
        FeatureSet.open(tmp_path)


def test_check_store_finds_a_flipped_bit(tmp_path, capsys):
    from avdd.cli import main

    write(tmp_path, range(4))
    assert main(["check-store", str(tmp_path)]) == 0
    assert "4 videos verified, 0 problems" in capsys.readouterr().out
    shard = tmp_path / "shard-00000.bin"
    data = bytearray(shard.read_bytes())
    data[video(0).nbytes + 3] ^= 0x10  # one bit of vid001's frames
    shard.write_bytes(bytes(data))
    assert main(["check-store", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "'vid001'" in out and "do not match their checksum" in out and str(shard) in out
    assert "3 videos verified, 1 problems" in out


def test_a_video_decoded_at_its_own_rate_says_so():
    fs = FeatureSet.from_arrays([np.ones((3, 2)), np.ones((4, 2))], fps=25.0,
                                meta=[{}, {"fps": 30.0}])
    assert (fs.video_fps(0), fs.video_fps(1)) == (25.0, 30.0)
