"""The built book as a reader sees it: every page opened in headless Chromium.

Sphinx succeeding does not mean a page shows what its notebook computed. After the build
shared with tests/test_book.py, each page's DOM (after scripts ran) is dumped by
``chromium --headless --dump-dom`` and checked:

- every ``<img>`` has a non-empty ``src`` naming a non-empty file of the build;
- each notebook page shows as many figures as its executed notebook has image outputs, and
  at least as many tables as it has HTML table outputs;
- no page shows an error output (a traceback) or an error in a stderr output;
- every row of a Markdown page's pipe tables is a row of a rendered table: a blank line
  inside a table cuts it, and the rows after it render as a paragraph of ``|`` text, which
  Sphinx does not warn about.

Skipped when no Chromium is installed, except in CI (``CI=true``), where that fails: ``.ci/run``
installs Debian's ``chromium``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from conftest import require
from test_book import BuiltBook, shared_book

BROWSER = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))),
               None)
pytestmark = pytest.mark.slow
bs4 = pytest.importorskip("bs4")  # installed with jupyter-book (its theme needs it)


@pytest.fixture(scope="module", autouse=True)
def _browser() -> None:  # module scope: checked before the book fixtures below are built
    require(BROWSER is not None, "no chromium/google-chrome on PATH (apt-get install chromium)")

ERROR_WORD = re.compile(r"\b\w*(Error|Exception)\b")


def dump_dom(page: Path) -> str:
    """The page's DOM after load, as Chromium renders it (no network: file:// only)."""
    run = subprocess.run(
        [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--no-first-run", "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "<html" in run.stdout, \
        f"chromium could not render {page}: {run.stderr[-1500:]}"
    return run.stdout


@pytest.fixture(scope="module")
def book(tiny_home, tmp_path_factory) -> BuiltBook:
    built = shared_book(tiny_home, tmp_path_factory)
    assert built.run.returncode == 0, "the book build failed (see tests/test_book.py)"
    return built


@pytest.fixture(scope="module")
def pages(book) -> dict[Path, "bs4.BeautifulSoup"]:
    """The TOC's pages (intro and every generated notebook page) → parsed DOM."""
    html = book.html
    files = [html / "intro.html", *sorted((html / "generated").glob("*.html"))]
    assert len(files) > 1, f"no generated pages under {html}"
    with ThreadPoolExecutor(2) as pool:  # two cores; Chromium itself is multi-process
        doms = list(pool.map(dump_dom, files))
    return {f: bs4.BeautifulSoup(d, "html.parser") for f, d in zip(files, doms)}


def notebook_outputs(book: BuiltBook, page: Path) -> dict[str, int]:
    """Counts of image outputs and HTML-table outputs in the executed notebook of ``page``."""
    nb = json.loads((book.repo / "book/generated" / f"{page.stem}.ipynb").read_text())
    images = tables = 0
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            images += any(k.startswith("image/") for k in data)
            text = data.get("text/html", "")
            tables += "<table" in ("".join(text) if isinstance(text, list) else text)
    return {"images": images, "tables": tables}


def article(dom) -> "bs4.Tag":
    return dom.find("article") or dom.find("main") or dom


def test_images_resolve_to_files(pages):
    problems = []
    for page, dom in pages.items():
        for img in dom.find_all("img"):
            src = (img.get("src") or "").strip()
            if not src:
                problems.append(f"{page.name}: <img> without src")
                continue
            url = urlparse(src)
            if url.scheme in ("data",):
                continue
            if url.scheme not in ("", "file"):
                problems.append(f"{page.name}: image {src} is not part of the build")
                continue
            target = (page.parent / unquote(url.path)).resolve() if not url.scheme \
                else Path(unquote(url.path))
            if not target.is_file() or target.stat().st_size == 0:
                problems.append(f"{page.name}: image {src} -> {target} missing or empty")
    assert not problems, "\n".join(problems)


def test_notebook_pages_show_their_figures_and_tables(book, pages):
    problems = []
    for page, dom in pages.items():
        if page.parent.name != "generated":
            continue
        want = notebook_outputs(book, page)
        body = article(dom)
        figures = [i for i in body.find_all("img") if "_images/" in (i.get("src") or "")]
        tables = body.find_all("table")
        if len(figures) != want["images"]:
            problems.append(f"{page.name}: {len(figures)} figures shown, notebook has "
                            f"{want['images']} image outputs")
        if len(tables) < want["tables"]:
            problems.append(f"{page.name}: {len(tables)} tables shown, notebook has "
                            f"{want['tables']} table outputs")
        if not figures and not tables:
            problems.append(f"{page.name}: neither a figure nor a table")
    assert not problems, "\n".join(problems)


def test_no_error_outputs(pages):
    problems = []
    for page, dom in pages.items():
        body = article(dom)
        for node in body.select(".output.traceback"):
            problems.append(f"{page.name}: error output: {node.get_text()[:300]!r}")
        for node in body.select(".output.stderr"):
            text = node.get_text()
            if ERROR_WORD.search(text):
                problems.append(f"{page.name}: error in stderr output: {text[:300]!r}")
        if "Traceback (most recent call last)" in body.get_text():
            problems.append(f"{page.name}: a Python traceback is shown")
        if not body.find("h1"):
            problems.append(f"{page.name}: no title (h1): did the page render?")
    assert not problems, "\n".join(problems)


def markdown_table_rows(source: str) -> list[str]:
    """The rows (header and body, not the ``|---|`` separator) of the pipe tables of a
    Markdown source: its lines that start with ``|``, outside fenced blocks."""
    rows, fence = [], ""
    for line in source.splitlines():
        text = line.strip()
        mark = re.match(r"(`{3,}|~{3,})", text)
        if mark and (not fence or mark.group(1).startswith(fence)):
            fence = "" if fence else mark.group(1)
            continue
        if not fence and text.startswith("|") and not re.fullmatch(r"\|[\s:|-]*", text):
            rows.append(text)
    return rows


def table_cut_problems(source: str, dom) -> list[str]:
    """Rows of ``source``'s pipe tables that are not rows of a table of the rendered ``dom``."""
    body = article(dom)
    problems = []
    want, got = len(markdown_table_rows(source)), len(body.find_all("tr"))
    if want != got:
        problems.append(f"{want} table rows in the source, {got} rendered")
    for p in body.find_all("p"):
        if p.get_text().lstrip().startswith("|"):
            problems.append(f"a table row rendered as text: {p.get_text()[:120]!r}")
    return problems


def test_the_table_check_sees_a_cut_table():
    from markdown_it import MarkdownIt  # MyST's parser

    render = MarkdownIt("commonmark").enable("table").render
    whole = "# t\n\n| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |\n\n```\n| not | a row |\n```\n"
    cut = whole.replace("| 2 |\n| 3", "| 2 |\n\n| 3")
    assert markdown_table_rows(whole) == ["| a | b |", "| 1 | 2 |", "| 3 | 4 |"]
    assert not table_cut_problems(whole, bs4.BeautifulSoup(render(whole), "html.parser"))
    assert len(table_cut_problems(cut, bs4.BeautifulSoup(render(cut), "html.parser"))) == 2


def with_includes(md: Path) -> str:
    """A page's MyST source with each ``{include}`` directive replaced by the included file
    (book/fidelity.md includes docs/FIDELITY.md), as Sphinx renders it."""
    return re.sub(r"```\{include\} (\S+)\s*```",
                  lambda m: (md.parent / m.group(1)).read_text(), md.read_text())


def test_markdown_tables_render_whole(book, pages):
    problems = []
    for md in sorted((book.repo / "book").glob("*.md")):
        page = book.html / f"{md.stem}.html"
        dom = pages.get(page) or bs4.BeautifulSoup(dump_dom(page), "html.parser")
        problems += [f"{md.name}: {p}" for p in table_cut_problems(with_includes(md), dom)]
    assert not problems, "\n".join(problems)
