"""Thread settings of everything computed on frames: one home, so that extraction, probes and
heads run the same kernels with the same thread counts whatever the caller set.

Features and probe weights must not depend on the machine's load or the caller's thread pools:
a float reduction split over two threads sums in another order than on one (measured: stored
fp16 features of logmel and wav2vec2-tiny-random differed by one step between ``workers=1`` at
2 threads and ``workers=2`` at 1). Parallelism comes from processes over videos instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def limit_threads(n: int | None = 1) -> Iterator[None]:
    """Run the enclosed code on ``n`` intra-op threads in torch and in every BLAS/OpenMP pool
    (``None``: leave them as they are); the caller's settings are restored afterwards."""
    if n is None:
        yield
        return
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(n):
            yield
    finally:
        torch.set_num_threads(before)


def one_thread() -> contextlib.AbstractContextManager[None]:
    """:func:`limit_threads` at 1: how every extraction path (pool workers, the in-process run,
    the ``device`` path, ``avdd score``) and the linear probe compute."""
    return limit_threads(1)


def pin_process_to_one_thread() -> None:
    """One thread for good, in a worker process that lives for one pool only (a context
    manager would be undone when collected)."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(1)
