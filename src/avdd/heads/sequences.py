"""Streaming access to one FeatureSet or several matched by video id (shared by the detectors).

:class:`Aligned` is what both anomaly heads read: N videos whose frames are, per set,
L2-normalised and truncated to the length common to all sets, then concatenated::

    x_t = [v_t / ||v_t|| ; a_t / ||a_t|| ; ...]      (T, D_1 + D_2 + ...) float32

Nothing is loaded up front: :meth:`Aligned.frames` reads one video from the sets' memory maps
on demand, and :func:`iterate` walks a list of minibatches, prefetching the next batch and,
for sets larger than ``max_resident_mb``, unmapping the last one, so the RSS stays bounded
however large the store is (see :meth:`avdd.features.featureset.FeatureSet.release`).
"""

from __future__ import annotations

import copy
import math
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from avdd.features.featureset import FeatureSet
from avdd.heads.scoring import NORM_EPS

__all__ = ["Aligned", "EarlyStopping", "epoch_batches", "iterate", "length_batches", "pad"]



class Aligned:
    """One FeatureSet, or several matched by id, seen as N videos of (T_i, sum D) frames.

    Args:
        sets: a FeatureSet or a sequence of them. Videos follow the first set's order; the
            others are matched by id (KeyError if one lacks an id). All sets must share one
            frame rate (ValueError otherwise: truncating a 12.5 Hz stream against a 25 Hz one
            would pair frames half a clip apart).
        names: what to call each set in error messages (e.g. ``("V", "A")``).

    Attributes: ``sets`` (tuple, aligned), ``dims`` (D per set), ``dim`` (their sum),
    ``lengths`` (N,) common lengths = min over sets, ``labels``/``ids``/``fps`` of the first
    set, ``meta(i)`` of the first set.
    """

    def __init__(self, sets: FeatureSet | Sequence[FeatureSet], *, names: Sequence[str] | None = None):
        sets = (sets,) if isinstance(sets, FeatureSet) else tuple(sets)
        if not sets or not all(isinstance(s, FeatureSet) for s in sets):
            raise TypeError("expected a FeatureSet or a non-empty tuple of FeatureSets")
        names = list(names) if names is not None else [f"set {k}" for k in range(len(sets))]
        for name, s in zip(names[1:], sets[1:]):
            if s.fps != sets[0].fps:
                raise ValueError(
                    f"{names[0]} is at {sets[0].fps:g} Hz but {name} is at {s.fps:g} Hz: frames can only "
                    "be paired at one frame rate (e.g. VideoMAE's 12.5 Hz against 25 Hz features); "
                    "resample one of them to the other's rate before pairing")
        ids = sets[0].ids
        self.sets = (sets[0],) + tuple(s if np.array_equal(s.ids, ids) else s.select(list(ids)) for s in sets[1:])
        self.dims = tuple(s.dim for s in self.sets)
        self.dim = int(sum(self.dims))
        self.lengths = np.min([s.lengths for s in self.sets], axis=0)
        self.labels, self.ids, self.fps = self.sets[0].labels, self.sets[0].ids, self.sets[0].fps

    def __len__(self) -> int:
        return len(self.lengths)

    def subset(self, idx) -> Aligned:
        """Videos ``idx`` (ints or mask), still aligned."""
        out = object.__new__(Aligned)
        out.sets = tuple(s.subset(idx) for s in self.sets)
        out.dims, out.dim, out.fps = self.dims, self.dim, self.fps
        out.lengths = np.atleast_1d(self.lengths[idx])
        out.labels, out.ids = out.sets[0].labels, out.sets[0].ids
        return out

    def meta(self, i: int) -> dict:
        return self.sets[0].meta(i)

    @property
    def nbytes(self) -> int:
        return sum(s.nbytes for s in self.sets)

    def frames(self, i: int) -> torch.Tensor:
        """(T_i, dim) float32: each set's frames L2-normalised, truncated, concatenated."""
        n = int(self.lengths[i])
        parts = [F.normalize(s.tensor(i)[:n].float(), dim=1, eps=NORM_EPS) for s in self.sets]
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

    def prefetch(self, idx) -> None:
        for s in self.sets:
            s.prefetch(idx)

    def release(self, idx) -> None:
        for s in self.sets:
            s.release(idx)


def length_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator | None) -> list[np.ndarray]:
    """Minibatches of indices with similar lengths, so that padding is small.

    With ``rng``: videos are sorted by their length times a random factor in [1, 1.1) (so
    that batches change from epoch to epoch even when few videos share a length, at the cost
    of at most ~10 % padding), cut into batches of ``batch_size``, and the batches shuffled;
    every video appears once. Without ``rng``: sorted by length (deterministic evaluation).
    """
    lengths = np.asarray(lengths, np.float64)
    key = lengths * (1.0 + 0.1 * rng.random(len(lengths))) if rng is not None else lengths
    order = np.argsort(key, kind="stable")
    batches = [order[k:k + batch_size] for k in range(0, len(order), batch_size)]
    if rng is not None:
        batches = [batches[j] for j in rng.permutation(len(batches))]
    return batches


def epoch_batches(lengths: np.ndarray, batch_size: int, batching: str,
                  rng: np.random.Generator) -> list[np.ndarray]:
    """One training epoch's minibatches of indices (every video once).

    ``batching="uniform"``: a fresh uniform permutation cut into consecutive batches of
    ``batch_size`` (torch's ``DataLoader(shuffle=True)``); ``"length"``: :func:`length_batches`.
    """
    if batching == "uniform":
        order = rng.permutation(len(lengths))
        return [order[k:k + batch_size] for k in range(0, len(order), batch_size)]
    if batching == "length":
        return length_batches(lengths, batch_size, rng)
    raise ValueError(f"batching={batching!r}: expected 'uniform' or 'length'")


def iterate(data: Aligned, batches: list[np.ndarray], *, max_resident_mb: int) -> Iterator[np.ndarray]:
    """Yield ``batches`` in order, prefetching the next one while the caller computes and,
    when the set is larger than ``max_resident_mb``, unmapping each batch after its turn."""
    release = data.nbytes > max_resident_mb << 20
    if batches:
        data.prefetch(batches[0])
    for k, batch in enumerate(batches):
        if k + 1 < len(batches):
            data.prefetch(batches[k + 1])
        yield batch
        if release:
            data.release(batch)


def pad(frames: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad (T_i, D) tensors: (x (B, T_max, D) float32, valid (B, T_max) bool)."""
    lengths = torch.tensor([len(f) for f in frames])
    x = torch.nn.utils.rnn.pad_sequence(frames, batch_first=True)
    valid = torch.arange(x.shape[1])[None, :] < lengths[:, None]
    return x, valid


class EarlyStopping:
    """Epoch bookkeeping shared by the trained heads: history, best-validation weights,
    patience.

    Call :meth:`update` once per epoch; it returns True when training should stop. Without
    validation data every epoch is "best" and the last weights are kept (no copies made).
    """

    def __init__(self, patience: int, *, has_val: bool, verbose: bool = False):
        self.patience, self.has_val, self.verbose = patience, has_val, verbose
        self.history: list[dict] = []
        self.best_loss, self.best_epoch, self.best_state = math.inf, -1, None

    def update(self, net: torch.nn.Module, epoch: int, train_loss: float, val_loss: float,
               seconds: float, **extra) -> bool:
        self.history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                             **extra, "seconds": seconds})
        if self.verbose:
            more = "".join(f"  {k} {v:.2e}" for k, v in extra.items())
            print(f"epoch {epoch:3d}  train {train_loss:.6f}  val {val_loss:.6f}{more}  "
                  f"{seconds:.1f}s", flush=True)
        if not self.has_val or val_loss < self.best_loss:
            self.best_loss, self.best_epoch = val_loss, epoch
            self.best_state = copy.deepcopy(net.state_dict()) if self.has_val else None
            return False
        return epoch - self.best_epoch >= self.patience

    def restore(self, net: torch.nn.Module) -> torch.nn.Module:
        """Load the best-validation weights (if any) and put the network in eval mode."""
        if self.best_state is not None:
            net.load_state_dict(self.best_state)
        return net.eval()
