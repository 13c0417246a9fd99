"""Sphinx extension: execute stale notebooks with papermill before the book is read.

Configured in ``_config.yml`` under ``sphinx.config``:

- ``avdd_notebooks``: names of ``notebooks/<name>.py`` to execute into ``generated/<name>.ipynb``.
- ``avdd_parameters``: papermill parameters for every notebook (the demo profile by default).
- ``avdd_lanes``: lists of notebooks that may run beside each other, one list per lane. The
  notebooks in no lane run first, one after the other (Table 1, which prepares every feature
  store); then the lanes run at once, each in its order. A notebook that needs another's cached
  result (Table 3 reads Table 2's grid) comes after it in the same lane, so that nothing is
  computed twice; two lanes that do compute the same result both get the same entry
  (:func:`avdd.analysis.cache.cached`). Most of a notebook's time is one process on one core,
  so two lanes on two cores nearly halve the build. ``AVDD_BOOK_SERIAL=1`` runs everything in
  ``avdd_notebooks`` order (e.g. on a GPU machine, where two kernels would share one device).

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

On stderr the build says which notebook starts (``[k/n]``, in the order they start), what
each is doing while it runs (synthesis, extraction with progress and ETA, computations and
probe training: :mod:`avdd.progress`), how long each took, and at the end a table of every
page's time and whether it was recomputed or reused (:func:`avdd.report.book.summary`).
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from avdd.progress import duration
from avdd.report.book import collect_known_answers, execute_stale, summary

#: What sets the thread count of torch, NumPy's BLAS and numba in a kernel.
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                     "NUMBA_NUM_THREADS")


def _execute(app, config) -> None:
    book = Path(app.srcdir)
    repo = book.parent
    params = dict(config.avdd_parameters or {})
    params.update(json.loads(os.environ.get("AVDD_BOOK_PARAMETERS", "{}")))
    per_notebook = params.pop("notebooks", None) or {}
    if params.get("home"):
        params["home"] = str((repo / params["home"]).resolve())
    names = list(config.avdd_notebooks)
    configured = getattr(config, "avdd_lanes", None) or []  # a config without lanes: serial
    lanes = [[n for n in lane if n in names] for lane in configured]
    if os.environ.get("AVDD_BOOK_SERIAL") == "1":
        lanes = []
    in_lanes = {n for lane in lanes for n in lane}
    total, pages, begun = len(names), [], time.perf_counter()
    numbers, lock = itertools.count(1), threading.Lock()  # lanes start notebooks side by side

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def run(name: str) -> None:
        files = book / "generated" / f"{name}_files"
        with lock:
            prefix = f"avdd book [{next(numbers)}/{total}] {name}"
        say(f"{prefix}: starting")
        started = time.perf_counter()
        outcome = "failed"
        try:
            executed = execute_stale(
                repo / "notebooks" / f"{name}.py", book / "generated" / f"{name}.ipynb",
                {**params, **per_notebook.get(name, {}), "outputs": str(files)},
                cwd=repo, files=files, status=lambda line: say(f"{prefix}: {line}"))
            outcome = "recomputed" if executed else "reused"
        finally:
            seconds = time.perf_counter() - started
            with lock:
                pages.append((name, seconds, outcome))
            say(f"{prefix}: {outcome} in {duration(seconds)}"
                + ("" if outcome != "reused" else " (its output is up to date)"))

    try:
        errors = _run_all(names, in_lanes, lanes, run)
    finally:
        if pages:
            say("avdd book: pages\n" + summary(pages, time.perf_counter() - begun))
        collect_known_answers(book / "generated")  # the pages that ran, even when one failed
    if errors:
        raise errors[0]


def _run_all(names: list[str], in_lanes: set[str], lanes: list[list[str]],
             run: Callable[[str], None]) -> list[BaseException]:
    """The notebooks in no lane one after the other, then the lanes side by side. A notebook
    that fails does not stop the others (its failure is recorded by ``run`` and returned):
    otherwise the pages after it would keep an earlier build's outputs, rendered as if
    current. Returns the failures, in the order they happened."""
    errors: list[BaseException] = []

    def attempt(name: str) -> None:
        try:
            run(name)
        except Exception as error:  # noqa: BLE001 - reported by run, raised after the others
            errors.append(error)

    for name in names:
        if name not in in_lanes:
            attempt(name)
    if lanes:
        def lane(order: list[str]) -> None:
            for name in order:
                attempt(name)

        # One thread per kernel while the lanes share the cores: two kernels of two threads
        # each on two cores made Table 4's Transformers ~4x slower (measured: 275 s against
        # 61 s alone). The kernels inherit the environment they are started with.
        saved = {k: os.environ.get(k) for k in _THREAD_VARIABLES}
        os.environ.update(dict.fromkeys(_THREAD_VARIABLES, "1"))
        try:
            with ThreadPoolExecutor(len(lanes)) as pool:
                futures = [pool.submit(lane, order) for order in lanes]
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        errors += [f.exception() for f in futures if f.exception() is not None]
    return errors


def setup(app):
    app.add_config_value("avdd_notebooks", [], "env")
    app.add_config_value("avdd_parameters", {}, "env")
    app.add_config_value("avdd_lanes", [], "env")
    # Early (priority < 500) so that generated pages exist before the TOC is checked.
    app.connect("config-inited", _execute, priority=100)
    return {"version": "0.1", "parallel_read_safe": True}
