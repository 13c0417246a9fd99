"""Figures and tables as files readers can reuse: PDF + PNG, CSV, each beside its provenance.

Every file of one figure or table shares a stem (``<page>-<name>``) and a JSON sidecar
``<stem>.json`` with its provenance (profile, data, weights, context, git, versions); the PNG
and the PDF also carry a summary of it in their own metadata, so a copied image still says
where it came from. :class:`avdd.report.page.Page` calls these for every figure and table a
book page shows, and links them with :func:`links_markdown`.

Links are relative Markdown links. In the book, MyST turns a link to a local file that is not
a page into a download: Sphinx copies the file into the build (``_build/html/_downloads/``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

__all__ = ["FIGURE_DPI", "slug", "summary", "save_figure", "save_table", "links_markdown"]

#: Resolution of the PNG files (dots per inch): print quality; the page itself shows the
#: figure at the notebook's own resolution.
FIGURE_DPI = 200

#: Link text of each kind of file.
LINK_TEXT = {".pdf": "PDF", ".png": "PNG", ".csv": "CSV", ".json": "provenance (JSON)"}


def slug(text: str) -> str:
    """A file-name part made of ``text``: lower case, runs of anything but letters and digits
    become one ``-`` (``"AV-H (A)"`` → ``"av-h-a"``)."""
    out = re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-")
    if not out:
        raise ValueError(f"{text!r} has no letter or digit to name a file with")
    return out


def summary(record: dict[str, Any]) -> str:
    """One line of a provenance record, for the metadata of an image."""
    data = "synthetic benchmark" if record.get("synthetic") else "real datasets"
    sha = str(record.get("git_sha") or "unknown")[:10]
    dirty = " (uncommitted changes)" if record.get("git_dirty") else ""
    return (f"avdd, page {record.get('page')}: profile {record.get('profile')}, {data}; "
            f"git {sha}{dirty}; full provenance in {record.get('stem')}.json")


def _sidecar(folder: Path, stem: str, record: dict[str, Any], files: Sequence[Path]) -> Path:
    path = folder / f"{stem}.json"
    path.write_text(json.dumps({**record, "stem": stem, "files": [f.name for f in files]},
                               indent=2, default=str))
    return path


def save_figure(fig: Figure, folder: str | Path, stem: str,
                record: dict[str, Any]) -> list[Path]:
    """Write ``fig`` as ``folder/stem.pdf`` and ``folder/stem.png`` (:data:`FIGURE_DPI`) with
    the provenance ``record`` in ``folder/stem.json`` and summarised in both files' metadata
    (PDF ``Subject``, PNG ``Description``). Returns the three paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    record = {**record, "stem": stem}
    title, line = f"{record.get('page')}: {record.get('name', stem)}", summary(record)
    pdf, png = folder / f"{stem}.pdf", folder / f"{stem}.png"
    # bbox "tight", as the notebook's inline display crops, so the files match the page.
    fig.savefig(pdf, bbox_inches="tight",
                metadata={"Title": title, "Subject": line, "Creator": "avdd"})
    fig.savefig(png, dpi=FIGURE_DPI, bbox_inches="tight",
                metadata={"Title": title, "Description": line, "Software": "avdd"})
    return [pdf, png, _sidecar(folder, stem, record, [pdf, png])]


def save_table(table: pd.DataFrame | Any, folder: str | Path, stem: str,
               record: dict[str, Any]) -> list[Path]:
    """Write a table (a DataFrame, or a pandas ``Styler``: its data, unformatted) as
    ``folder/stem.csv`` with the provenance ``record`` (and the Styler's caption) in
    ``folder/stem.json``. A default 0..n-1 index is left out. Returns the two paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    data = getattr(table, "data", table)  # a Styler keeps its frame in .data
    if isinstance(data, pd.Series):
        data = data.to_frame()
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"expected a DataFrame or a Styler, got {type(table).__name__}")
    csv = folder / f"{stem}.csv"
    plain_index = isinstance(data.index, pd.RangeIndex) and data.index.name is None
    data.to_csv(csv, index=not plain_index)
    record = {**record, "caption": getattr(table, "caption", None)}
    return [csv, _sidecar(folder, stem, record, [csv])]


def links_markdown(paths: Sequence[Path], base: str | Path) -> str:
    """``Download: [PDF](...) · [PNG](...) · [provenance (JSON)](...)``, each path written
    relative to ``base`` (the folder of the page that shows them)."""
    base = Path(base).resolve()
    parts = [f"[{LINK_TEXT.get(p.suffix, p.suffix.lstrip('.'))}]"
             f"({Path(p).resolve().relative_to(base).as_posix()})" for p in paths]
    return "Download: " + " · ".join(parts)
