"""Audio-visual synchronisation detector (AVH-Align), trained on real videos only.

A small network φ(v, a) scores how well a visual frame v and an audio frame a belong together.
It is trained so that, for each visual frame t, the audio frame at the same time wins a softmax
over the audio frames within ±tau of it; at test time a video whose frames are badly matched
(low φ(v_t, a_t) somewhere) is flagged::

    p_t(k) = softmax_{k in [t - tau, t + tau]} φ(v_t, a_k)   (audio outside the clip = zeros)
    loss   = mean_t -log p_t(t)
    s      = logsumexp_t -φ(v_t, a_t)                        video score (higher = more fake)

Network (as upstream bit-ml/AVH-Align ``model.py``; parameter names and shapes are kept, so
its released checkpoint's ``state_dict`` should load into ``module_``: names and shapes are
tested, the checkpoint itself was not available to try)::

    visual_proj: Linear(Dv -> 512)    audio_proj: Linear(Da -> 512)    concat -> 1024
    mlp: Linear(1024, 512) LayerNorm ReLU  Linear(512, 256) LayerNorm ReLU
         Linear(256, 128) LayerNorm ReLU  Linear(128, 1)

Confirmed from upstream (``train.py``, ``config.py``, ``dataset.py``, ``eval.py``): tau = 15,
frames L2-normalised, zero audio vectors outside the clip, Adam lr 1e-5, ReduceLROnPlateau
(factor 0.1, patience 5) on the validation loss, early stopping patience 10 (strict
improvement, best weights kept), at most 500 epochs, batches of 1,024 visual frames, the
validation loss as the mean over frames, the logsumexp score. Departures, kept by design:

* batches: upstream streams the videos in file order, the same every epoch, split across 32
  DataLoader workers (video i to worker i mod 32), each batch exactly 1,024 consecutive frames
  of one worker's stream (spanning video boundaries); here the videos are shuffled every
  epoch (seeded) and a batch is whole videos up to ``batch_frames`` frames;
* loss: upstream sums -log p over a batch; here it is averaged (Adam is nearly invariant to
  the scale of the loss: only its epsilon sees it);
* clip length: upstream loops over the visual frames and bounds the audio window by the
  ``num_frames`` column of its metadata CSV (a video whose audio features are shorter than
  that fails mid-way and keeps the frames already yielded); here V and A are truncated to
  their common length, which bounds the window;
* seed: upstream's ``train.py`` sets none; here ``random_state`` seeds the init and the order;
* L2 normalisation floors norms at 1e-12 (upstream divides by the norm);
* upstream's ``penalty_coefficient`` option is passed around but unused (so: nothing to match).

Other pairs (Wav2Vec2 + AV-HuBERT V, ...) have no upstream code; they only resize the two
input projections *(inferred, SPEC.md)*.

Speed: the first MLP layer is linear in the concatenation, so
``W [P_v v; P_a a] + b = (W_v P_v v + b) + W_a P_a a``: both halves are computed once per frame
and only added per (t, k) pair, which removes the largest matrix product from the 31 pairs
of each frame (exactly the same function, see :meth:`_SyncNet.window_logits`).
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted
from torch import nn

from avdd.features.featureset import FeatureSet
from avdd.heads.sequences import Aligned, EarlyStopping, iterate

__all__ = ["SyncDetector"]


class _SyncNet(nn.Module):
    """φ(v, a): upstream AVH-Align's FusionModel, with a fast windowed evaluation."""

    def __init__(self, dim_v: int, dim_a: int, hidden: int = 1024, widths: tuple[int, ...] = (512, 256, 128)):
        super().__init__()
        self.visual_proj = nn.Linear(dim_v, hidden // 2)
        self.audio_proj = nn.Linear(dim_a, hidden // 2)
        layers, width = [], hidden  # upstream: Linear, LayerNorm, ReLU per hidden width
        for w in widths:
            layers += [nn.Linear(width, w), nn.LayerNorm(w), nn.ReLU()]
            width = w
        self.mlp = nn.Sequential(*layers, nn.Linear(width, 1))

    def forward(self, v: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """v (..., Dv), a (..., Da) -> φ (...)."""
        return self.mlp(torch.cat([self.visual_proj(v), self.audio_proj(a)], dim=-1)).squeeze(-1)

    def window_logits(self, v: torch.Tensor, a: torch.Tensor, lengths: list[int], tau: int) -> torch.Tensor:
        """Logits φ(v_t, a_{t+j-tau}) for j = 0..2 tau of several videos at once.

        v (sum T_i, Dv), a (sum T_i, Da): the videos' frames stacked; lengths [T_i].
        Returns (sum T_i, 2 tau + 1); column tau is the synchronised pair. Audio frames outside
        a video are zero vectors (as upstream), so they contribute ``audio_proj``'s bias.
        """
        first, half = self.mlp[0], self.visual_proj.out_features
        u = F.linear(self.visual_proj(v), first.weight[:, :half], first.bias)  # (N, 512)
        # Each video's audio with tau zero frames either side, all videos end to end.
        padded = torch.cat([F.pad(x, (0, 0, tau, tau)) for x in torch.split(a, lengths)])
        w = F.linear(self.audio_proj(padded), first.weight[:, half:])  # (sum (T_i + 2 tau), 512)
        windows = w.unfold(0, 2 * tau + 1, 1)  # (rows, 512, 2 tau + 1): row r sees w[r .. r + 2 tau]
        starts = np.cumsum([0] + [n + 2 * tau for n in lengths[:-1]])
        rows = torch.from_numpy(np.concatenate([s + np.arange(n) for s, n in zip(starts, lengths)]))
        h = u[:, None, :] + windows[rows].transpose(1, 2)  # (N, 2 tau + 1, 512)
        return self.mlp[1:](h).squeeze(-1)


def _frame_batches(lengths: np.ndarray, batch_frames: int, rng: np.random.Generator | None) -> list[np.ndarray]:
    """Groups of whole videos of at most ``batch_frames`` frames (a longer video alone),
    videos shuffled when ``rng`` is given, else in order."""
    order = rng.permutation(len(lengths)) if rng is not None else np.arange(len(lengths))
    batches, cur, n = [], [], 0
    for i in order.tolist():
        if cur and n + lengths[i] > batch_frames:
            batches.append(np.array(cur))
            cur, n = [], 0
        cur.append(i)
        n += int(lengths[i])
    if cur:
        batches.append(np.array(cur))
    return batches


class SyncDetector(BaseEstimator):
    """AVH-Align: a frame-level audio-visual synchronisation network trained on real videos.

    Inputs are a visual FeatureSet ``V`` and an audio FeatureSet ``A`` at the same frame rate,
    matched by video id (labels and metadata are V's); each frame is L2-normalised and both
    are truncated to their common length.

    Args:
        tau: the softmax runs over audio frames t - tau .. t + tau (upstream: 15).
        hidden: width of the concatenated projections (upstream: 1024, i.e. 512 + 512).
        widths: the MLP's hidden widths (upstream: (512, 256, 128)); smaller for tests.
        lr: Adam learning rate. Upstream: 1e-5 with batches of 1,024 frames and up to 500
            epochs over 45k videos; on a few hundred videos (the demo) that is too slow to
            move, and a larger rate (1e-4 .. 1e-3) is needed.
        lr_factor, lr_patience: ReduceLROnPlateau on the validation loss (upstream: 0.1, 5);
            without ``val`` it follows the training loss.
        max_epochs: epoch cap (upstream: 500).
        patience: early stopping on the validation loss (upstream: 10).
        batch_frames: visual frames per step (upstream: 1,024), as whole videos.
        random_state: seed of the initialisation and the video order (caller's torch RNG
            untouched).
        max_resident_mb: sets larger than this are unmapped as they stream (bounded RSS).
        verbose: print one line per epoch.

    Torch's thread count is the caller's.

    Learned attributes: ``module_`` (φ, eval mode; upstream module names), ``dims_`` (Dv, Da),
    ``n_features_in_`` (Dv + Da), ``best_epoch_``, ``history_`` (dicts: epoch, train_loss,
    val_loss, lr, seconds), ``n_train_``.
    """

    def __init__(self, *, tau: int = 15, hidden: int = 1024, widths: tuple[int, ...] = (512, 256, 128),
                 lr: float = 1e-5, lr_factor: float = 0.1,
                 lr_patience: int = 5, max_epochs: int = 500, patience: int = 10,
                 batch_frames: int = 1024, random_state: int = 43, max_resident_mb: int = 2048,
                 verbose: bool = False):
        self.tau = tau
        self.hidden = hidden
        self.widths = widths
        self.lr = lr
        self.lr_factor = lr_factor
        self.lr_patience = lr_patience
        self.max_epochs = max_epochs
        self.patience = patience
        self.batch_frames = batch_frames
        self.random_state = random_state
        self.max_resident_mb = max_resident_mb
        self.verbose = verbose

    # -- data ----------------------------------------------------------------------------
    @staticmethod
    def _pair(V: FeatureSet, A: FeatureSet) -> Aligned:
        return Aligned((V, A), names=("the visual set V", "the audio set A"))

    def _reals(self, V, A, name: str) -> Aligned:
        data = self._pair(V, A)
        keep = data.labels == 0
        if not keep.any():
            raise ValueError(f"{name} has no real (label 0) video: the sync detector trains on real videos only")
        return data.subset(np.flatnonzero(keep))

    def _split(self, data: Aligned, batch: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        """(v (N, Dv), a (N, Da), lengths) of the videos ``batch``, stacked."""
        x = torch.cat([data.frames(i) for i in batch.tolist()])
        dv = data.dims[0]
        return x[:, :dv], x[:, dv:], [int(data.lengths[i]) for i in batch.tolist()]

    def _loss(self, net: _SyncNet, data: Aligned, batch: np.ndarray) -> tuple[torch.Tensor, int]:
        v, a, lengths = self._split(data, batch)
        logits = net.window_logits(v, a, lengths, self.tau)
        return -F.log_softmax(logits, dim=-1)[:, self.tau].mean(), len(v)

    # -- training ------------------------------------------------------------------------
    def fit(self, V: FeatureSet, A: FeatureSet, val: tuple[FeatureSet, FeatureSet] | None = None) -> SyncDetector:
        """Train on the real (label 0) videos of (V, A); fakes and unlabelled videos are
        ignored. ``val`` = (V_val, A_val): early stopping and the LR schedule follow the mean
        per-frame loss of its real videos, best weights kept; without it: ``max_epochs``
        epochs, last weights."""
        data = self._reals(V, A, "train")
        vdata = None if val is None else self._reals(*val, "val")
        if vdata is not None and vdata.dims != data.dims:
            raise ValueError(f"train has (Dv, Da) = {data.dims} but val has {vdata.dims}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.random_state)
            net = _SyncNet(*data.dims, hidden=self.hidden, widths=tuple(self.widths))
            opt = torch.optim.Adam(net.parameters(), lr=self.lr)
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=self.lr_factor,
                                                               patience=self.lr_patience)
            rng = np.random.default_rng(self.random_state)
            stop = EarlyStopping(self.patience, has_val=vdata is not None, verbose=self.verbose)
            for epoch in range(self.max_epochs):
                t0, lr = time.perf_counter(), opt.param_groups[0]["lr"]
                net.train()
                total, count = 0.0, 0
                batches = _frame_batches(data.lengths, self.batch_frames, rng)
                for batch in iterate(data, batches, max_resident_mb=self.max_resident_mb):
                    loss, n = self._loss(net, data, batch)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    total, count = total + loss.item() * n, count + n
                train_loss = total / count
                val_loss = math.nan if vdata is None else self._mean_loss(net, vdata)
                sched.step(train_loss if vdata is None else val_loss)
                if stop.update(net, epoch, train_loss, val_loss, time.perf_counter() - t0, lr=lr):
                    break
        self.history_ = stop.history
        self.module_ = stop.restore(net)
        self.best_epoch_ = stop.best_epoch
        self.dims_, self.n_features_in_, self.n_train_ = data.dims, data.dim, len(data)
        return self

    @torch.no_grad()
    def _mean_loss(self, net: _SyncNet, data: Aligned) -> float:
        net.eval()
        total, count = 0.0, 0
        for batch in iterate(data, _frame_batches(data.lengths, self.batch_frames, None),
                             max_resident_mb=self.max_resident_mb):
            loss, n = self._loss(net, data, batch)
            total, count = total + loss.item() * n, count + n
        return total / count

    # -- inference -----------------------------------------------------------------------
    def _data(self, V: FeatureSet, A: FeatureSet) -> Aligned:
        check_is_fitted(self)
        data = self._pair(V, A)
        if data.dims != self.dims_:
            raise ValueError(f"fitted on (Dv, Da) = {self.dims_}, got {data.dims}")
        return data

    @torch.no_grad()
    def _per_video(self, data: Aligned, fn) -> list[np.ndarray]:
        """fn(v, a, lengths) -> (N,) tensor over stacked frames, split back per video."""
        out: list[np.ndarray | None] = [None] * len(data)
        for batch in iterate(data, _frame_batches(data.lengths, self.batch_frames, None),
                             max_resident_mb=self.max_resident_mb):
            v, a, lengths = self._split(data, batch)
            for i, r in zip(batch.tolist(), torch.split(fn(v, a, lengths), lengths)):
                out[i] = r.numpy()
        return out

    def frame_scores(self, V: FeatureSet, A: FeatureSet) -> list[np.ndarray]:
        """Per-frame scores -φ(v_t, a_t): a list of N float32 arrays (T_i,), T_i the common
        length of V and A (higher = less synchronised)."""
        return self._per_video(self._data(V, A), lambda v, a, _: -self.module_(v, a))

    def decision_function(self, V: FeatureSet, A: FeatureSet) -> np.ndarray:
        """(N,) video scores logsumexp_t -φ(v_t, a_t) (higher = more likely fake)."""
        return np.array([float(torch.logsumexp(torch.from_numpy(s).double(), 0))
                         for s in self.frame_scores(V, A)])

    def predicted_offsets(self, V: FeatureSet, A: FeatureSet) -> list[np.ndarray]:
        """Per frame, the audio offset k - t in [-tau, tau] that φ ranks first among the
        window (0 = synchronised): a list of N int64 arrays (T_i,)."""
        def offsets(v, a, lengths):
            return self.module_.window_logits(v, a, lengths, self.tau).argmax(-1) - self.tau
        return self._per_video(self._data(V, A), offsets)

    def offset_accuracy(self, V: FeatureSet, A: FeatureSet, *, frames=None) -> float:
        """Fraction of frames whose top-ranked audio offset is 0 (chance ~ 1 / (2 tau + 1)),
        pooled over all frames of all videos. ``frames``: optional list of N boolean masks
        (one per video, truncated or padded with False to T_i) selecting the frames to count,
        e.g. fake segments. NaN when no frame is selected."""
        offsets = self.predicted_offsets(V, A)
        if frames is not None and len(frames) != len(offsets):
            raise ValueError(f"frames has {len(frames)} masks for {len(offsets)} videos")
        hits = total = 0
        for k, off in enumerate(offsets):
            sel = np.ones(len(off), bool)
            if frames is not None:
                m = np.zeros(len(off), bool)
                f = np.asarray(frames[k], bool)[: len(off)]
                m[: len(f)] = f
                sel = m
            hits += int((off[sel] == 0).sum())
            total += int(sel.sum())
        return hits / total if total else math.nan
