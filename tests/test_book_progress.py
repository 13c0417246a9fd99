"""A book build that says what it is doing (issue 15.5): which notebook runs (k of n), what
its avdd code is doing in the kernel (avdd.progress, through a status file), and a closing
table of every page's time and whether it was recomputed or reused."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from avdd import progress
from avdd.report.book import execute_stale, following, summary

REPO = Path(__file__).resolve().parents[1]


def test_meter_reports_start_progress_with_eta_and_end(tmp_path, monkeypatch):
    status = tmp_path / "status.log"
    monkeypatch.setenv(progress.ENV, str(status))
    meter = progress.Meter("extracting av1m/train: logmel", 3, "videos", every=0)
    for _ in range(3):
        meter.update()
    meter.close()
    lines = status.read_text().splitlines()
    assert lines[0] == "extracting av1m/train: logmel: 0/3 videos"
    assert lines[1].startswith("extracting av1m/train: logmel: 1/3 videos, ETA ~")
    assert lines[2].startswith("extracting av1m/train: logmel: 2/3 videos, ETA ~")
    assert lines[3].startswith("extracting av1m/train: logmel: 3/3 videos in ")
    assert len(lines) == 4  # the last step is the closing line's, not an ETA of 0


def test_meter_throttles_and_nothing_is_written_unwatched(tmp_path, monkeypatch):
    status = tmp_path / "status.log"
    monkeypatch.setenv(progress.ENV, str(status))
    meter = progress.Meter("training", 100, every=3600)
    for _ in range(99):
        meter.update()
    assert len(status.read_text().splitlines()) == 1  # the start only: no ETA within `every`
    monkeypatch.delenv(progress.ENV)
    progress.report("nobody watches")
    progress.Meter("unwatched", 5).close()
    assert "nobody" not in status.read_text() and len(status.read_text().splitlines()) == 1


def test_a_report_is_one_line(tmp_path, monkeypatch):
    status = tmp_path / "status.log"
    monkeypatch.setenv(progress.ENV, str(status))
    progress.report("computing\nlinear_probe_grid   (not cached)")
    assert status.read_text() == "computing linear_probe_grid (not cached)\n"


def test_following_passes_each_whole_line_then_removes_the_file():
    got: list[str] = []
    with following(got.append, every=0.01) as path:
        with open(path, "a") as fh:
            fh.write("synthesising: 0/4 tasks\nextracting: 1/")
            fh.flush()
            threading.Event().wait(0.1)
            assert got == ["synthesising: 0/4 tasks"]  # the half-written line waits
            fh.write("9 videos\n")
    assert got == ["synthesising: 0/4 tasks", "extracting: 1/9 videos"]
    assert not path.exists()


def test_summary_lists_pages_their_times_and_outcomes():
    table = summary([("table1_representations", 130.4, "recomputed"),
                     ("table2_linear_probing", 2.0, "reused"), ("fig3_temporal", 9, "failed")],
                    wall=100)
    lines = table.splitlines()
    assert lines[0].split() == ["page", "time", "outcome"]
    assert lines[1].split() == ["table1_representations", "2", "min", "10", "s", "recomputed"]
    assert lines[2].split() == ["table2_linear_probing", "2", "s", "reused"]
    assert lines[3].split()[-1] == "failed"
    assert lines[4].split() == ["pages,", "summed", "2", "min", "21", "s"]
    assert lines[5].split() == ["wall", "time", "1", "min", "40", "s"]


def extension():
    sys.path.insert(0, str(REPO / "book" / "_ext"))
    try:
        import avdd_execute
    finally:
        sys.path.pop(0)
    return avdd_execute


def test_the_build_numbers_pages_relays_their_status_and_ends_with_a_table(
        monkeypatch, tmp_path, capsys):
    avdd_execute = extension()
    ran = []

    def fake(nb, out, params, cwd, files, status):
        name = Path(nb).stem
        ran.append(name)
        if name == "fig3_temporal":
            raise RuntimeError("a cell failed")
        status(f"extracting av1m/test: logmel: 3/9 videos, ETA ~2 s ({name})")
        return name != "table3_sota"

    monkeypatch.setattr(avdd_execute, "execute_stale", fake)
    monkeypatch.delenv("AVDD_BOOK_PARAMETERS", raising=False)
    (tmp_path / "book").mkdir()
    config = SimpleNamespace(avdd_parameters={}, avdd_lanes=[
        ["table2_linear_probing", "table3_sota"], ["fig3_temporal"]],
        avdd_notebooks=["table1_representations", "table2_linear_probing", "table3_sota",
                        "fig3_temporal"])
    with pytest.raises(RuntimeError, match="a cell failed"):
        avdd_execute._execute(SimpleNamespace(srcdir=str(tmp_path / "book")), config)
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "avdd book [1/4] table1_representations: starting"
    assert "avdd book [1/4] table1_representations: extracting av1m/test: logmel: 3/9 " \
           "videos, ETA ~2 s (table1_representations)" in err
    starts = sorted(line for line in err if line.endswith(": starting"))
    assert [s.split("]")[0] for s in starts] == [f"avdd book [{k}/4" for k in range(1, 5)]
    table = err[err.index("avdd book: pages") + 1:]
    outcomes = {row.split()[0]: row.split()[-1] for row in table[1:5]}
    assert outcomes == {"table1_representations": "recomputed",
                        "table2_linear_probing": "recomputed", "table3_sota": "reused",
                        "fig3_temporal": "failed"}
    assert table[-1].startswith("wall time")


def test_a_failed_page_does_not_stop_the_pages_after_it(monkeypatch, tmp_path, capsys):
    """Every page runs when one fails (the first page of a lane, and a page outside the
    lanes); the build then fails with the first error, and known_answers.csv gathers the
    checks of the pages that ran, not a table left by an earlier build."""
    avdd_execute = extension()
    ran = []
    generated = tmp_path / "book" / "generated"

    def fake(nb, out, params, cwd, files, status):
        name = Path(nb).stem
        ran.append(name)
        if name in ("table1_representations", "table3_sota"):
            raise RuntimeError(f"{name} failed")
        files.mkdir(parents=True, exist_ok=True)
        (files / f"{name}-known-answers.csv").write_text(
            "page,check,expected,measured,passed\n" f"{name},c,e,1,True\n")
        return True

    monkeypatch.setattr(avdd_execute, "execute_stale", fake)
    monkeypatch.delenv("AVDD_BOOK_PARAMETERS", raising=False)
    generated.mkdir(parents=True)
    (generated / "known_answers.csv").write_text("page,check,expected,measured,passed\n"
                                                 "old_page,c,e,1,True\n")
    config = SimpleNamespace(avdd_parameters={}, avdd_lanes=[
        ["table3_sota", "table2_linear_probing"], ["fig3_temporal"]],
        avdd_notebooks=["table1_representations", "table2_linear_probing", "table3_sota",
                        "fig3_temporal"])
    with pytest.raises(RuntimeError, match="table1_representations failed"):
        avdd_execute._execute(SimpleNamespace(srcdir=str(tmp_path / "book")), config)
    assert sorted(ran) == sorted(config.avdd_notebooks)
    table = capsys.readouterr().err
    assert "table3_sota: failed" in table and "table2_linear_probing: recomputed" in table
    pages = (generated / "known_answers.csv").read_text().splitlines()[1:]
    assert sorted(p.split(",")[0] for p in pages) == ["fig3_temporal", "table2_linear_probing"]


def test_a_kernel_reports_to_the_build_and_not_into_the_page(tmp_path, monkeypatch):
    """The real path: papermill starts a kernel whose avdd.progress writes to the build's
    status file; the executed notebook's outputs hold only what the cell printed."""
    import json
    import os

    src = str(Path(progress.__file__).resolve().parents[1])  # this avdd, in the kernel too
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]))

    notebook = tmp_path / "tiny.py"
    notebook.write_text("# %%\nfrom avdd.progress import report\n"
                        "report('extracting: 1/1 videos')\nprint('page text')\n")
    got: list[str] = []
    out = tmp_path / "tiny.ipynb"
    assert execute_stale(notebook, out, {}, cwd=tmp_path, status=got.append)
    assert got == ["extracting: 1/1 videos"]
    outputs = json.dumps([c.get("outputs") for c in json.loads(out.read_text())["cells"]])
    assert "page text" in outputs and "extracting" not in outputs


def test_an_uncached_computation_says_what_it_does_a_cached_one_is_silent(tmp_path, monkeypatch):
    import pandas as pd

    from avdd.analysis.cache import cached
    from avdd.config import Profile

    status = tmp_path / "status.log"
    monkeypatch.setenv(progress.ENV, str(status))
    prof = Profile(name="demo", data_roots={}, cache_dir=tmp_path / "cache", synthetic=True)

    def compute() -> pd.DataFrame:
        return pd.DataFrame({"auc": [50.0]})

    for _ in range(2):
        cached(prof, "grid", {"seed": 1}, compute, code="avdd.analysis.cache")
    cached(prof, "probe", {"seed": 2}, compute, code="avdd.analysis.cache",
           doing="training a linear probe: logmel on av1m")
    assert status.read_text().splitlines() == ["computing grid (not cached)",
                                               "training a linear probe: logmel on av1m"]
