"""ESPnet-style encoder pieces shared by BRAVEn/RAVEn and Auto-AVSR: relative positional
encoding, rel-pos multi-head self-attention (Transformer-XL, arXiv 1901.02860 §3.3), the
position-wise feed-forward and Swish.

Both upstream code bases (``ahaliassos/raven``, ``mpc001/auto_avsr``) carry two rel-pos
variants. Their released checkpoints use the **"latest"** one (RAVEn/BRAVEn configs set
``rel_pos_type: latest``; Auto-AVSR always builds ``RelPositionMultiHeadedAttention`` for
``rel_mha``), so only that one is here:

* the encoding only *scales* the input, ``x · √d``, and returns a separate table of
  ``2T − 1`` sinusoids for relative positions ``T−1, …, 0, …, −(T−1)`` (the "legacy" variant
  had ``T`` positions and a different shift);
* attention adds ``(q + u)·kᵀ`` (content) and ``rel_shift((q + v)·pᵀ)`` (position), scaled
  by ``1/√d_k``.

Parameter names (``linear_q``, ``linear_pos``, ``pos_bias_u``, ``w_1`` ...) are the upstream
ones, so checkpoints load without renaming inside these modules. No dropout: every model here
is a frozen feature extractor run in eval mode, where ESPnet's dropouts are identities.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from avdd.backbones.layers import windows

LN_EPS = 1e-12  # ESPnet's LayerNorm eps (not torch's 1e-5); checkpoints were trained with it


def layer_norm(dim: int) -> nn.LayerNorm:
    """ESPnet ``LayerNorm``: torch's, with eps 1e-12."""
    return nn.LayerNorm(dim, eps=LN_EPS)


class Swish(nn.Module):
    """``x · sigmoid(x)`` (= SiLU); upstream names it Swish and uses it in the conv modules."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(x)


def rel_position_table(length: int, dim: int) -> torch.Tensor:
    """Sinusoids of the relative positions ``length−1, …, 1, 0, −1, …, −(length−1)``.

    Returns ``(1, 2·length − 1, dim)`` float32; row ``r`` encodes position ``p = length−1−r``
    as ``[sin(p·w₀), cos(p·w₀), sin(p·w₁), …]`` with ``w_k = 10000^(−2k/dim)``. Positions are
    computed directly (upstream slices a 5000-long cached table: the same numbers).
    """
    pos = torch.arange(length - 1, -length, -1, dtype=torch.float32).unsqueeze(1)
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * -(math.log(10000.0) / dim))
    table = torch.zeros(2 * length - 1, dim)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq)
    return table.unsqueeze(0)


class RelPositionalEncoding(nn.Module):
    """``x`` → ``(x · √dim, pos_emb)``; no parameters, so no checkpoint keys.

    Shapes: ``x (B, T, dim)`` → ``x (B, T, dim)``, ``pos_emb (1, 2T − 1, dim)``.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.xscale = math.sqrt(dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pos_emb = rel_position_table(x.size(1), self.dim).to(device=x.device, dtype=x.dtype)
        return x * self.xscale, pos_emb


def rel_shift(scores: torch.Tensor) -> torch.Tensor:
    """Turn query-by-relative-position scores into query-by-key scores.

    ``scores (B, H, T, 2T − 1)``, column ``c`` = relative position ``T−1−c`` (the
    :func:`rel_position_table` order) → ``(B, H, T, T)`` with ``out[..., i, j] =
    scores[..., i, T − 1 − i + j]``, i.e. the score of relative position ``i − j``.

    Transformer-XL's trick instead of a gather: a zero column in front, reading the padded
    ``(T, 2T)`` block as ``(2T, T)`` and dropping its first row moves row ``i`` left by
    ``T − 1 − i``; the first ``T`` columns are then the wanted ones.
    """
    b, h, t, n = scores.shape
    padded = F.pad(scores, (1, 0)).view(b, h, n + 1, t)
    return padded[:, :, 1:].reshape(b, h, t, n)[..., :t]


class RelPositionMultiHeadedAttention(nn.Module):
    """Self-attention with relative positions (ESPnet's "latest" variant).

    Shapes: ``x (B, T, dim)``, ``pos_emb (1, 2T − 1, dim)``, ``mask (B, 1, T)`` bool (True =
    a real frame) or ``None`` → ``(B, T, dim)``.
    """

    def __init__(self, heads: int, dim: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not a multiple of heads {heads}")
        self.h, self.d_k = heads, dim // heads
        self.linear_q = nn.Linear(dim, dim)
        self.linear_k = nn.Linear(dim, dim)
        self.linear_v = nn.Linear(dim, dim)
        self.linear_out = nn.Linear(dim, dim)
        self.linear_pos = nn.Linear(dim, dim, bias=False)
        # Transformer-XL's global content (u) and position (v) biases, one per head.
        self.pos_bias_u = nn.Parameter(torch.empty(heads, self.d_k))
        self.pos_bias_v = nn.Parameter(torch.empty(heads, self.d_k))
        nn.init.xavier_uniform_(self.pos_bias_u)
        nn.init.xavier_uniform_(self.pos_bias_v)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, L, dim)`` → ``(B, L, H, d_k)``."""
        return x.view(x.size(0), -1, self.h, self.d_k)

    def forward(self, x: torch.Tensor, pos_emb: torch.Tensor,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        b, t, _ = x.shape
        q = self._heads(self.linear_q(x))                         # (B, T, H, d_k)
        k = self._heads(self.linear_k(x)).transpose(1, 2)         # (B, H, T, d_k)
        v = self._heads(self.linear_v(x)).transpose(1, 2)         # (B, H, T, d_k)
        p = self._heads(self.linear_pos(pos_emb)).transpose(1, 2)  # (1, H, 2T−1, d_k)
        # The scores of all T queries are (B, H, T, 2T − 1) floats: 1.7 GB for T = 7,500 at 4
        # heads. A long sequence takes its queries in row blocks (same math per row).
        row_bytes = b * self.h * (2 * t - 1) * x.element_size()
        rows = windows.spans(t, row_bytes)
        if rows is None:
            out = self._attend(q, k, v, p, mask)
        else:
            out = windows.filled(lambda s, e: self._attend_rows(q, k, v, p, mask, s, e),
                                 rows, dim=2)
        return self.linear_out(out.transpose(1, 2).reshape(b, t, self.h * self.d_k))

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, p: torch.Tensor,
                mask: torch.Tensor | None) -> torch.Tensor:
        """All queries at once: ``(B, H, T, d_k)``."""
        content = (q + self.pos_bias_u).transpose(1, 2) @ k.transpose(-2, -1)
        position = rel_shift((q + self.pos_bias_v).transpose(1, 2) @ p.transpose(-2, -1))
        return self._weigh((content + position) / math.sqrt(self.d_k), v, mask)

    def _attend_rows(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, p: torch.Tensor,
                     mask: torch.Tensor | None, start: int, stop: int) -> torch.Tensor:
        """Queries ``start:stop`` only: ``(B, H, stop − start, d_k)``, the rows of
        :meth:`_attend`.

        Query ``i`` reads the relative positions ``i − j`` of every key ``j``: rows
        ``T−1−i … 2T−2−i`` of ``p``, so the block needs rows ``T − stop … 2T − 2 − start``
        (``c + T − 1`` of them for ``c`` queries), and :func:`rel_shift_rows` aligns them.
        """
        t = k.shape[2]
        qs = q[:, start:stop]
        content = (qs + self.pos_bias_u).transpose(1, 2) @ k.transpose(-2, -1)
        band = p[:, :, t - stop: 2 * t - 1 - start]
        position = rel_shift_rows((qs + self.pos_bias_v).transpose(1, 2) @ band.transpose(-2, -1),
                                  t)
        return self._weigh((content + position) / math.sqrt(self.d_k), v, mask)

    @staticmethod
    def _weigh(scores: torch.Tensor, v: torch.Tensor,
               mask: torch.Tensor | None) -> torch.Tensor:
        """Softmax over keys, then the values: ``(B, H, rows, T)`` → ``(B, H, rows, d_k)``."""
        if mask is None:
            attn = torch.softmax(scores, dim=-1)
        else:  # padded keys get no weight (upstream: min-value fill, softmax, zero fill)
            pad = ~mask.bool().unsqueeze(1)                        # (B, 1, 1, T)
            scores = scores.masked_fill(pad, torch.finfo(scores.dtype).min)
            attn = torch.softmax(scores, dim=-1).masked_fill(pad, 0.0)
        return attn @ v


def rel_shift_rows(scores: torch.Tensor, keys: int) -> torch.Tensor:
    """:func:`rel_shift` for a block of ``c`` consecutive queries.

    ``scores (B, H, c, c + keys − 1)``: query ``r`` of the block against the relative
    positions of its band (column ``n`` = the ``n``-th of ``p``'s rows ``T − stop …``) →
    ``(B, H, c, keys)`` with ``out[..., r, j] = scores[..., r, c − 1 − r + j]``. The same
    trick: a zero column in front and the block read from flat offset ``c`` moves row ``r``
    left by ``c − 1 − r``; with ``c = keys`` it is :func:`rel_shift` exactly.
    """
    b, h, c, n = scores.shape
    flat = F.pad(scores, (1, 0)).reshape(b, h, c * (n + 1))
    return flat[..., c: c + c * n].reshape(b, h, c, n)[..., :keys]


class FeedForward(nn.Module):
    """ESPnet ``PositionwiseFeedForward``: ``w_2(ReLU(w_1(x)))``, ``(B, T, dim)`` → same."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.w_1 = nn.Linear(dim, hidden)
        self.w_2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Per frame; its hidden layer (16 KiB a frame in BRAVEn Large, 12 in Auto-AVSR) is the
        # largest tensor: a sequence whose hidden layer would exceed the budget runs in blocks.
        hidden_bytes = x.shape[0] * self.w_1.out_features * x.element_size()
        return windows.windowed(self._frames, x, frames=x.shape[1], frame_bytes=hidden_bytes)

    def _frames(self, x: torch.Tensor) -> torch.Tensor:
        return self.w_2(torch.relu(self.w_1(x)))
