"""Execute the book's notebooks with papermill, only when their output is missing or stale.

``jupyter-book build book/`` calls :func:`execute_stale` through the local Sphinx extension
``book/_ext/avdd_execute.py``. A notebook is re-executed when its source, its parameters or the
code it runs (the avdd modules it imports, and theirs) changed since its output was written;
otherwise the build reuses it.
Notebooks themselves reuse the cached synthetic data and features, so a re-execution after a
plotting change does not re-extract anything.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

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


def execute_stale(notebook: Path, output: Path, parameters: dict[str, Any], *,
                  kernel_name: str = "python3", cwd: Path | None = None,
                  files: Path | None = None) -> bool:
    """Run ``notebook`` (a jupytext ``.py``) into ``output`` unless an up-to-date run exists.

    ``files`` is the folder the notebook writes its figure and table files into (the book
    passes it as the ``outputs`` parameter): it is emptied before a run, its files are listed
    in the output's metadata, and a run whose files have gone is run again (its page links
    them). Returns True if the notebook was executed. Raises papermill's
    ``PapermillExecutionError`` (naming the failing cell) when a cell fails; a failed run
    leaves no output file, so the next build retries it.
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
        papermill.execute_notebook(nb, str(partial), parameters=parameters,
                                   kernel_name=kernel_name, cwd=str(cwd or notebook.parent),
                                   progress_bar=False)
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
