"""Worker processes started by fork: what the parent settles first.

A forked child inherits the parent's memory but none of its threads. Garbage the parent has not
collected yet (objects in a reference cycle) is then collected in the child, and some objects
cannot be freed without their threads: a PyAV decoder with frame threads, freed in a child,
waits forever in ``pthread_cond_destroy`` for threads that do not exist there. Measured: the
test suite hung in a synthesis worker that way, collecting a container a failed decode of an
earlier test had left in a cycle; a notebook kernel that decoded a clip before extracting could
hang the same way. So the parent collects its garbage and freezes what is left
(:func:`gc.freeze`: the child's collector never visits it, which also keeps the inherited pages
shared) right before it forks.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing as mp
from collections.abc import Iterator

__all__ = ["start_method", "forking"]


def start_method() -> str:
    """``"fork"`` where the platform has it (Linux: workers start in milliseconds and scripts
    need no ``if __name__ == "__main__"`` guard), else ``"spawn"``."""
    return "fork" if "fork" in mp.get_all_start_methods() else "spawn"


@contextlib.contextmanager
def forking() -> Iterator[None]:
    """Around the code that forks worker processes (creating a ``multiprocessing.Pool``,
    starting a DataLoader's iterator): the parent's garbage is collected first and the rest
    frozen while the children start, so that no child frees an object the parent owned."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
