"""End to end: the Table 2 notebook through papermill, and the whole book through
`jupyter-book build` (in a copy of book/ and notebooks/, on the tiny synthetic benchmark).

The build is shared with tests/test_book_browser.py through :func:`shared_book`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

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


def test_a_wrong_parameter_fails_in_one_line_naming_it(tiny_home, tmp_path):
    """Issue 14.12: `-p seed abc` failed deep inside ("manual_seed expected a long"); now the
    first cell fails with the parameter's name, value and what it must be."""
    run = subprocess.run(
        [str(BIN / "papermill"), str(REPO / "notebooks/table2_linear_probing.ipynb"),
         str(tmp_path / "out.ipynb"), "-p", "home", str(tiny_home), "-p", "seed", "abc",
         "-y", "backbones: logmel", "--cwd", str(REPO)],
        capture_output=True, text=True, timeout=600)
    assert run.returncode != 0
    assert "parameter seed='abc' (str): expected a whole number" in run.stderr
    assert "parameter backbones='logmel' (str)" in run.stderr
    assert "manual_seed" not in run.stderr


@dataclass
class BuiltBook:
    """A book built once per test session in a copy of book/ and notebooks/."""

    repo: Path  # the copy's root (book/, notebooks/)
    cmd: list[str]  # the build command, to rebuild
    env: dict[str, str]  # its environment (tiny benchmark parameters)
    run: subprocess.CompletedProcess  # the first build

    @property
    def html(self) -> Path:
        return self.repo / "book/_build/html"


_BUILT: list[BuiltBook] = []  # one build per process, shared by test_book*.py modules


def shared_book(tiny_home: Path, tmp_path_factory) -> BuiltBook:
    """Build the book (minutes) the first time it is asked for; later callers get the same
    build. A plain function with a module-level memo rather than only a fixture, because a
    fixture imported into another test module would get its own cache and build again."""
    if not _BUILT:
        repo = tmp_path_factory.mktemp("book-repo")
        for d in ("book", "notebooks", "docs"):  # the book includes docs/FIDELITY.md
            shutil.copytree(REPO / d, repo / d,
                            ignore=shutil.ignore_patterns("_build", "generated"))
        env = {**os.environ,
               "AVDD_BOOK_PARAMETERS": json.dumps({"home": str(tiny_home),
                                                   "synth_scale": TINY_SCALE})}
        cmd = [str(BIN / "jupyter-book"), "build", str(repo / "book"), "-W", "-n", "--keep-going"]
        run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        _BUILT.append(BuiltBook(repo, cmd, env, run))
    return _BUILT[0]


@pytest.fixture(scope="session")
def built_book(tiny_home, tmp_path_factory) -> BuiltBook:
    return shared_book(tiny_home, tmp_path_factory)


def test_book_builds(built_book):
    run = built_book.run
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    html = (built_book.html / "generated/table2_linear_probing.html").read_text()
    assert "Table 2" in html and "synthetic" in html and "Paper, Table 2" in html


def test_rebuild_reuses_results(built_book):
    assert built_book.run.returncode == 0, "the first build failed (see test_book_builds)"
    executed = built_book.repo / "book/generated/table2_linear_probing.ipynb"
    stamp = executed.stat().st_mtime_ns
    rerun = subprocess.run(built_book.cmd, env=built_book.env, capture_output=True, text=True,
                           timeout=900)
    assert rerun.returncode == 0, rerun.stdout[-3000:]
    assert executed.stat().st_mtime_ns == stamp, "an unchanged notebook was re-executed"


def test_known_answers_of_every_paper_page_are_gathered(built_book):
    """Every page of the paper shows its known-answer checks, and the book gathers them into
    generated/known_answers.csv (computed by the pages: some fail at this scale)."""
    import pandas as pd

    from avdd.analysis.checks import COLUMNS

    assert built_book.run.returncode == 0, "the first build failed (see test_book_builds)"
    table = pd.read_csv(built_book.repo / "book/generated/known_answers.csv")
    assert list(table.columns) == list(COLUMNS)
    assert set(table["page"]) >= {"table1_representations", "table2_linear_probing",
                                  "table3_sota", "table4_anomaly", "fig2_localisation",
                                  "fig3_temporal", "fig4_spatial", "fig5_complementarity",
                                  "operating_points"}
    assert table["passed"].isin([True, False]).all() and len(table) >= 12
    html = (built_book.html / "generated/table2_linear_probing.html").read_text()
    assert "known-answer checks passed" in html and "random labels" in html


def output_counts(nb: dict) -> dict[str, int]:
    """Image outputs and HTML-table outputs of an executed notebook (the page's figures and
    tables; tests/test_book_browser.py counts them the same way)."""
    images = tables = 0
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            images += any(k.startswith("image/") for k in data)
            html = data.get("text/html", "")
            tables += "<table" in ("".join(html) if isinstance(html, list) else html)
    return {"images": images, "tables": tables}


def check_download(path: Path, page: str) -> str | None:
    """What is wrong with one downloaded file of ``page`` (None: nothing)."""
    import pandas as pd
    from PIL import Image

    data = path.read_bytes()
    if path.suffix == ".png":
        with Image.open(path) as im:
            if f"page {page}" not in im.text.get("Description", ""):
                return "PNG metadata carries no provenance"
    elif path.suffix == ".pdf":
        if not data.startswith(b"%PDF") or b"/Subject" not in data:
            return "not a PDF with a provenance Subject"
    elif path.suffix == ".csv":
        if pd.read_csv(path).empty:
            return "empty CSV"
    elif path.suffix == ".json":
        record = json.loads(data)
        if record.get("page") != page or record.get("profile") != "demo" \
                or record.get("synthetic") is not True or not record.get("git_sha"):
            return f"provenance without page/profile/git: {sorted(record)}"
    else:
        return "unexpected kind of file"
    return None


def test_every_figure_and_table_is_a_download_of_its_page(built_book):
    """Each figure of a page is linked as PDF + PNG, each table as CSV, each with its JSON
    provenance; the links resolve to files Sphinx copied into the build, which carry
    provenance (in the sidecar, and in the PNG's and PDF's metadata)."""
    bs4 = pytest.importorskip("bs4")  # installed with jupyter-book (its theme needs it)
    assert built_book.run.returncode == 0, "the book build failed (see test_book_builds)"
    html = built_book.html.resolve()
    executed = sorted(p for p in (built_book.repo / "book/generated").glob("*.ipynb")
                      if not p.name.endswith(".partial.ipynb"))
    assert len(executed) == 10, [p.name for p in executed]
    problems = []
    for nb in executed:
        want = output_counts(json.loads(nb.read_text()))
        page = html / "generated" / f"{nb.stem}.html"
        dom = bs4.BeautifulSoup(page.read_text(), "html.parser")
        linked = {}
        for a in dom.select("a.download"):
            target = (page.parent / unquote(a["href"])).resolve()
            if not (target.is_file() and target.stat().st_size
                    and target.is_relative_to(html / "_downloads")):
                problems.append(f"{page.name}: {a['href']} is not a file of the build")
                continue
            linked[target.name] = target
            if (why := check_download(target, nb.stem)) is not None:
                problems.append(f"{page.name}: {target.name}: {why}")
        kinds = Counter(Path(n).suffix for n in linked)
        if not kinds[".png"] == kinds[".pdf"] == want["images"]:
            problems.append(f"{page.name}: {want['images']} figures, {kinds['.png']} PNG and "
                            f"{kinds['.pdf']} PDF links")
        if kinds[".csv"] != want["tables"]:
            problems.append(f"{page.name}: {want['tables']} tables, {kinds['.csv']} CSV links")
        if kinds[".json"] != want["images"] + want["tables"]:
            problems.append(f"{page.name}: {kinds['.json']} provenance links")
        for name, target in linked.items():  # a sidecar's files are linked beside it
            if target.suffix == ".json":
                missing = set(json.loads(target.read_text())["files"]) - set(linked)
                if missing:
                    problems.append(f"{page.name}: {name} names unlinked {sorted(missing)}")
    assert not problems, "\n".join(problems)
