"""Training pairs for the built-in dLLM and the masked-diffusion forward process.

The LLaDA-SFT recipe (Nie et al. 2025, §2.3 and App. B): the prompt is never masked; the
response is padded with EOS to a fixed length (so the model learns where an answer ends and
fills the rest of the canvas with EOS), a ratio ``t ~ U(0, 1)`` is drawn per example and every
response token is masked independently with probability ``t``; the loss is cross-entropy on
the masked positions only.

Prompts are encoded exactly as the engine's backend encodes them (chat template, then the
tokenizer without special tokens) and batches are left-padded exactly as the engine pads
them, so training sees the canvas the engine will build.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from ..tasks.problem import Problem

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

LOSS_WEIGHTINGS = ("masked_mean", "elbo")


def encode_prompt(tokenizer: PreTrainedTokenizerBase, question: str) -> list[int]:
    """Prompt ids: the chat template with a generation prompt, no special tokens added."""
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": question}], add_generation_prompt=True, tokenize=False
    )
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def encode_response(tokenizer: PreTrainedTokenizerBase, solution: str, gen_length: int) -> list[int]:
    """Response ids padded with EOS to ``gen_length``.

    Raises:
        ValueError: the solution leaves no room for an EOS, so the model could not learn to stop.
    """
    ids = list(tokenizer(solution, add_special_tokens=False)["input_ids"])
    if len(ids) >= gen_length:
        raise ValueError(
            f"solution is {len(ids)} tokens, which leaves no EOS within gen_length ({gen_length}): {solution!r}"
        )
    return ids + [tokenizer.eos_token_id] * (gen_length - len(ids))


@dataclass
class Batch:
    """Left-padded prompts followed by EOS-padded responses.

    Attributes:
        input_ids: (B, P + L) int64, clean tokens.
        attention_mask: (B, P + L) int64, 0 on left padding.
        prompt_length: P, so ``[:, P:]`` is the response region of every row.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    prompt_length: int

    def to(self, device: torch.device | str) -> Batch:
        return Batch(self.input_ids.to(device), self.attention_mask.to(device), self.prompt_length)


def collate(tokenizer: PreTrainedTokenizerBase, problems: Sequence[Problem], gen_length: int) -> Batch:
    """Encode and left-pad a list of problems (the engine's canvas layout)."""
    if not problems:
        raise ValueError("problems must not be empty")
    prompts = [encode_prompt(tokenizer, p.question) for p in problems]
    responses = [encode_response(tokenizer, p.solution, gen_length) for p in problems]
    P = max(map(len, prompts))
    ids = torch.full((len(problems), P + gen_length), tokenizer.pad_token_id, dtype=torch.long)
    attention = torch.ones_like(ids)
    for b, (prompt, response) in enumerate(zip(prompts, responses, strict=True)):
        pad = P - len(prompt)
        attention[b, :pad] = 0
        ids[b, pad:] = torch.tensor(prompt + response)
    return Batch(ids, attention, P)


def mask_responses(
    batch: Batch,
    mask_id: int,
    generator: torch.Generator,
    min_ratio: float = 1e-3,
    ratio: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The forward process: mask each response token with probability ``t``.

    Args:
        batch: clean batch.
        mask_id: the tokenizer's mask id.
        generator: RNG on the batch's device (reproducible training and resume).
        min_ratio: ``t`` is drawn from U(min_ratio, 1) so it is never exactly 0 (LLaDA's eps).
        ratio: optional (B,) fixed ratios instead of random ones (evaluation).

    Returns:
        noisy: (B, P + L) int64, input ids with masked response tokens replaced by ``mask_id``.
        masked: (B, P + L) bool, the masked positions (never in the prompt; ≥ 1 per row).
        t: (B,) float32, the mask ratio of each row.
    """
    ids, P = batch.input_ids, batch.prompt_length
    B, L = ids.shape[0], ids.shape[1] - P
    device = ids.device
    if ratio is None:
        t = min_ratio + (1 - min_ratio) * torch.rand(B, device=device, generator=generator)
    else:
        t = ratio.to(device=device, dtype=torch.float32)
    resp_masked = torch.rand(B, L, device=device, generator=generator) < t.unsqueeze(1)
    # A row with nothing masked carries no signal: mask one random position instead.
    forced = torch.randint(0, L, (B,), device=device, generator=generator)
    none = ~resp_masked.any(1)
    resp_masked[none, forced[none]] = True
    masked = torch.zeros_like(ids, dtype=torch.bool)
    masked[:, P:] = resp_masked
    return ids.masked_fill(masked, mask_id), masked, t


def diffusion_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    masked: torch.Tensor,
    t: torch.Tensor,
    weighting: str = "masked_mean",
) -> torch.Tensor:
    """Cross-entropy on masked positions of the response region.

    Args:
        logits: (B, L, V) response logits; targets: (B, L) clean ids; masked: (B, L) bool;
            t: (B,) mask ratios.
        weighting: ``"masked_mean"`` averages over all masked tokens of the batch (lower
            variance, what we train with); ``"elbo"`` is LLaDA's SFT loss, each token weighted
            by ``1/t`` and normalised by the response length (an upper bound on the NLL).
    """
    if weighting not in LOSS_WEIGHTINGS:
        raise ValueError(f"weighting ({weighting!r}) must be one of {LOSS_WEIGHTINGS}")
    ce = F.cross_entropy(logits[masked].float(), targets[masked], reduction="none")  # (n_masked,)
    if weighting == "masked_mean":
        return ce.mean()
    row = masked.nonzero()[:, 0]
    return (ce / t[row]).sum() / masked.numel()
