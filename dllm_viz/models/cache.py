"""Block-wise prefix KV cache (Fast-dLLM's PrefixCache, Wu et al. 2025, §3.2), per batch row.

When a row enters a block, one full forward pass refreshes its cache: the keys and values of
every layer at every position. Until the row leaves that block, later passes run only on the
window from the block start to the end of the canvas, and attention reads the stored keys and
values for the prefix before it (prompt and finished blocks). The refresh pass also decodes, so
it costs no extra NFE.

This is exact for the first pass of each block and **approximate** afterwards: LLaDA and Dream
attend bidirectionally, so in layers ≥ 1 the prefix's true keys and values change when the
current block's tokens change, and the stored ones are from the refresh. Fast-dLLM reports the
accuracy cost as small; the engine records that a run used the cache, and the tests measure the
drift instead of assuming it away.

Rows of a batch enter blocks at different steps. One pass serves them all: it starts at the
earliest window start of the rows it runs, and in each layer every row keeps its own stored
prefix (``reuse``), so a row's logits do not depend on what else is in the batch. Positions a
row did not recompute keep the features of its last pass (:meth:`assemble`).
"""

from __future__ import annotations

import torch

from ..features import Features


class PrefixKVCache:
    """Stored keys/values for a batch's canvas plus the per-row bookkeeping of which prefix to reuse.

    Args:
        batch: B, rows of the engine's batch.
        length: T, canvas length (prompt + generation).
        prompt_length: P, where the generation starts in the canvas.
        block_length: BL.
        logit_shift: 1 for AR-initialised models (Dream) whose position i is predicted at i − 1,
            so the window must also recompute the position before the block; else 0.

    Model-facing: :attr:`start` (the window start of the current pass) and :meth:`merge`.
    Engine-facing: :meth:`plan` before the pass and :meth:`assemble` after it.
    """

    def __init__(self, batch: int, length: int, prompt_length: int, block_length: int, logit_shift: int = 0):
        self.batch, self.length, self.prompt_length = batch, length, prompt_length
        self.block_length, self.logit_shift = block_length, logit_shift
        self.keys: dict[int, torch.Tensor] = {}  # layer → (B, H_kv, T, d)
        self.values: dict[int, torch.Tensor] = {}
        self.cached_block: torch.Tensor | None = None  # (B,) block of the last refresh, -1 = none
        self.prefix_end: torch.Tensor | None = None  # (B,) first position a row recomputes
        self.start = 0
        self.rows: torch.Tensor | slice = slice(None)
        self.reuse: torch.Tensor | None = None  # (b, T) positions whose stored K/V this pass reads
        self.fresh_from: torch.Tensor | None = None  # (b,) first canvas position with a fresh prediction
        self._last: tuple[torch.Tensor, ...] | None = None

    # ---- engine side -------------------------------------------------------------------------

    def plan(self, rows: torch.Tensor | slice, block: torch.Tensor) -> None:
        """Decide the next pass for the active ``rows`` whose current blocks are ``block`` (b,).

        A row whose block changed since its last refresh (or that has none) refreshes: it
        recomputes everything and stores it. The others reuse their stored prefix.
        """
        device = block.device
        if self.cached_block is None or self.prefix_end is None:  # both are set on the first plan
            self.cached_block = torch.full((self.batch,), -1, dtype=torch.long, device=device)
            self.prefix_end = torch.zeros(self.batch, dtype=torch.long, device=device)
        refresh = block != self.cached_block[rows]
        own = torch.where(refresh, torch.zeros_like(block), self.prefix_end[rows])  # (b,) row's window start
        self.rows, self.start = rows, int(own.min())
        self.reuse = torch.arange(self.length, device=device) < own.unsqueeze(1)
        self.fresh_from = own + self.logit_shift
        block_start = self.prompt_length + block * self.block_length - self.logit_shift
        self.cached_block[rows] = block
        self.prefix_end[rows] = torch.where(refresh, block_start.clamp_min(0), self.prefix_end[rows])

    def assemble(
        self, feats: Features, tokens: torch.Tensor, token_prob: torch.Tensor
    ) -> tuple[Features, torch.Tensor, torch.Tensor]:
        """Full-length (b, L) features, proposals and their probabilities for this pass's rows.

        ``feats``, ``tokens`` and ``token_prob`` cover generation positions ``[g0, L)`` with
        ``g0 = max(0, start - P)``; positions a row did not recompute take its previous values.
        """
        if self.fresh_from is None:
            raise RuntimeError("prefix cache: assemble() needs a plan() first")
        P, L = self.prompt_length, self.length - self.prompt_length
        g0 = L - tokens.shape[1]
        fresh = torch.arange(P, P + L, device=tokens.device) >= self.fresh_from.unsqueeze(1)  # (b, L)
        new = [*(getattr(feats, f) for f in Features.__dataclass_fields__), tokens, token_prob]
        if self._last is None:  # the first pass refreshes every row of the batch
            if g0 or not bool(fresh.all()):
                raise RuntimeError("prefix cache: the first pass must recompute every position")
            self._last = tuple(t.clone() for t in new)
            return feats, tokens, token_prob
        out = []
        for value, last in zip(new, self._last, strict=True):
            prev = last[self.rows]
            if g0:
                value = torch.cat([prev[:, :g0], value], dim=1)
            mask = fresh.view(*fresh.shape, *([1] * (value.dim() - 2)))
            value = torch.where(mask, value, prev)
            last[self.rows] = value
            out.append(value)
        return Features(*out[:5]), out[5], out[6]

    # ---- model side --------------------------------------------------------------------------

    def merge(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys/values over the whole canvas for ``layer`` from the fresh window ones (b, H, T - start, d).

        Positions before :attr:`start` and positions a row reuses read the store; the rest are the
        fresh values, which are stored for later passes.
        """
        if self.reuse is None:
            raise RuntimeError("prefix cache: merge() needs a plan() first")
        reuse = self.reuse[:, None, self.start :, None]
        if layer not in self.keys:
            if self.start:
                raise RuntimeError("prefix cache: the first pass must start at position 0")
            self.keys[layer] = k.new_zeros((self.batch, *k.shape[1:]))
            self.values[layer] = v.new_zeros((self.batch, *v.shape[1:]))
        out = []
        for store, fresh in ((self.keys[layer], k), (self.values[layer], v)):
            stored = store[self.rows]
            window = torch.where(reuse, stored[:, :, self.start :], fresh)
            if isinstance(self.rows, slice):
                store[:, :, self.start :] = window
            else:
                store[self.rows, :, self.start :] = window
            out.append(torch.cat([stored[:, :, : self.start], window], dim=2) if self.start else window)
        return out[0], out[1]
