"""The probe trained the way the official release does it (github bit-ml/ssr-dfd,
``linear_probing/{datasets,model,train_test}.py``), minus PyTorch Lightning:

* one ``.npy`` file per video, ``np.load``-ed at every step, L2-normalised per frame in NumPy
  (the files here are fp16; they are cast to float32 before normalising, as the release's
  float32 files would be, which also avoids fp16 overflow in the norm);
* ``DataLoader(batch_size=1, shuffle=True)``; ``nn.Linear(D, 1)`` on every frame, logsumexp
  over time, cross-entropy on [-s, s], one Adam step (lr 1e-3) per video;
* validation loss = mean over videos each epoch, early stopping (patience 10, <= 100 epochs),
  best-validation weights kept (Lightning's EarlyStopping + ModelCheckpoint), seed 43.

``num_workers=0``: on this 2-core machine 1 or 2 loader workers were slower (3.2-3.5 ms/step
against 2.2 ms/step measured); the release uses 16 workers on a larger machine.
"""

from __future__ import annotations

import copy
import random
import time

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset


class NpyFeatures(Dataset):
    def __init__(self, paths, labels):
        self.paths, self.labels = list(paths), list(labels)

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        video = np.load(self.paths[i]).astype(np.float32)
        video = video / np.linalg.norm(video, ord=2, axis=-1, keepdims=True)
        return torch.tensor(video, dtype=torch.float32), int(self.labels[i])


class LinearModel(torch.nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.head = torch.nn.Linear(dim, 1)

    def forward(self, feats):  # (1, T, D) -> (1,)
        return torch.logsumexp(self.head(feats)[:, :, 0], dim=-1)


def _loss(model, feats, label):
    score = model(feats).unsqueeze(1)
    return torch.nn.functional.cross_entropy(torch.cat((-score, score), 1), label)


def set_seed(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train_steps(model, opt, loader, max_steps=None):
    """One pass of per-video Adam steps; returns (mean loss, seconds per step)."""
    model.train()
    total, n, t0 = 0.0, 0, time.perf_counter()
    for feats, label in loader:
        loss = _loss(model, feats, label)
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.item()
        n += 1
        if max_steps and n >= max_steps:
            break
    return total / n, (time.perf_counter() - t0) / n


@torch.no_grad()
def evaluate(model, paths, labels):
    """(mean loss, scores (N,), seconds per video) over the files in order."""
    model.eval()
    loader = DataLoader(NpyFeatures(paths, labels), batch_size=1, shuffle=False)
    scores, total, t0 = [], 0.0, time.perf_counter()
    for feats, label in loader:
        score = model(feats)
        scores.append(score.item())
        total += _loss(model, feats, label).item()
    return total / len(scores), np.array(scores), (time.perf_counter() - t0) / len(scores)


def fit(train_paths, train_labels, val_paths, val_labels, *, dim, max_epochs=100, patience=10,
        seed=43, verbose=False):
    """Early-stopped training; returns (model with best-val weights, history list)."""
    set_seed(seed)
    model = LinearModel(dim)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(NpyFeatures(train_paths, train_labels), batch_size=1, shuffle=True)
    best, history = (np.inf, -1, None), []
    for epoch in range(max_epochs):
        t0 = time.perf_counter()
        train_loss, _ = train_steps(model, opt, loader)
        val_loss, _, _ = evaluate(model, val_paths, val_labels)
        history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                        "seconds": time.perf_counter() - t0})
        if verbose:
            print(f"  official epoch {epoch}: train {train_loss:.4f} val {val_loss:.4f}", flush=True)
        if val_loss < best[0]:
            best = (val_loss, epoch, copy.deepcopy(model.state_dict()))
        elif epoch - best[1] >= patience:
            break
    model.load_state_dict(best[2])
    return model, history
