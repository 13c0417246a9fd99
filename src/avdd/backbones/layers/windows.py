"""Long clips through the lip models' temporally local stages, in windows of frames.

Most of a lip model's memory for a long clip is in stages whose every output frame depends on a
few input frames only: the 3-D stem + per-frame ResNet of the video front-end (5 frames), the
raw-audio 1-D ResNet (under 2 frames of samples), the per-frame fusion MLP, and each query row
of attention (all keys, one row of scores). Run over the whole sequence, their activations grow
with its length (the video stem alone: ``width × 44 × 44 × 4 B`` a frame, 484 KiB at width 64;
rel-pos attention scores: ``heads × T × (2T − 1) × 4 B``, quadratic). Cut into windows with
the receptive field's halo, each output frame sees exactly the inputs it saw before, and the
peak is one window's.

Only sequences whose whole-run tensor would exceed :data:`WHOLE_BYTES` are cut: every clip of
the datasets (≤ ~20 s) and of the demo runs today's single call, so its features are the same
code's. What a cut sequence gets (``tests/test_lip_windows.py``; NOTES.md, session 7): with one
thread, the whole run's features bit for bit (7,500 frames, all six tiny lip models), except
the raw-audio ResNet, whose oneDNN 1-D convolution picks its algorithm by length (windows of
under ~4,000 positions round differently; the default windows are longer, and agreed). With
several threads, the last bits of a Swish (SiLU) model move by up to ~1e-6: SiLU takes a
scalar path at the edges of each thread's share of a tensor, so the whole run's own last bits
depend on the thread count (Auto-AVSR tiny, whole run, 1 vs 2 threads: 9.5e-7), and windows
share their tensors out differently. PReLU (AV-HuBERT) and attention rows are unaffected.

Both budgets are module attributes, read at every call, so that tests can shrink them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

#: A stage runs whole while its largest tensor for the whole sequence is at most this
#: (256 MiB: 541 frames = 21.6 s of 88 × 88 video through a width-64 stem).
WHOLE_BYTES = 256 * 2**20
#: Above it, each window holds at most this much of that tensor (at least one frame).
WINDOW_BYTES = 64 * 2**20


def spans(frames: int, frame_bytes: int) -> list[tuple[int, int]] | None:
    """Windows ``[start, stop)`` covering ``frames`` frames whose stage costs ``frame_bytes`` a
    frame, or None when the whole sequence fits :data:`WHOLE_BYTES` (then run it whole)."""
    if frames * frame_bytes <= WHOLE_BYTES:
        return None
    step = max(1, WINDOW_BYTES // max(1, frame_bytes))
    return [(s, min(frames, s + step)) for s in range(0, frames, step)]


def windowed(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, *, frames: int,
             frame_bytes: int, halo: int = 0, dim: int = 1, unit: int = 1,
             out_dim: int = 1) -> torch.Tensor:
    """``fn(x)``, computed window by window when the sequence is long.

    Args:
        fn: a stage mapping input frames ``[a, b)`` (``x`` sliced along ``dim``, ``unit``
            elements a frame) to ``b − a`` output frames along ``out_dim``; each output frame
            may depend on the ``halo`` input frames either side of it and no further.
        frames: number of frames of ``x`` (``x.shape[dim] // unit`` elements are read).
        frame_bytes: the largest tensor of ``fn`` per frame (chooses the windows, :func:`spans`).
    Returns:
        ``fn(x)`` as one call when :func:`spans` says so, else the windows' outputs (each run on
        its frames plus the halo, which is then dropped) concatenated along ``out_dim``. The
        halo is cut at the sequence's ends, where ``fn``'s own padding applies as before.
    """
    windows = spans(frames, frame_bytes)
    if windows is None:
        return fn(x)

    def window(start: int, stop: int) -> torch.Tensor:
        a, b = max(0, start - halo), min(frames, stop + halo)
        out = fn(x.narrow(dim, a * unit, (b - a) * unit))
        return out.narrow(out_dim, start - a, stop - start)

    return filled(window, windows, dim=out_dim)


def filled(fn: Callable[[int, int], torch.Tensor], windows: list[tuple[int, int]], *,
           dim: int) -> torch.Tensor:
    """``fn(start, stop)`` of each window, written into one tensor along ``dim``.

    Into a tensor allocated after the first window, not ``torch.cat`` of a list: each window's
    small output would live on among its freed temporaries and keep glibc from reusing their
    space (blocks under its dynamic mmap threshold, up to 32 MiB, come from the heap), so the
    peak crept up by one temporary a window: Auto-AVSR tiny's attention over 7,500 frames
    peaked at +946 MiB with ``torch.cat``, +177 MiB with this.
    """
    first = fn(*windows[0])
    shape = list(first.shape)
    shape[dim] = windows[-1][1] - windows[0][0]
    out = first.new_empty(shape)
    out.narrow(dim, 0, first.shape[dim]).copy_(first)
    del first
    for start, stop in windows[1:]:
        out.narrow(dim, start - windows[0][0], stop - start).copy_(fn(start, stop))
    return out
