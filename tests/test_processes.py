"""Forked workers never free an object the parent owned (avdd.processes): the test suite once
hung in a synthesis worker that collected a PyAV decoder an earlier test had left in a cycle."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import textwrap

import pytest

#: A parent that leaves a frame-threaded decoder in a reference cycle in the oldest generation
#: (alive through one full collection, then dropped), then forks two workers that run a full
#: collection. ``{guard}`` is either ``forking()`` or a no-op.
SCRIPT = textwrap.dedent("""
    import contextlib, gc, multiprocessing as mp, sys
    import numpy as np
    import avdd.media as media
    from avdd.processes import forking

    path = media.write_clip(sys.argv[1], np.random.default_rng(0).integers(
        0, 255, (30, 64, 96, 3), dtype=np.uint8), None)
    real_stack = media._stack
    media._stack = lambda frames: np.empty(2**62, np.uint8)  # fail after decoding
    try:
        media.read_clip(path, audio=False)
    except media.OutOfMemory as e:
        err = e
    media._stack = real_stack
    err.cycle = [err]  # traceback -> decode frames -> container, in a cycle
    gc.collect()
    del err

    def work(i):
        gc.collect()
        return i

    guard = forking() if sys.argv[2] == "guarded" else contextlib.nullcontext()
    with guard:
        pool = mp.get_context("fork").Pool(2)
    with pool:
        print(sorted(pool.map(work, range(4))))
""")


def _run(tmp_path, mode: str, timeout: float) -> tuple[int, str, str]:
    """Run :data:`SCRIPT`; on ``timeout`` kill its whole process group (hung workers too) and
    raise :class:`subprocess.TimeoutExpired`."""
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(tmp_path / "a.mp4"), mode],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return proc.returncode, out, err


def test_workers_forked_inside_forking_do_not_hang_on_the_parents_garbage(tmp_path):
    code, out, err = _run(tmp_path, "guarded", timeout=120)
    assert code == 0, err
    assert out.strip() == "[0, 1, 2, 3]"


@pytest.mark.slow
def test_without_the_guard_the_same_workers_hang(tmp_path):
    """The failure the guard prevents is real: the same script without it does not finish."""
    with pytest.raises(subprocess.TimeoutExpired):
        _run(tmp_path, "bare", timeout=20)


@pytest.mark.slow
def test_every_fork_site_forks_inside_forking(tmp_path, monkeypatch):
    """Synthesis' pool, extraction's pool and the device path's DataLoader workers all start
    with the parent's garbage collected and the rest frozen."""
    from avdd.config import make_profile
    from avdd.features.extract import extract
    from avdd.features.prepare import ensure_data

    frozen = []

    def freeze():
        frozen.append(True)

    monkeypatch.setattr(gc, "freeze", freeze)
    monkeypatch.setattr(gc, "unfreeze", lambda: None)
    home = tmp_path / "home"
    profile = make_profile("demo", home=home, synth_scale=0.02)
    ensure_data(profile, workers=2)
    assert len(frozen) == 1, "synthesis pool"
    extract(profile, ["logmel"], "avlips", "test", workers=2, limit=2, progress=False)
    assert len(frozen) == 2, "extraction pool"
    extract(profile, ["mouth-pixels"], "avlips", "test", workers=1, limit=2, progress=False,
            device="cpu")
    assert len(frozen) == 3, "DataLoader decode workers"
