"""Appendix: a small temporal Transformer head, compared with the frame-wise linear probe.

The paper's appendix compares a Transformer head with the linear probe but does not publish
its architecture *(inferred: the choices below are ours)*. We keep everything but the
head's temporal mixing equal to the probe, so that a difference in AUC is due to the frames
seeing each other::

    x_t  = φ_t / ||φ_t||                         (T, D) per-frame L2-normalised (as the probe)
    h    = Linear(D -> d)(x) + PE                (T, d), sinusoidal positions
    h    = TransformerEncoder(h, padding mask)   n_layers pre-LN layers, bidirectional
    l_t  = Linear(d -> 1)(h_t)                   (T,) frame logits (temporal explanation)
    s    = logsumexp_t l_t                       video score, as the probe's
    loss = CE([-s, s], y)                        as the probe's (P(fake) = σ(2s))

Pooling by log-sum-exp (not mean or attention pooling) keeps the probe's "one fake stretch is
enough" bias and its per-frame logits, so the two heads differ only in the encoder. Defaults:
1 layer, d 64, 4 heads, FF 128, dropout 0.1; Adam lr 1e-3; minibatches of 16 length-bucketed
videos with padding masks (:mod:`avdd.heads.sequences`); early stopping on mean validation loss
(patience 10, at most 100 epochs) keeping the best weights; seed 43.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted
from torch import nn

from avdd.features.featureset import FeatureSet
from avdd.features.threads import limit_threads
from avdd.heads.ntp import sinusoidal_positions
from avdd.heads.scoring import probability, video_losses
from avdd.heads.sequences import Aligned, EarlyStopping, iterate, length_batches, pad

__all__ = ["TransformerHead"]


class _HeadNet(nn.Module):
    """Linear(D -> d) + PE -> pre-LN TransformerEncoder -> Linear(d -> 1) per frame."""

    def __init__(self, dim: int, d_model: int, n_layers: int, n_heads: int,
                 dim_feedforward: int, dropout: float):
        super().__init__()
        self.d_model = d_model
        self.input = nn.Linear(dim, d_model)
        layer = nn.TransformerEncoderLayer(d_model, n_heads, dim_feedforward, dropout,
                                           batch_first=True, norm_first=True)
        # Pre-LN needs a final norm; nested tensors off so train and eval share one code path.
        self.encoder = nn.TransformerEncoder(layer, n_layers, norm=nn.LayerNorm(d_model),
                                             enable_nested_tensor=False)
        self.output = nn.Linear(d_model, 1)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """x (B, T, D), valid (B, T) bool -> frame logits (B, T); padded frames = -inf."""
        h = self.input(x) + sinusoidal_positions(x.shape[1], self.d_model)
        h = self.encoder(h, src_key_padding_mask=~valid)
        return self.output(h).squeeze(-1).masked_fill(~valid, -math.inf)


class TransformerHead(ClassifierMixin, BaseEstimator):
    """A small Transformer over a video's frames with the probe's log-sum-exp score.

    Args:
        d_model, n_layers, n_heads, dim_feedforward, dropout: encoder size.
        lr: Adam learning rate (no weight decay, as the probe).
        max_epochs: epoch cap; patience: epochs without a lower mean validation loss before
            stopping (best-validation weights kept).
        batch_size: videos per step (length-bucketed, right-padded, masked).
        random_state: seed of initialisation, dropout and batch order (the caller's global
            torch RNG is left untouched).
        max_resident_mb: sets larger than this are unmapped batch by batch as they stream.
        n_threads: torch threads while fitting and scoring (restored afterwards); 1 by default,
            as the probe: matrices this small gain nothing from intra-op threads and lose
            several-fold on a shared CPU. ``None``: the caller's setting.
        verbose: print one line per epoch.

    Learned: ``module_`` (eval mode), ``best_epoch_`` (0-based), ``history_`` (dicts epoch /
    train_loss / val_loss / seconds), ``n_features_in_``, ``classes_`` = [0, 1].
    """

    def __init__(self, *, d_model: int = 64, n_layers: int = 1, n_heads: int = 4,
                 dim_feedforward: int = 128, dropout: float = 0.1, lr: float = 1e-3,
                 max_epochs: int = 100, patience: int = 10, batch_size: int = 16,
                 random_state: int = 43, max_resident_mb: int = 2048,
                 n_threads: int | None = 1, verbose: bool = False):
        self.d_model = d_model
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.dim_feedforward = dim_feedforward
        self.dropout = dropout
        self.lr = lr
        self.max_epochs = max_epochs
        self.patience = patience
        self.batch_size = batch_size
        self.random_state = random_state
        self.max_resident_mb = max_resident_mb
        self.n_threads = n_threads
        self.verbose = verbose

    # -- training ----------------------------------------------------------------------------
    @staticmethod
    def _labelled(X: FeatureSet, name: str) -> Aligned:
        data = Aligned(X)
        bad = sorted(set(data.labels.tolist()) - {0, 1})
        if bad:
            raise ValueError(f"{name}: labels must be 0 (real) or 1 (fake), found {bad}")
        return data

    def fit(self, train: FeatureSet, val: FeatureSet | None = None) -> TransformerHead:
        """Train on ``train`` (labels 0/1); early stopping on ``val``'s mean loss, best
        weights kept. Without ``val``: ``max_epochs`` epochs, last weights."""
        data = self._labelled(train, "train")
        vdata = None if val is None else self._labelled(val, "val")
        if vdata is not None and vdata.dim != data.dim:
            raise ValueError(f"train has D = {data.dim} but val has D = {vdata.dim}")
        with torch.random.fork_rng(devices=[]), limit_threads(self.n_threads):
            torch.manual_seed(self.random_state)
            net = _HeadNet(data.dim, self.d_model, self.n_layers, self.n_heads,
                           self.dim_feedforward, self.dropout)
            opt = torch.optim.Adam(net.parameters(), lr=self.lr)
            rng = np.random.default_rng(self.random_state)
            stop = EarlyStopping(self.patience, has_val=vdata is not None, verbose=self.verbose)
            for epoch in range(self.max_epochs):
                t0 = time.perf_counter()
                train_loss = self._train_epoch(net, opt, data, rng)
                val_loss = math.nan if vdata is None else float(
                    video_losses(torch.from_numpy(self._scores(net, vdata)),
                            torch.from_numpy(vdata.labels).float()).mean())
                if stop.update(net, epoch, train_loss, val_loss, time.perf_counter() - t0):
                    break
        self.history_ = stop.history
        self.module_ = stop.restore(net)
        self.best_epoch_ = stop.best_epoch
        self.n_features_in_ = data.dim
        self.classes_ = np.array([0, 1])
        return self

    def _train_epoch(self, net: _HeadNet, opt, data: Aligned, rng) -> float:
        """One pass in length-bucketed minibatches; mean per-video loss."""
        net.train()
        total = 0.0
        batches = length_batches(data.lengths, self.batch_size, rng)
        for batch in iterate(data, batches, max_resident_mb=self.max_resident_mb):
            x, valid = pad([data.frames(i) for i in batch.tolist()])
            scores = torch.logsumexp(net(x, valid), dim=1)
            loss = video_losses(scores, torch.from_numpy(data.labels[batch]).float()).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(batch)
        return total / len(data)

    @torch.no_grad()
    def _frame_logits(self, net: _HeadNet, data: Aligned) -> list[np.ndarray]:
        net.eval()
        out: list[np.ndarray | None] = [None] * len(data)
        batches = length_batches(data.lengths, self.batch_size, None)
        for batch in iterate(data, batches, max_resident_mb=self.max_resident_mb):
            x, valid = pad([data.frames(i) for i in batch.tolist()])
            logits = net(x, valid)
            for j, i in enumerate(batch.tolist()):
                out[i] = logits[j, : int(data.lengths[i])].numpy().astype(np.float32)
        return out

    def _scores(self, net: _HeadNet, data: Aligned) -> np.ndarray:
        return np.array([float(torch.logsumexp(torch.from_numpy(f), 0))
                         for f in self._frame_logits(net, data)])

    # -- inference ---------------------------------------------------------------------------
    def _data(self, X: FeatureSet) -> Aligned:
        check_is_fitted(self)
        data = Aligned(X)
        if data.dim != self.n_features_in_:
            raise ValueError(f"fitted on D = {self.n_features_in_}, got D = {data.dim}")
        return data

    def frame_logits(self, X: FeatureSet) -> list[np.ndarray]:
        """Per-frame logits: a list of N float32 arrays (T_i,) (the temporal explanation)."""
        with limit_threads(self.n_threads):
            return self._frame_logits(self.module_, self._data(X))

    def decision_function(self, X: FeatureSet) -> np.ndarray:
        """(N,) video scores s = logsumexp_t l_t (higher = more likely fake)."""
        with limit_threads(self.n_threads):
            return self._scores(self.module_, self._data(X))

    def predict_proba(self, X: FeatureSet) -> np.ndarray:
        """(N, 2) [P(real), P(fake)] with P(fake) = σ(2 s)."""
        p = probability(self.decision_function(X))
        return np.stack([1.0 - p, p], axis=1)

    def predict(self, X: FeatureSet) -> np.ndarray:
        """(N,) 0/1 labels, fake when s > 0."""
        return (self.decision_function(X) > 0).astype(np.int64)


