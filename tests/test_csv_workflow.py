"""A dataset given as a CSV, end to end: ``check-data``, ``extract``, ``fit``, ``evaluate`` and
``score`` on a folder of 20 tiny clips; bad rows; the store key of a CSV dataset."""

import json

import numpy as np
import pandas as pd
import pytest

from avdd.analysis.fit_evaluate import parse_source
from avdd.analysis.operating_points import equal_error_rate, rates_at
from avdd.cli import main
from avdd.datasets import DatasetError, load_items
from avdd.datasets.csv import check_csv, csv_key, csv_profile, read_csv_dataset
from avdd.features.featureset import FeatureSet
from avdd.heads.probe import LinearProbe
from avdd.heads.probe_io import load_probe
from avdd.media import write_clip

SPLITS = ["train"] * 12 + ["val"] * 4 + ["test"] * 4


def write_folder(root, n=20):
    """``n`` one-second clips (32x32 noise video, 16 kHz audio) and ``data.csv``: fakes carry a
    tone in their audio, which log-mel features separate from the noise-only reals."""
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    rows = []
    for i in range(n):
        label = i % 2
        wav = 0.05 * rng.standard_normal(16000)
        if label:
            wav += 0.3 * np.sin(2 * np.pi * (600 + 40 * i) * t)
        write_clip(root / "clips" / f"v{i:02d}.mp4",
                   rng.integers(0, 255, (25, 32, 32, 3), dtype=np.uint8),
                   wav.astype(np.float32), threads=1)
        rows.append({"path": f"clips/v{i:02d}.mp4", "label": label, "split": SPLITS[i],
                     "fake_segments": "[[0.2, 0.6]]" if label else "[]"})
    pd.DataFrame(rows).to_csv(root / "data.csv", index=False)
    return root / "data.csv"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_folder(tmp_path_factory.mktemp("videos"))


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.mark.slow
def test_csv_folder_through_every_command(folder, tmp_path, capsys):
    cache, probe = tmp_path / "cache", tmp_path / "probe.safetensors"
    common = ["--cache-dir", cache, "--workers", 1]
    rc, out, _ = run(capsys, "check-data", "--csv", folder)
    assert rc == 0 and "OK" in out and "0 error(s)" in out
    assert out.splitlines()[2].split()[:4] == ["train", "12", "6", "6"]  # listed, real, fake

    rc, out, _ = run(capsys, "extract", "--csv", folder, "--backbone", "logmel", *common)
    assert rc == 0 and "12 extracted" in out and "4 extracted" in out
    rc, out, _ = run(capsys, "extract", "--csv", folder, "--backbone", "logmel", *common)
    assert rc == 0 and "0 extracted, 12 already done" in out  # resumable: nothing redone
    key = csv_key(folder, folder.parent)
    store = next((cache / "features").glob(f"logmel-*/{key}/train"))
    fs = FeatureSet.open(store)
    assert len(fs) == 12 and fs.labels.tolist() == [0, 1] * 6
    assert fs.meta(1)["fake_segments"] == [[0.2, 0.6]] and fs.meta(0)["fake_segments"] == []

    rc, out, err = run(capsys, "fit", "--train", f"{folder}:train", "--val", f"{folder}:val",
                       "--backbone", "logmel", "--out", probe, "--sweep", *common)
    assert rc == 0, err
    assert "fit lr=0.01" in err and "epoch" in err  # progress bars, one per rate
    assert "extract csv-" not in err  # every feature is stored: no extraction job starts
    fitted, meta = load_probe(probe)
    sweep = pd.DataFrame(meta["sweep"])
    assert sorted(sweep["lr"]) == [1e-4, 3e-4, 1e-3, 3e-3, 1e-2] and sweep["selected"].sum() == 1
    assert fitted.get_params() == LinearProbe(lr=fitted.lr).get_params()  # paper's otherwise
    assert fitted.lr == sweep.loc[sweep["selected"], "lr"].item()
    assert meta["backbone"] == "logmel" and meta["train"]["split"] == "train"
    assert meta["train"]["dataset"] == key and meta["val"]["videos"] == 4
    assert {"git_sha", "versions", "code", "created"} <= set(meta["provenance"])
    op = meta["operating_point"]
    val = FeatureSet.open(store.with_name("val"))
    # The stored threshold is the EER point of the validation scores, recomputed here.
    assert op["threshold"] == pytest.approx(
        equal_error_rate(val.labels, fitted.decision_function(val))[1])
    assert op["calibrated"] is False and op["temperature"] == 1.0

    rc, out, err = run(capsys, "evaluate", "--probe", probe, "--test", f"{folder}:test",
                       "--json", tmp_path / "ev.json", *common)
    assert rc == 0, err
    res = json.loads((tmp_path / "ev.json").read_text())
    test = FeatureSet.open(store.with_name("test"))
    s = fitted.decision_function(test)
    from sklearn.metrics import average_precision_score, roc_auc_score

    m = res["metrics"]
    assert m["auc"] == pytest.approx(roc_auc_score(test.labels, s))
    assert m["ap"] == pytest.approx(average_precision_score(test.labels, s))
    assert m["accuracy"] == pytest.approx(rates_at(test.labels, s, op["threshold"])["accuracy"])
    assert m["n"] == 4 and m["auc_ci_low"] <= m["auc"] <= m["auc_ci_high"]
    assert f"AUC {100 * m['auc']:.1f}" in out and "TPR" in out and "EER" in out

    clips = [folder.parent / p for p in ("clips/v16.mp4", "clips/v17.mp4")]
    rc, out, err = run(capsys, "score", *clips, "--probe", probe, "--json", tmp_path / "s.json")
    assert rc == 0, err
    assert f"score >= {op['threshold']:+.4f}" in out
    doc = json.loads((tmp_path / "s.json").read_text())
    assert doc["operating_point"]["threshold"] == op["threshold"]
    for v, score in zip(doc["videos"], s[:2]):  # v16, v17 are the first two test rows
        assert v["score"] == pytest.approx(score, abs=1e-4)
        assert v["fake"] == (v["score"] >= op["threshold"])


def test_check_data_names_every_bad_row(folder, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    clips = folder.parent / "clips"
    bad.write_text("path,label,split,fake_segments\n"
                   f"{clips}/v00.mp4,0,train,[]\n"          # line 2: good (absolute path)
                   "clips/missing.mp4,0,train,[]\n"          # 3: not found
                   f"{clips}/v01.mp4,2,train,[]\n"          # 4: label
                   f"{clips}/v00.mp4,0,train,[]\n"          # 5: duplicate of line 2
                   f'{clips}/v03.mp4,1,train,"[[1.0,"\n'    # 6: not JSON
                   f'{clips}/v05.mp4,1,train,"[[2, 1]]"\n'  # 7: start > end
                   f"{clips}/v07.mp4,1,a/b,[]\n")           # 8: split not a name
    rc, out, _ = run(capsys, "check-data", "--csv", bad, "--sample", 0)
    assert rc == 1 and "6 error(s)" in out and "PROBLEMS FOUND" in out
    for line, what in [(3, "not found under"), (4, "label '2' is not 0"),
                       (5, "duplicate of line 2"), (6, "is not JSON"),
                       (7, "start > end"), (8, "split 'a/b'")]:
        assert any(f"bad.csv line {line}" in x and what in x for x in out.splitlines()), line

    # extract refuses it (nothing is written) unless told to skip the bad rows
    cache = tmp_path / "cache"
    rc, _, err = run(capsys, "extract", "--csv", bad, "--backbone", "logmel",
                     "--cache-dir", cache, "--workers", 1)
    assert rc == 2 and "6 bad row(s)" in err and "--skip-bad-rows" in err
    assert "Traceback" not in err and not (cache / "features").exists()
    rc, out, err = run(capsys, "extract", "--csv", bad, "--backbone", "logmel",
                       "--cache-dir", cache, "--workers", 1, "--skip-bad-rows")
    assert rc == 0 and "1 extracted" in out and "leaving out 6 bad row(s)" in err

    nolabel = tmp_path / "nolabel.csv"
    nolabel.write_text("path\nclips/v00.mp4\n")
    rc, out, _ = run(capsys, "check-data", "--csv", nolabel)
    assert rc == 1 and "line 1: missing column(s) ['label']" in out


def test_csv_source_and_flag_errors_are_one_line(folder, tmp_path, capsys):
    cases = [
        (["check-data", "--csv", folder, "--dataset", "av1m"], "not both"),
        (["check-data"], "give ROOT --dataset NAME"),
        (["extract", "--dataset", "avlips", "--split", "train"], "avlips has splits ['test']"),
        (["extract", "--csv", folder, "--split", "holdout", "--backbone", "logmel"],
         "has splits ['train', 'val', 'test']"),
        (["extract", "--csv", tmp_path / "none.csv", "--backbone", "logmel"], "none.csv not found"),
        (["fit", "--train", folder, "--val", f"{folder}:val", "--backbone", "logmel", "--out",
          tmp_path / "p.safetensors"], "has a split column"),
        (["fit", "--train", f"{folder}:holdout", "--val", f"{folder}:val", "--backbone",
          "logmel", "--out", tmp_path / "p.safetensors"], "no split 'holdout'"),
        (["evaluate", "--probe", tmp_path / "none.safetensors", "--test", f"{folder}:test",
          "--cache-dir", tmp_path / "c"], "none.safetensors not found"),
    ]
    for argv, what in cases:
        rc, _, err = run(capsys, *argv)
        assert rc == 2 and what in err and "Traceback" not in err, (argv, err)
        assert len(err.strip().splitlines()) == 1, err


def test_store_key_follows_the_csv_and_its_root(folder, tmp_path):
    root = folder.parent
    copy = tmp_path / "data.csv"
    copy.write_bytes(folder.read_bytes())
    assert csv_key(copy, root) == csv_key(folder, root)  # same content, same root: one store
    assert csv_key(folder, tmp_path) != csv_key(folder, root)  # other videos
    edited = folder.read_text().replace("clips/v00.mp4,0", "clips/v00.mp4,1")
    copy.write_text(edited)
    assert csv_key(copy, root) != csv_key(folder, root)  # a changed label: a fresh store
    assert csv_key(copy, root).startswith("csv-data-")

    data = read_csv_dataset(folder, root)
    assert data.splits == ("train", "val", "test") and len(data.items("val")) == 4
    profile = csv_profile(data, tmp_path / "cache")
    assert [i.video_id for i in load_items(profile, data.key, "test")] == [
        f"clips/v{i}.mp4" for i in (16, 17, 18, 19)]
    # The CSV edited while a run holds its key: an error, never features under the old key.
    copy.write_bytes(folder.read_bytes())
    held = csv_profile(read_csv_dataset(copy, root), tmp_path / "cache")
    copy.write_text(edited)
    with pytest.raises(DatasetError, match="changed since this run started"):
        load_items(held, csv_key(folder, root), "train")


def test_csv_without_split_column_is_one_split(folder, tmp_path):
    plain = tmp_path / "plain.csv"
    df = pd.read_csv(folder)[["path", "label"]]
    df.to_csv(plain, index=False)
    rows, problems = check_csv(plain, folder.parent)
    assert not problems and set(rows["split"]) == {"all"} and len(rows) == 20
    src = parse_source(str(plain), root=folder.parent, cache_dir=tmp_path / "c")
    assert src.split == "all" and src.csv == plain.resolve()
    with pytest.raises(DatasetError, match="neither a .csv file nor DATASET:SPLIT"):
        parse_source("av1m")


def test_readme_csv_commands_parse():
    """The README's CSV section shows commands this parser accepts, every one of them."""
    import shlex
    from pathlib import Path

    from avdd.cli import build_parser

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = text.split("### Your own videos")[1].split("```bash")[1].split("```")[0]
    commands = [shlex.split(c.split("#")[0]) for c in block.replace("\\\n", " ").splitlines()
                if c.strip().startswith("avdd ")]
    assert [c[1] for c in commands] == ["check-data", "extract", "fit", "evaluate", "score"]
    for c in commands:
        build_parser().parse_args(c[1:])


def test_unreadable_video_is_recorded_and_left_out(folder, tmp_path, capsys):
    """A listed file that is no video: check-data says so, extract records it in the failures
    log and goes on, fit trains on the rest and says what it left out."""
    root = folder.parent
    (tmp_path / "junk.mp4").write_bytes(b"\x00not a video" * 40)
    df = pd.read_csv(folder)
    df = pd.concat([df, pd.DataFrame([{"path": str(tmp_path / "junk.mp4"), "label": 1,
                                       "split": "train", "fake_segments": "[]"}])])
    csv = tmp_path / "with_junk.csv"
    df.to_csv(csv, index=False)
    rc, out, _ = run(capsys, "check-data", "--csv", csv, "--root", root)
    assert rc == 1 and "junk.mp4" in out and "media" in out
    common = ["--root", root, "--cache-dir", tmp_path / "cache", "--workers", 1]
    rc, out, err = run(capsys, "extract", "--csv", csv, "--backbone", "logmel", "--split",
                       "train", *common)
    assert rc == 0 and "1 failed of 13" in out
    log = next((tmp_path / "cache").rglob("failures.jsonl"))
    assert json.loads(log.read_text())["path"] == str(tmp_path / "junk.mp4")
    rc, out, err = run(capsys, "extract", "--csv", csv, "--backbone", "logmel", "--split",
                       "train", "--strict", *common)
    assert rc == 1  # --strict: a failed video fails the run
    rc, out, err = run(capsys, "fit", "--train", f"{csv}:train", "--val", f"{csv}:val",
                       "--backbone", "logmel", "--out", tmp_path / "p.safetensors",
                       "--max-epochs", 3, "--bootstrap", 0, *common)
    assert rc == 0 and "1 of 13 video(s) failed extraction, left out" in err
    # the failed file is not retried by fit (extract does); val, not stored yet, is extracted
    assert f"extract {csv_key(csv, root)}/train" not in err
    assert f"extract {csv_key(csv, root)}/val" in err
    assert load_probe(tmp_path / "p.safetensors")[1]["train"]["videos"] == 12


def test_csv_extraction_in_torchrun_ranks_merges_to_the_single_run(folder, tmp_path, capsys,
                                                                   monkeypatch):
    common = ["--backbone", "logmel", "--split", "train", "--workers", 1]
    rc, _, _ = run(capsys, "extract", "--csv", folder, "--cache-dir", tmp_path / "one", *common)
    assert rc == 0
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        rc, out, _ = run(capsys, "extract", "--csv", folder, "--cache-dir", tmp_path / "two",
                         *common)
        assert rc == 0 and "6 extracted" in out
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    rc, out, _ = run(capsys, "merge", "--csv", folder, "--cache-dir", tmp_path / "two",
                     "--backbone", "logmel", "--split", "train")
    assert rc == 0 and "merged" in out
    one, two = (FeatureSet.open(next((tmp_path / d).rglob("train"))) for d in ("one", "two"))
    assert list(one.ids) == list(two.ids) and len(one) == 12
    assert all(np.array_equal(one[i], two[i]) for i in range(len(one)))


@pytest.mark.slow
def test_fit_and_evaluate_a_dataset_split_of_the_demo_profile(tiny_home, tmp_path, capsys):
    """``DATASET:SPLIT`` sources: the tiny synthetic benchmark's FAVC splits."""
    from conftest import TINY_SCALE

    demo = ["--home", tiny_home, "--synth-scale", TINY_SCALE, "--workers", 1]
    probe = tmp_path / "favc.safetensors"
    rc, out, err = run(capsys, "fit", "--train", "favc:train", "--val", "favc:val",
                       "--backbone", "logmel", "--out", probe, "--bootstrap", 100, *demo)
    assert rc == 0, err
    meta = load_probe(probe)[1]
    assert meta["train"]["dataset"] == "favc" and meta["train"]["profile"] == "demo"
    rc, out, err = run(capsys, "evaluate", "--probe", probe, "--test", "favc:test",
                       "--json", tmp_path / "ev.json", *demo)
    assert rc == 0, err
    m = json.loads((tmp_path / "ev.json").read_text())["metrics"]
    assert m["n"] > 0 and m["auc_ci_low"] <= m["auc"] <= m["auc_ci_high"]
