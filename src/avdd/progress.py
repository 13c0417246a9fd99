"""What a long computation is doing, told to whoever watches it: the book build.

A notebook runs in a Jupyter kernel whose output goes into the page, so a book build used to
show nothing for minutes. The build (:func:`avdd.report.book.execute_stale`) sets
:data:`ENV` in each kernel to a file of its own and prints every line the kernel's avdd code
appends there: synthesis and extraction with their progress and an estimate of the time left
(:class:`Meter`), each computation the analysis caches could not answer and each probe it
trains (:func:`report`). Where :data:`ENV` is unset (a notebook in Jupyter, a script, the
CLI, whose progress bars say as much) nothing is written.
"""

from __future__ import annotations

import os
import time

#: The status file of the current process, set by the book build in each kernel.
ENV = "AVDD_STATUS"


def report(text: str) -> None:
    """Append one line, ``text``, to the status file, if a build watches this process."""
    path = os.environ.get(ENV)
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(" ".join(text.split()) + "\n")  # one line, whatever the text holds
    except OSError:
        pass  # a build that went away must not fail the computation it watched


def duration(seconds: float) -> str:
    """``"42 s"`` or ``"3 min 05 s"``."""
    seconds = max(0, round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


class Meter:
    """``what: k/n unit, ETA …`` lines for a loop of ``total`` steps: a first line when it
    starts, then at most one line every ``every`` seconds, and a last line with the time it
    took (a loop shorter than ``every`` says only when it started and ended).

    The estimate is the mean time per step so far times the steps left: rough for steps of
    uneven cost, honest about being an estimate (``ETA ~``). None is given before ``every``
    seconds have passed: the first steps also pay for starting workers and building models.
    """

    def __init__(self, what: str, total: int, unit: str = "", every: float = 15.0) -> None:
        self.what, self.total, self.unit, self.every = what, int(total), unit, every
        self.done = 0
        self.started = time.perf_counter()
        self.last = self.started
        if self.total > 0:
            report(f"{what}: 0/{self.total}{self._unit}")

    @property
    def _unit(self) -> str:
        return f" {self.unit}" if self.unit else ""

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.perf_counter()
        if self.done >= self.total or now - self.last < self.every:
            return
        self.last = now
        per_step = (now - self.started) / self.done
        report(f"{self.what}: {self.done}/{self.total}{self._unit}, "
               f"ETA ~{duration(per_step * (self.total - self.done))}")

    def close(self) -> None:
        if self.total > 0:
            report(f"{self.what}: {self.done}/{self.total}{self._unit} in "
                   f"{duration(time.perf_counter() - self.started)}")
