"""Next-token prediction (NTP) anomaly detector, trained on real videos only (SPEC.md, Table 4).

A causal Transformer reads the L2-normalised frames x_1..x_{T-1} of a video and predicts
x_2..x_T; a frame the model could not foresee (a manipulated one, the idea goes) has a large
error, and a video's score is its largest per-frame error::

    h   = Dropout(Linear(D -> d_model)(x) + PE)   (B, T, d_model), sinusoidal PE
    y   = Linear(d_model -> D)(CausalEncoder(h))  (B, T, D); y_t predicts x_{t+1}
    e_t = mean_d (y_{t-1,d} - x_{t,d})^2          (T,), t = 1..T-1 (0-based); e_0 undefined
    s   = max_t e_t                                video score (higher = more anomalous)

Given by the paper: the layer sizes (4 layers, 4 heads, d_model 512, FF 1024, dropout 0.1),
sinusoidal positions, MSE, Adam 1e-3 with a cosine schedule, batch 32 with padding masks,
early stopping with patience 10, max-over-time score. The rest is read from the authors' code
(github danoneata/veridiq, ``autoregression/``: ``autoregressor.py``, ``datasets.py``,
``configs/train_config.yaml``): the encoder layer is PyTorch's default (post-norm, ReLU,
dropout 0.1, no final norm); positions are added to the projected frames without scaling and
followed by a dropout of 0.1 (``pe_dropout``); the training loss averages per-frame MSEs over
all valid target frames of a batch; batches are 32 videos of a fresh uniform permutation every
epoch, zero-padded to the longest (``batching="uniform"``); the validation loss is the mean
over batches of 32 videos in the set's order of each batch's loss, weighted by its number of
videos (Lightning's epoch mean of ``val_loss``); the cosine schedule anneals to 0 over
``max_epochs`` (100) and steps once per epoch; Adam's other settings are torch's defaults;
seed 43. Departures: norms are floored at 1e-12 (upstream divides by the norm: an all-zero
frame would be NaN there), and the key-padding mask marks every real input frame as a valid
key (upstream masks the last real frame of a padded video as a key, which no prediction of a
real target attends to under the causal mask, so the outputs are the same).

Pairs (e.g. AV-HuBERT V + A): each stream is L2-normalised on its own, both are truncated to
the shorter one (the tail is dropped) and concatenated in the order given, so D = D_1 + D_2
(see :class:`avdd.heads.sequences.Aligned`); upstream puts the video stream first, as Table 4's
rows (:mod:`avdd.analysis.anomaly`) do.
"""

from __future__ import annotations

import math
import time
from typing import Sequence

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted
from torch import nn

from avdd.features.featureset import FeatureSet
from avdd.heads.sequences import Aligned, EarlyStopping, epoch_batches, iterate, length_batches, pad

__all__ = ["BATCHINGS", "NextTokenPredictor", "sinusoidal_positions"]

#: Training batch orders of :class:`NextTokenPredictor` (``batching``); the first is upstream's.
BATCHINGS = ("uniform", "length")

Input = FeatureSet | Sequence[FeatureSet]


def sinusoidal_positions(length: int, d_model: int) -> torch.Tensor:
    """(length, d_model) float32 Transformer positions: sin on even, cos on odd channels."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    pe = torch.zeros(length, d_model)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)[:, : d_model // 2]
    return pe


class _NTPNet(nn.Module):
    """Linear(D -> d) -> + sinusoidal PE -> causal TransformerEncoder -> Linear(d -> D)."""

    def __init__(self, dim: int, d_model: int, n_layers: int, n_heads: int, dim_feedforward: int,
                 dropout: float, pe_dropout: float = 0.0):
        super().__init__()
        self.d_model = d_model
        self.input = nn.Linear(dim, d_model)
        self.pe_dropout = nn.Dropout(pe_dropout)  # upstream's PositionalEncoding(dropout=0.1)
        layer = nn.TransformerEncoderLayer(d_model, n_heads, dim_feedforward, dropout, batch_first=True)
        # No nested tensors: they only apply to eval without a causal mask, and would make
        # padded outputs differ between train and eval code paths.
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.output = nn.Linear(d_model, dim)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """x (B, T, D), valid (B, T) bool -> predictions (B, T, D), row t predicting x_{t+1}."""
        t = x.shape[1]
        h = self.pe_dropout(self.input(x) + sinusoidal_positions(t, self.d_model))
        causal = torch.ones(t, t, dtype=torch.bool).triu(1)  # True = may not attend (future)
        # Right padding: with the causal mask, valid frames never see padded ones anyway; the
        # key-padding mask states it explicitly (and keeps it true for any padding layout).
        h = self.encoder(h, mask=causal, src_key_padding_mask=~valid, is_causal=True)
        return self.output(h)


def _frame_errors(net: _NTPNet, x: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(e (B, T-1) per-frame MSE of frames 1..T-1, mask (B, T-1) bool of real targets)."""
    pred = net(x[:, :-1], valid[:, :-1])
    return ((pred - x[:, 1:]) ** 2).mean(-1), valid[:, 1:]


class NextTokenPredictor(BaseEstimator):
    """Causal Transformer that predicts each frame from the previous ones; score = max error.

    Inputs (``train``, ``val``, ``X``) are a FeatureSet or a tuple of FeatureSets matched by
    video id (each L2-normalised per frame, truncated to the common length, concatenated).

    Args:
        d_model, n_layers, n_heads, dim_feedforward, dropout: encoder size (paper: 512, 4, 4,
            1024, 0.1).
        pe_dropout: dropout applied to the projected frames plus positions, before the encoder
            (upstream: 0.1).
        lr: Adam learning rate (paper: 1e-3), annealed to 0 by a cosine over ``max_epochs``.
        max_epochs: epoch cap (upstream: 100).
        patience: stop after this many epochs without a lower validation loss (paper: 10).
        batch_size: videos per step (paper: 32), also the validation loss's batches.
        batching: ``"uniform"`` (upstream): each epoch a fresh uniform permutation of the
            training videos cut into batches; ``"length"``: batches of similar lengths (sorted
            with a random jitter, batches shuffled; less padding, so faster on a CPU, but a
            batch then holds videos of one length range: not the official recipe).
        random_state: seed of the initialisation, dropout and batch order. The caller's global
            torch RNG is left as it was.
        max_resident_mb: sets with more frame bytes than this are unmapped batch by batch as
            they stream (bounded RSS); smaller ones stay mapped across epochs.
        verbose: print one line per epoch.

    Torch's thread count is the caller's (``torch.set_num_threads``).

    Learned attributes: ``module_`` (the network, eval mode), ``dims_`` (D of each input set),
    ``n_features_in_`` (their sum), ``best_epoch_`` (0-based epoch of the kept weights),
    ``history_`` (dicts: epoch, train_loss, val_loss, lr, seconds), ``n_train_`` (real videos
    used).
    """

    def __init__(self, *, d_model: int = 512, n_layers: int = 4, n_heads: int = 4,
                 dim_feedforward: int = 1024, dropout: float = 0.1, pe_dropout: float = 0.1,
                 lr: float = 1e-3, max_epochs: int = 100, patience: int = 10,
                 batch_size: int = 32, batching: str = "uniform", random_state: int = 43,
                 max_resident_mb: int = 2048, verbose: bool = False):
        self.d_model = d_model
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.dim_feedforward = dim_feedforward
        self.dropout = dropout
        self.pe_dropout = pe_dropout
        self.lr = lr
        self.max_epochs = max_epochs
        self.patience = patience
        self.batch_size = batch_size
        self.batching = batching
        self.random_state = random_state
        self.max_resident_mb = max_resident_mb
        self.verbose = verbose

    # -- training ----------------------------------------------------------------------------
    def _reals(self, X: Input, name: str) -> Aligned:
        """Real (label 0) videos with at least two frames: the only ones NTP learns from."""
        data = Aligned(X)
        keep = (data.labels == 0) & (data.lengths >= 2)
        if not keep.any():
            raise ValueError(f"{name} has no real (label 0) video of two frames or more: NTP trains on "
                             f"real videos only ({int((data.labels == 0).sum())} reals of {len(data)})")
        return data.subset(np.flatnonzero(keep))

    def fit(self, train: Input, val: Input | None = None) -> NextTokenPredictor:
        """Train on the real (label 0) videos of ``train``; fakes and unlabelled (-1) videos are
        ignored, as are one-frame videos (nothing to predict). Early stopping on the mean
        per-frame error of the real videos of ``val``, best weights kept; without ``val``:
        ``max_epochs`` epochs and the last weights. Raises ValueError if a set has no reals."""
        if self.batching not in BATCHINGS:
            raise ValueError(f"batching={self.batching!r}: expected one of {BATCHINGS}")
        data = self._reals(train, "train")
        vdata = None if val is None else self._reals(val, "val")
        if vdata is not None and vdata.dims != data.dims:
            raise ValueError(f"train has D = {data.dims} but val has D = {vdata.dims}")
        with torch.random.fork_rng(devices=[]):  # seeded init and dropout, caller's RNG untouched
            torch.manual_seed(self.random_state)
            net = _NTPNet(data.dim, self.d_model, self.n_layers, self.n_heads, self.dim_feedforward,
                          self.dropout, self.pe_dropout)
            opt = torch.optim.Adam(net.parameters(), lr=self.lr)
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(self.max_epochs, 1))
            rng = np.random.default_rng(self.random_state)
            stop = EarlyStopping(self.patience, has_val=vdata is not None, verbose=self.verbose)
            for epoch in range(self.max_epochs):
                t0, lr = time.perf_counter(), opt.param_groups[0]["lr"]
                train_loss = self._train_epoch(net, opt, data, rng)
                sched.step()
                val_loss = math.nan if vdata is None else self._val_loss(net, vdata)
                if stop.update(net, epoch, train_loss, val_loss, time.perf_counter() - t0, lr=lr):
                    break
        self.history_ = stop.history
        self.module_ = stop.restore(net)
        self.best_epoch_ = stop.best_epoch
        self.dims_, self.n_features_in_, self.n_train_ = data.dims, data.dim, len(data)
        return self

    def _train_epoch(self, net: _NTPNet, opt, data: Aligned, rng) -> float:
        """One pass over ``data`` in ``self.batching`` batches; mean per-frame loss."""
        net.train()
        total, count = 0.0, 0
        batches = epoch_batches(data.lengths, self.batch_size, self.batching, rng)
        for batch in iterate(data, batches, max_resident_mb=self.max_resident_mb):
            x, valid = pad([data.frames(i) for i in batch.tolist()])
            err, mask = _frame_errors(net, x, valid)
            n = int(mask.sum())
            loss = (err * mask).sum() / n  # every valid frame of the batch weighs the same
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total, count = total + loss.item() * n, count + n
        return total / count

    @torch.no_grad()
    def _errors(self, net: _NTPNet, data: Aligned) -> list[np.ndarray]:
        """Per-video (T_i,) float32 errors, NaN at frame 0, in ``data``'s order."""
        net.eval()
        out: list[np.ndarray | None] = [None] * len(data)
        batches = length_batches(data.lengths, self.batch_size, None)
        for batch in iterate(data, batches, max_resident_mb=self.max_resident_mb):
            x, valid = pad([data.frames(i) for i in batch.tolist()])
            if x.shape[1] < 2:  # only one-frame videos: nothing is predicted
                err = torch.empty(len(batch), 0)
            else:
                err, _ = _frame_errors(net, x, valid)
            for j, i in enumerate(batch.tolist()):
                n = int(data.lengths[i])
                out[i] = np.concatenate([[np.nan], err[j, : n - 1].numpy()]).astype(np.float32)
        return out

    def _val_loss(self, net: _NTPNet, data: Aligned) -> float:
        """Upstream's validation loss: batches of ``batch_size`` videos in ``data``'s order,
        each batch's loss the mean error over its valid target frames, averaged over batches
        weighted by their number of videos. The errors themselves are computed in
        length-sorted batches (less padding; the same values, see :meth:`_errors`)."""
        errs = self._errors(net, data)
        sums = np.array([e[1:].astype(np.float64).sum() for e in errs])
        counts = np.array([len(e) - 1 for e in errs])
        starts = np.arange(0, len(errs), self.batch_size)
        per_batch = np.add.reduceat(sums, starts) / np.add.reduceat(counts, starts)
        return float(np.average(per_batch, weights=np.diff(np.r_[starts, len(errs)])))

    # -- inference ---------------------------------------------------------------------------
    def _data(self, X: Input) -> Aligned:
        check_is_fitted(self)
        data = Aligned(X)
        if data.dims != self.dims_:
            raise ValueError(f"fitted on inputs of D = {self.dims_}, got D = {data.dims}")
        return data

    def frame_errors(self, X: Input) -> list[np.ndarray]:
        """Per-frame prediction errors: a list of N float32 arrays (T_i,), T_i the common
        length of the inputs. Entry t >= 1 is mean_d (prediction of x_t from x_<t - x_t)^2;
        entry 0 is NaN (frame 0 has no past to predict it from)."""
        data = self._data(X)  # checks fitted first
        return self._errors(self.module_, data)

    def decision_function(self, X: Input) -> np.ndarray:
        """(N,) video scores = max over frames 1..T-1 of the per-frame error (higher = more
        anomalous). A one-frame video has no prediction and scores NaN."""
        errs = self.frame_errors(X)
        return np.array([float(e[1:].max()) if len(e) > 1 else np.nan for e in errs])
