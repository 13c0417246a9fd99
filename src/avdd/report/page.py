"""One book page: the numbers' source it labels, and its figures and tables as files.

A notebook makes one :class:`Page` after computing its results and shows everything through
it: :meth:`Page.figure` and :meth:`Page.table` display a figure or table and, when the notebook
was given an ``outputs`` folder, write it there (:mod:`avdd.report.export`: PDF + PNG, CSV,
with a JSON provenance sidecar) and display download links under it. The book passes each
notebook ``outputs = book/generated/<page>_files``, beside the executed notebook, so the
relative links resolve from the page and Sphinx copies the files into the build.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from avdd.analysis.checks import Check, frame
from avdd.analysis.health import degenerate_backbones
from avdd.backbones import describe
from avdd.config import Profile
from avdd.provenance import provenance
from avdd.report.export import links_markdown, save_figure, save_table, slug
from avdd.report.notices import data_notice, health_notice, provenance_markdown

__all__ = ["Page"]


class Page:
    """What one notebook's page shows beside its numbers, and where its files go.

    Args:
        name: the page (the notebook's name, e.g. ``"table2_linear_probing"``): the prefix of
            its files.
        profile: where the numbers come from.
        backbones: the backbone specs they come from.
        outputs: folder for the page's files, beside the executed notebook (links are
            relative to its parent); None writes no file and shows no link.
        context: what else decided the numbers (seeds, train/test sets, ...), shown in the
            provenance and written in every sidecar.
    """

    def __init__(self, name: str, profile: Profile, backbones: Iterable[str], *,
                 outputs: str | Path | None = None, **context: Any) -> None:
        self.name = name
        self.profile = profile
        self.backbones = list(dict.fromkeys(backbones))
        self.outputs = Path(outputs) if outputs is not None else None
        self.context = context
        self.files: list[Path] = []  # every file written, in order
        self._stems: set[str] = set()

    def notice(self, *, paper: bool = True) -> str:
        """The MyST notice of the data and weights (:func:`avdd.report.notices.data_notice`;
        ``paper=False`` on a page beyond the paper, which shows none of its numbers),
        then a warning naming every degenerate representation among the page's backbones
        (:func:`avdd.report.notices.health_notice`, measured on their extracted stores)."""
        flags = health_notice(degenerate_backbones(self.profile, self.backbones))
        return (data_notice(self.profile, self.backbones, paper=paper)
                + (f"\n\n{flags}" if flags else ""))

    def provenance(self) -> str:
        """The provenance list (:func:`avdd.report.notices.provenance_markdown`)."""
        return provenance_markdown(self.profile, self.backbones, **self.context)

    @functools.cached_property
    def _record(self) -> dict[str, Any]:
        # Once per page: git and package versions are the same for all of its files.
        return provenance(
            page=self.name, profile=self.profile.name, synthetic=self.profile.synthetic,
            synth_seed=self.profile.synth_seed if self.profile.synthetic else None,
            synth_scale=self.profile.synth_scale if self.profile.synthetic else None,
            data={k: str(v) for k, v in sorted(self.profile.data_roots.items())},
            weights={b: describe(b).weights for b in self.backbones}, **self.context)

    def _stem(self, name: str) -> str:
        stem = f"{self.name}-{slug(name)}"
        if stem in self._stems:
            raise ValueError(f"page {self.name} already wrote a file named {name!r}: give each "
                             "figure and table its own name")
        self._stems.add(stem)
        return stem

    def _links(self, paths: list[Path]) -> None:
        from IPython.display import Markdown, display

        self.files += paths
        display(Markdown(links_markdown(paths, self.outputs.parent)))

    # figure() and table() return None: a notebook cell ending in one shows nothing more
    # (the files written are listed in .files).
    def figure(self, fig: Any, name: str) -> None:
        """Display a matplotlib figure (and close it, so the notebook does not show it twice),
        then write it as PDF + PNG and link them."""
        import matplotlib.pyplot as plt
        from IPython.display import display

        paths = [] if self.outputs is None else save_figure(
            fig, self.outputs, self._stem(name), {**self._record, "name": name, "kind": "figure"})
        display(fig)
        plt.close(fig)
        if paths:
            self._links(paths)

    def checks(self, checks: Iterable[Check]) -> None:
        """Show the page's known answers (:mod:`avdd.analysis.known_answers`): a line saying how
        many passed, the table (check, expected, measured with its interval, passed) and why
        each is expected; written as ``<page>-known-answers.csv`` (the book gathers every
        page's into ``generated/known_answers.csv``). On real data: a line saying there are
        none."""
        from IPython.display import Markdown, display

        checks = list(checks)
        if not checks:
            display(Markdown("No known answers: they exist only for the synthetic benchmark, "
                             "whose construction says what a working analysis must find."))
            return
        table = frame(checks)
        n_ok = int(table["passed"].sum())
        failed = "" if n_ok == len(table) else (
            f" **{len(table) - n_ok} failed**: the analysis or the representation does not "
            "recover what the benchmark plants; the numbers on this page are not to be read as "
            "findings until that is understood.")
        display(Markdown(f"**{n_ok} of {len(table)} known-answer checks passed.**{failed}"))
        shown = table.drop(columns=["page", "why"]).assign(
            passed=["✔ passed" if p else "✘ FAILED" for p in table["passed"]])
        display(shown.style.hide(axis="index").map(
            lambda v: "color: #b00020; font-weight: bold" if v == "✘ FAILED" else "",
            subset=["passed"]))
        display(Markdown("\n".join(f"- *{c.check}*: {c.why}." for c in checks)))
        if self.outputs is not None:  # the data, with page and why: what the book gathers
            self._links(save_table(table, self.outputs, self._stem("known answers"),
                                   {**self._record, "name": "known answers", "kind": "table"}))

    def table(self, table: Any, name: str) -> None:
        """Display a table (a DataFrame or a pandas Styler), then write its data as CSV and
        link it."""
        from IPython.display import display

        display(table)
        if self.outputs is not None:
            self._links(save_table(table, self.outputs, self._stem(name),
                                   {**self._record, "name": name, "kind": "table"}))
