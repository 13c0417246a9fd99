"""End to end: the Table 2 notebook through papermill, and the whole book through
`jupyter-book build` (in a copy of book/ and notebooks/, on the tiny synthetic benchmark)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TINY_SCALE

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow


def outputs_text(nb: dict) -> str:
    parts = []
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            for v in out.get("data", {}).values():
                parts.append(v if isinstance(v, str) else "".join(v))
    return "\n".join("".join(p) if isinstance(p, list) else p for p in parts)


def test_papermill_runs_the_paired_ipynb(tiny_home, tmp_path):
    out = tmp_path / "out.ipynb"
    run = subprocess.run(
        [str(BIN / "papermill"), str(REPO / "notebooks/table2_linear_probing.ipynb"), str(out),
         "-p", "home", str(tiny_home), "-p", "synth_scale", str(TINY_SCALE),
         "-y", "backbones: [logmel]", "--cwd", str(REPO)],
        capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    text = outputs_text(json.loads(out.read_text()))
    assert "not reproductions of the paper" in text
    assert "logmel" in text and "mouth-pixels" not in text.split("Provenance")[0].split(
        "Paper, Table 2")[0]


def test_book_builds_and_rebuild_reuses_results(tiny_home, tmp_path):
    repo = tmp_path / "repo"
    for d in ("book", "notebooks"):
        shutil.copytree(REPO / d, repo / d, ignore=shutil.ignore_patterns("_build", "generated"))
    env = {**os.environ,
           "AVDD_BOOK_PARAMETERS": json.dumps({"home": str(tiny_home), "synth_scale": TINY_SCALE})}
    cmd = [str(BIN / "jupyter-book"), "build", str(repo / "book"), "-W", "-n", "--keep-going"]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    page = repo / "book/_build/html/generated/table2_linear_probing.html"
    html = page.read_text()
    assert "Table 2" in html and "synthetic" in html and "Paper, Table 2" in html
    executed = repo / "book/generated/table2_linear_probing.ipynb"
    stamp = executed.stat().st_mtime_ns
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0, rerun.stdout[-3000:]
    assert executed.stat().st_mtime_ns == stamp, "an unchanged notebook was re-executed"
