"""Sphinx extension: execute stale notebooks with papermill before the book is read.

Configured in ``_config.yml`` under ``sphinx.config``:

- ``avdd_notebooks``: names of ``notebooks/<name>.py`` to execute into ``generated/<name>.ipynb``.
- ``avdd_parameters``: papermill parameters for every notebook (the demo profile by default).

``AVDD_BOOK_PARAMETERS`` (a JSON object) overrides parameters without editing the config,
e.g. a tiny synthetic scale in tests or the paper profile (``avdd book --params FILE``). Its
optional ``notebooks`` entry maps a notebook name to parameters for that notebook only (the
notebooks name their backbones differently: ``backbones``, ``rows``, ``representations``,
``backbone``). Relative ``home`` paths are resolved against the repository root (the book
folder's parent).

Each notebook also gets ``outputs = generated/<name>_files``, beside its executed copy: it
writes every figure (PDF, PNG) and table (CSV) it shows there, with provenance sidecars, and
links them from its page; Sphinx copies linked files into the build's ``_downloads/``.
After the notebooks, every page's known-answer checks are gathered into
``generated/known_answers.csv``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from avdd.report.book import collect_known_answers, execute_stale


def _execute(app, config) -> None:
    book = Path(app.srcdir)
    repo = book.parent
    params = dict(config.avdd_parameters or {})
    params.update(json.loads(os.environ.get("AVDD_BOOK_PARAMETERS", "{}")))
    per_notebook = params.pop("notebooks", None) or {}
    if params.get("home"):
        params["home"] = str((repo / params["home"]).resolve())
    for name in config.avdd_notebooks:
        files = book / "generated" / f"{name}_files"
        execute_stale(repo / "notebooks" / f"{name}.py", book / "generated" / f"{name}.ipynb",
                      {**params, **per_notebook.get(name, {}), "outputs": str(files)},
                      cwd=repo, files=files)
    collect_known_answers(book / "generated")


def setup(app):
    app.add_config_value("avdd_notebooks", [], "env")
    app.add_config_value("avdd_parameters", {}, "env")
    # Early (priority < 500) so that generated pages exist before the TOC is checked.
    app.connect("config-inited", _execute, priority=100)
    return {"version": "0.1", "parallel_read_safe": True}
