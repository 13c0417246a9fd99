"""Execute the book's notebooks with papermill, only when their output is missing or stale.

``jupyter-book build book/`` calls :func:`execute_stale` through the local Sphinx extension
``book/_ext/avdd_execute.py``. A notebook is re-executed when its source, its parameters or the
code it runs (the avdd modules it imports, and theirs) changed since its output was written;
otherwise the build reuses it.
Notebooks themselves reuse the cached synthetic data and features, so a re-execution after a
plotting change does not re-extract anything.

While a notebook runs, what its avdd code is doing (synthesis, extraction with progress and an
estimate of the time left, each uncached computation and probe training:
:mod:`avdd.progress`) reaches the build through a status file that the kernel appends to
(:func:`following`); :func:`summary` is the table of pages the build prints at the end.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from avdd.progress import duration

log = logging.getLogger(__name__)

#: Packages whose code a notebook's execution key covers.
CODE_PACKAGES: tuple[str, ...] = ("avdd",)


def notebook_modules(notebook: Path) -> list[str]:
    """The modules of :data:`CODE_PACKAGES` a notebook (a jupytext ``.py``) imports, in any
    cell."""
    import ast

    tree = ast.parse(Path(notebook).read_text(), str(notebook))
    mods = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            mods += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            mods += [a.name for a in node.names]
    return sorted({m for m in mods if m.split(".")[0] in CODE_PACKAGES})


def notebook_code(notebook: Path) -> dict[str, str]:
    """``{module: hash}`` of the code a notebook runs: its avdd imports and everything they
    import (:func:`avdd.provenance.code_fingerprints`; docstrings and comments excluded)."""
    from avdd.provenance import code_fingerprints

    importable = []
    for mod in notebook_modules(notebook):
        try:
            code_fingerprints([mod])
            importable.append(mod)
        except ValueError:  # "from avdd.x import name": avdd.x.name is not a module
            pass
    return code_fingerprints(importable)


def execution_key(notebook: Path, parameters: dict[str, Any]) -> str:
    """What decides a notebook's output: its source, its parameters and the code it runs. A
    change of another avdd module re-executes nothing."""
    from avdd.provenance import fingerprint

    h = hashlib.sha256()
    h.update(Path(notebook).read_bytes())
    h.update(json.dumps(parameters, sort_keys=True, default=str).encode())
    h.update(fingerprint(notebook_code(notebook)).encode())
    return h.hexdigest()[:16]


def _stored_run(output: Path) -> dict[str, Any]:
    if not output.is_file():
        return {}
    try:
        return json.loads(output.read_text())["metadata"].get("avdd", {})
    except (json.JSONDecodeError, KeyError, UnicodeDecodeError):
        return {}


def _up_to_date(output: Path, key: str, files: Path | None) -> bool:
    """Whether ``output`` is a run under ``key`` whose files (if it wrote any) all exist."""
    run = _stored_run(output)
    if run.get("key") != key:
        return False
    return files is None or all((files / f).is_file() for f in run.get("files", []))


@contextlib.contextmanager
def following(emit: Callable[[str], None], every: float = 0.5) -> Iterator[Path]:
    """A fresh status file (:data:`avdd.progress.ENV`), and a thread that passes each line
    appended to it to ``emit`` (within ``every`` seconds, and every last line on exit); the
    file is removed afterwards."""
    fd, name = tempfile.mkstemp(prefix="avdd-status-", suffix=".log")
    os.close(fd)
    path, stop = Path(name), threading.Event()

    def read(offset: int) -> int:
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read()
        whole = data[: data.rfind(b"\n") + 1]  # a line being written waits for its end
        for line in whole.decode("utf-8", "replace").splitlines():
            emit(line)
        return offset + len(whole)

    def follow() -> None:
        offset = 0
        while not stop.wait(every):
            offset = read(offset)
        read(offset)

    thread = threading.Thread(target=follow, name=f"avdd-status {path.name}", daemon=True)
    thread.start()
    try:
        yield path
    finally:
        stop.set()
        thread.join()
        path.unlink(missing_ok=True)


def _kernel_status(path: Path) -> list[str]:
    """Kernel arguments that set :data:`avdd.progress.ENV` to ``path`` in the kernel alone
    (the lanes run kernels side by side, so it cannot go through this process's environment)."""
    from avdd.progress import ENV

    # json.dumps of a string is a Python string literal too.
    return [f"--IPKernelApp.exec_lines=import os; os.environ[{ENV!r}] = {json.dumps(str(path))}"]


def execute_stale(notebook: Path, output: Path, parameters: dict[str, Any], *,
                  kernel_name: str = "python3", cwd: Path | None = None,
                  files: Path | None = None,
                  status: Callable[[str], None] | None = None) -> bool:
    """Run ``notebook`` (a jupytext ``.py``) into ``output`` unless an up-to-date run exists.

    ``files`` is the folder the notebook writes its figure and table files into (the book
    passes it as the ``outputs`` parameter): it is emptied before a run, its files are listed
    in the output's metadata, and a run whose files have gone is run again (its page links
    them). Returns True if the notebook was executed. Raises papermill's
    ``PapermillExecutionError`` (naming the failing cell) when a cell fails; a failed run
    leaves no output file, so the next build retries it. ``status`` receives each line the
    notebook's avdd code reports while it runs (:mod:`avdd.progress`).
    """
    import shutil

    import jupytext
    import nbformat
    import papermill

    notebook, output = Path(notebook), Path(output)
    key = execution_key(notebook, parameters)
    if _up_to_date(output, key, files):
        log.info("avdd: %s is up to date", output.name)
        return False
    output.parent.mkdir(parents=True, exist_ok=True)
    if files is not None:  # no file of an earlier run may stay linked-looking but stale
        shutil.rmtree(files, ignore_errors=True)
    nb = jupytext.read(notebook)
    partial = output.with_suffix(".partial.ipynb")
    try:
        with (following(status) if status else contextlib.nullcontext()) as status_file:
            papermill.execute_notebook(
                nb, str(partial), parameters=parameters, kernel_name=kernel_name,
                cwd=str(cwd or notebook.parent), progress_bar=False,
                extra_arguments=_kernel_status(status_file) if status_file else [])
    except BaseException:
        output.unlink(missing_ok=True)
        raise
    done = nbformat.read(partial, as_version=4)
    for cell in done.cells:  # papermill's injected parameters are plumbing, not content
        tags = cell.metadata.setdefault("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
    done.metadata["avdd"] = {"key": key, "source": notebook.name, "parameters": parameters,
                             "code": notebook_code(notebook),
                             "files": sorted(p.relative_to(files).as_posix()
                                             for p in files.rglob("*") if p.is_file())
                             if files is not None and files.is_dir() else []}
    nbformat.write(done, output)
    partial.unlink()
    return True


def summary(pages: Sequence[tuple[str, float, str]], wall: float) -> str:
    """The build's closing table: one row per page ``(name, seconds, outcome)`` in the order
    they finished (outcome ``"recomputed"``, ``"reused"`` or ``"failed"``), then the sum of
    the pages' times and the build's wall time (less than the sum when lanes overlapped)."""
    width = max([len(n) for n, _, _ in pages] + [len("page")])
    lines = [f"{'page':<{width}}  {'time':>10}  outcome"]
    lines += [f"{n:<{width}}  {duration(t):>10}  {o}" for n, t, o in pages]
    lines.append(f"{'pages, summed':<{width}}  {duration(sum(t for _, t, _ in pages)):>10}")
    lines.append(f"{'wall time':<{width}}  {duration(wall):>10}")
    return "\n".join(lines)


#: Name of the book-wide table of known answers, in ``generated/``.
KNOWN_ANSWERS = "known_answers.csv"


def collect_known_answers(generated: Path) -> Path | None:
    """Gather every page's ``<page>_files/<page>-known-answers.csv`` (written by
    :meth:`avdd.report.page.Page.checks`) into ``generated/known_answers.csv`` with the columns
    ``page,check,expected,measured,passed``, pages in name order. Returns its path, or None
    (and removes a stale one) when no page wrote checks."""
    import pandas as pd

    from avdd.analysis.checks import COLUMNS

    generated = Path(generated)
    out = generated / KNOWN_ANSWERS
    parts = sorted(generated.glob("*_files/*-known-answers.csv"))
    if not parts:
        out.unlink(missing_ok=True)
        return None
    table = pd.concat([pd.read_csv(p) for p in parts], ignore_index=True)
    table[list(COLUMNS)].to_csv(out, index=False)
    return out
