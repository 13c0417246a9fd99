"""Scale-out extraction: rank shards, torchrun, merging, the DataLoader/device path, bf16."""

import fcntl
import os
import shutil
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from conftest import require

from avdd.backbones import get_backbone
from avdd.datasets import load_items
from avdd.features.distributed import Shard, current_shard, merge_store
from avdd.features.extract import extract, store_dir
from avdd.features.store import FeatureSet, FeatureStore


def _same_store(a: FeatureSet, b: FeatureSet, *, ordered: bool = True, atol: float = 0.0):
    assert len(a) == len(b)
    if ordered:
        assert list(a.ids) == list(b.ids)
    pos = {v: i for i, v in enumerate(b.ids)}
    for i, vid in enumerate(a.ids):
        j = pos[vid]
        if atol:
            np.testing.assert_allclose(a[i].astype(np.float32), b[j].astype(np.float32), atol=atol)
        else:
            np.testing.assert_array_equal(a[i], b[j])
        assert a.meta(i) == b.meta(j) and a.labels[i] == b.labels[j]


def test_shard_from_environment():
    assert current_shard({}) == Shard()
    s = current_shard({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    assert (s.rank, s.world_size, s.local_rank, s.source) == (3, 4, 1, "torchrun")
    s = current_shard({"SLURM_PROCID": "2", "SLURM_NTASKS": "5", "SLURM_LOCALID": "0"})
    assert (s.rank, s.world_size, s.source) == (2, 5, "slurm")
    both = current_shard({"RANK": "0", "WORLD_SIZE": "2", "SLURM_PROCID": "7", "SLURM_NTASKS": "8"})
    assert both.source == "torchrun"
    assert Shard(1, 3).take(list(range(10))) == [1, 4, 7]
    with pytest.raises(ValueError):
        Shard(2, 2)


def test_ranks_then_merge_equal_a_single_process_run(tiny_profile, tmp_path):
    split = ("favc", "train")
    single = replace(tiny_profile, cache_dir=tmp_path / "single")
    ref = extract(single, ["logmel"], *split, progress=False)[0]
    multi = replace(tiny_profile, cache_dir=tmp_path / "multi")
    reports = [extract(multi, ["logmel"], *split, progress=False, shard=Shard(r, 3))[0]
               for r in (2, 0, 1)]  # ranks finish in any order
    assert sum(r.extracted for r in reports) == ref.extracted
    root = reports[0].store
    assert sorted(p.name for p in root.glob("index-*.jsonl")) == [
        "index-00000.jsonl", "index-00001.jsonl", "index-00002.jsonl"]
    # Before merging, readers already see every rank; a rerun skips everything.
    _same_store(FeatureSet.open(ref.store), FeatureSet.open(root), ordered=False)
    again = extract(multi, ["logmel"], *split, progress=False, shard=Shard(1, 3))[0]
    assert again.extracted == 0 and again.already_done == again.total
    order = [i.video_id for i in load_items(multi, *split)]
    merge_store(root, order)
    assert [p.name for p in root.glob("index-*.jsonl")] == ["index-00000.jsonl"]
    _same_store(FeatureSet.open(ref.store), FeatureSet.open(root))
    assert (root / "shard-00000.bin").read_bytes() == (ref.store / "shard-00000.bin").read_bytes()


def test_merge_refuses_a_running_rank_and_recovers_an_interrupted_merge(tiny_profile, tmp_path):
    prof = replace(tiny_profile, cache_dir=tmp_path)
    r = extract(prof, ["logmel"], "avlips", "test", progress=False, shard=Shard(0, 2))[0]
    extract(prof, ["logmel"], "avlips", "test", progress=False, shard=Shard(1, 2))
    root = r.store
    with open(root / "index-00001.jsonl", "rb") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        with pytest.raises(RuntimeError, match="still being written"):
            merge_store(root)
    shutil.copytree(root, tmp_path / "before")
    before = FeatureSet.open(tmp_path / "before")
    # Interrupted after the original was moved away and before the merged copy took its place.
    os.replace(root, root.with_name(root.name + ".premerge"))
    (root.with_name(root.name + ".merging")).mkdir()
    merge_store(root)
    _same_store(before, FeatureSet.open(root))


@pytest.mark.slow
def test_torchrun_two_processes_then_avdd_merge(tiny_profile, tmp_path):
    """`torchrun --standalone --nproc_per_node=2 -m avdd extract` + `avdd merge` = one process."""
    require(shutil.which("torchrun", path=os.path.dirname(sys.executable)) is not None,
            "torchrun is not installed beside this Python")
    home = tiny_profile.data_roots["favc"].parents[2]
    args = ["--home", str(home), "--synth-scale", str(tiny_profile.synth_scale),
            "--dataset", "avlips", "--split", "test", "--backbone", "logmel",
            "--backbone", "wav2vec2-tiny-random"]
    env = dict(os.environ)
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    # The demo profile keeps its cache under home: copy the tiny data to a fresh home.
    fresh = tmp_path / "home"
    shutil.copytree(home / tiny_profile.data_roots["favc"].parents[1].name,
                    fresh / tiny_profile.data_roots["favc"].parents[1].name,
                    ignore=shutil.ignore_patterns("cache"))
    args[1] = str(fresh)
    subprocess.run([torchrun, "--standalone", "--nproc_per_node=2", "-m", "avdd", "extract",
                    "--workers", "1", *args], check=True, env=env, timeout=300,
                   capture_output=True)
    subprocess.run([sys.executable, "-m", "avdd", "merge", *args],
                   check=True, env=env, timeout=120, capture_output=True)
    from avdd.config import make_profile

    prof = make_profile("demo", home=fresh, synth_scale=tiny_profile.synth_scale)
    single = replace(prof, cache_dir=tmp_path / "single")
    for name in ("logmel", "wav2vec2-tiny-random"):
        merged = store_dir(prof, get_backbone(name), "avlips", "test")
        assert [p.name for p in merged.glob("index-*.jsonl")] == ["index-00000.jsonl"]
        # Pool workers run one thread each, as torchrun's ranks (OMP_NUM_THREADS=1): the same
        # float reductions, hence bit-identical features.
        ref = extract(single, [name], "avlips", "test", progress=False, workers=2)[0]
        _same_store(FeatureSet.open(ref.store), FeatureSet.open(merged))


@pytest.mark.slow
def test_device_path_with_decode_workers_and_batches_equals_the_pool(tiny_profile, tmp_path):
    names = ["logmel", "wav2vec2-tiny-random", "clip-tiny-random"]
    pool = extract(replace(tiny_profile, cache_dir=tmp_path / "pool"), names, "avlips", "test",
                   progress=False, workers=2)
    dev = extract(replace(tiny_profile, cache_dir=tmp_path / "dev"), names, "avlips", "test",
                  progress=False, workers=2, device="cpu", batch_size=4)
    for a, b in zip(pool, dev):
        assert b.failed == 0 and b.extracted == a.extracted
        # Batched matmuls may round differently from single ones: equal up to fp16 rounding.
        _same_store(FeatureSet.open(a.store), FeatureSet.open(b.store), ordered=False,
                    atol=2e-3)


def test_batched_wav2vec2_equals_one_by_one():
    from avdd.media import Clip

    bb = get_backbone("wav2vec2-tiny-random")
    rng = np.random.default_rng(0)
    clips = [Clip(video=np.zeros((0, 0, 0, 3), np.uint8),
                  audio=rng.standard_normal(16000).astype(np.float32) * 0.1) for _ in range(3)]
    assert len({bb.batch_key(c) for c in clips}) == 1
    for one, batched in zip([bb(c) for c in clips], bb.batch(clips, [None] * 3)):
        np.testing.assert_allclose(one, batched, atol=1e-5)


@pytest.mark.slow
def test_bf16_is_a_separate_store_close_to_fp32(tiny_profile, tmp_path):
    prof = replace(tiny_profile, cache_dir=tmp_path)
    name = "clip-tiny-random"
    fp32 = extract(prof, [name], "avlips", "test", progress=False, device="cpu")[0]
    bf16 = extract(prof, [name], "avlips", "test", progress=False, device="cpu",
                   precision="bf16")[0]
    assert fp32.store != bf16.store and bf16.failed == 0
    assert FeatureStore(bf16.store).info["config"]["precision"] == "bf16"
    a, b = FeatureSet.open(fp32.store), FeatureSet.open(bf16.store)
    x, y = a[0].astype(np.float32), b[0].astype(np.float32)
    cos = (x * y).sum(1) / np.linalg.norm(x, axis=1) / np.linalg.norm(y, axis=1)
    assert cos.min() > 0.95 and not np.array_equal(x, y)
    with pytest.raises(ValueError, match="precision"):
        extract(prof, [name], "avlips", "test", progress=False, precision="fp8")
