import json
import shutil
from dataclasses import replace

import numpy as np

from avdd.datasets import load_items
from avdd.extract import extract, extract_many
from avdd.store import FeatureSet

BACKBONES = ["logmel", "mouth-pixels"]


def test_extract_resumes_without_recomputing(tiny_profile):
    first = extract(tiny_profile, BACKBONES, "favc", "train", limit=3, progress=False)
    assert [r.extracted for r in first] == [3, 3]
    again = extract(tiny_profile, BACKBONES, "favc", "train", progress=False)
    n = len(load_items(tiny_profile, "favc", "train"))
    assert [(r.already_done, r.extracted, r.failed) for r in again] == [(3, n - 3, 0)] * 2
    fs = FeatureSet.open(again[0].store)
    assert len(fs) == n and len(set(fs.ids)) == n
    # Features are 25 Hz: one feature frame per video frame (within rounding).
    item = {i.video_id: i for i in load_items(tiny_profile, "favc", "train")}[fs.ids[0]]
    assert abs(len(fs[0]) - len(item.annotation["mouth_centre"])) <= 1


def test_parallel_equals_serial(tiny_profile, tmp_path):
    a = extract_many(tiny_profile, ["logmel"], [("avlips", "test")], workers=1, progress=False)
    other = replace(tiny_profile, cache_dir=tmp_path / "other")
    b = extract_many(other, ["logmel"], [("avlips", "test")], workers=2, progress=False)
    fa, fb = FeatureSet.open(a[0].store), FeatureSet.open(b[0].store)
    assert sorted(fa.ids) == sorted(fb.ids)
    for i, vid in enumerate(fa.ids):
        np.testing.assert_array_equal(fa[i], fb[list(fb.ids).index(vid)])


def test_bad_media_is_recorded_and_the_run_goes_on(tiny_profile, tmp_path):
    root = tmp_path / "favc"
    shutil.copytree(tiny_profile.data_roots["favc"], root)
    prof = replace(tiny_profile, data_roots={**tiny_profile.data_roots, "favc": root})
    items = load_items(prof, "favc", "test")
    broken, empty = items[0].path, items[1].path
    broken.write_bytes(broken.read_bytes()[:300])  # truncated
    empty.write_bytes(b"")  # zero bytes
    reports = extract(prof, BACKBONES, "favc", "test", progress=False)
    for r in reports:
        assert (r.failed, r.extracted) == (2, len(items) - 2)
        logged = [json.loads(line) for line in r.failures_log.read_text().splitlines()]
        assert {rec["path"] for rec in logged} == {str(broken), str(empty)}
        assert all(str(rec["path"]) in rec["error"] for rec in logged)
    # Nothing already computed is lost; a rerun retries only the failed files.
    again = extract(prof, BACKBONES, "favc", "test", progress=False)
    assert [(r.already_done, r.failed) for r in again] == [(len(items) - 2, 2)] * 2
