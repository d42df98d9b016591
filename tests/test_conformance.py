"""Our engine + strategies against direct transcriptions of the reference decoding loops.

Each transcription follows its reference's control flow (Dream's ``_sample``; Fast-dLLM's
factor decode), scoring with the same backend, so any difference is in the decision rules.
Like the engine, the transcriptions never propose [MASK] (its logit is set to -inf, which
Dream's ``generation_logits_hook_func`` allows a caller to do).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dllm_viz.engine import EngineConfig, run
from dllm_viz.strategies import build_strategy

PROMPT = "one plus two"


def _scores(backend, x):
    logits = backend.logits(x, None).float().clone()
    logits[..., backend.mask_id] = float("-inf")
    return logits


def dream_reference(backend, prompt_ids, gen_length, steps, alg, top_k=None, eps=1e-3):
    """Dream's ``diffusion_generate`` ``_sample`` at temperature 0, batch 1, full diffusion."""
    x = torch.tensor([prompt_ids + [backend.mask_id] * gen_length])
    timesteps = torch.linspace(1, eps, steps + 1)
    for i in range(steps):
        mask_index = x == backend.mask_id
        logits = _scores(backend, x)[mask_index]
        if top_k is not None:
            logits = logits.masked_fill(logits < torch.topk(logits, top_k)[0][..., -1, None], float("-inf"))
        probs = torch.softmax(logits, dim=-1)
        confidence, x0 = probs.max(dim=-1)
        if alg == "topk_margin":  # Dream sorts the whole row; its first two entries are the top 2
            top = torch.topk(probs, 2, dim=-1).values
            confidence = top[:, 0] - top[:, 1]
        elif alg == "entropy":
            confidence = torch.sum(probs * torch.log(probs + 1e-10), dim=-1)
        t, s = timesteps[i], timesteps[i + 1]
        num_mask_token = mask_index.sum() / mask_index.shape[0]
        number_transfer_tokens = int(num_mask_token * (1 - s / t)) if i < steps - 1 else int(num_mask_token)
        full_confidence = torch.full_like(x, -torch.inf, dtype=torch.float32)
        full_confidence[mask_index] = confidence
        if number_transfer_tokens > 0:
            _, transfer_index = torch.topk(full_confidence, number_transfer_tokens)
            x_ = torch.zeros_like(x) + backend.mask_id
            x_[mask_index] = x0.clone()
            x[0, transfer_index[0]] = x_[0, transfer_index[0]]
    return x[0, len(prompt_ids) :].tolist()


DREAM_ALGS = {"maskgit_plus": "confidence", "topk_margin": "margin", "entropy": "entropy"}


def backend_named(request, name):
    return (
        request.getfixturevalue("tiny_backend") if name == "tiny" else request.getfixturevalue("replica_backends")[name]
    )


@pytest.mark.parametrize("alg", list(DREAM_ALGS))
@pytest.mark.parametrize("steps", [16, 8, 5])
@pytest.mark.parametrize("model", ["tiny", "dream"])
def test_dream_style_decodes_equal_dreams_sample_loop(request, model, alg, steps):
    backend = backend_named(request, model)
    L = 16
    ids = backend.encode_prompt(PROMPT)
    expected = dream_reference(backend, ids, L, steps, alg)
    strategy = build_strategy(DREAM_ALGS[alg], steps=steps, schedule="dream")
    result = run(backend, [ids], strategy, EngineConfig(gen_length=L, block_length=L), keep_records=True)
    assert result.tokens[0].tolist() == expected
    assert int(result.nfe[0]) == steps  # an empty step still costs its forward, as in Dream


def llada_reference(backend, prompt_ids, gen_length, block_length, steps):
    """LLaDA's ``generate`` (remasking="low_confidence", temperature 0, cfg 0)."""
    x = torch.tensor([prompt_ids + [backend.mask_id] * gen_length])
    P, blocks = len(prompt_ids), gen_length // block_length
    per_block = steps // blocks
    for b in range(blocks):
        block_mask = x[:, P + b * block_length : P + (b + 1) * block_length] == backend.mask_id
        base, extra = divmod(int(block_mask.sum()), per_block)  # get_num_transfer_tokens
        counts = [base + (i < extra) for i in range(per_block)]
        for i in range(per_block):
            mask_index = x == backend.mask_id
            logits = _scores(backend, x)
            x0 = logits.argmax(-1)
            p = F.softmax(logits.to(torch.float64), dim=-1)
            x0_p = p.gather(-1, x0.unsqueeze(-1)).squeeze(-1)
            x0_p[:, P + (b + 1) * block_length :] = -torch.inf
            confidence = torch.where(mask_index, x0_p, -torch.inf)
            select = torch.topk(confidence[0], k=counts[i]).indices
            x[0, select] = x0[0, select]
    return x[0, P:].tolist()


@pytest.mark.parametrize("model", ["tiny", "llada", "dream"])
@pytest.mark.parametrize("block_length, steps", [(8, 16), (8, 4), (16, 6)])
def test_high_confidence_k_equals_lladas_generate(request, model, block_length, steps):
    backend = backend_named(request, model)
    L = 16
    ids = backend.encode_prompt(PROMPT)
    expected = llada_reference(backend, ids, L, block_length, steps)
    result = run(
        backend, [ids], build_strategy("confidence", steps=steps), EngineConfig(gen_length=L, block_length=block_length)
    )
    assert result.tokens[0].tolist() == expected and int(result.nfe[0]) == steps


def test_dream_top_k_50_is_a_choice(tiny_backend):
    """candidate_top_k=k reproduces Dream with its generation config's top_k = k (there, 50 by
    default under transformers 4.57); here k = 4 so the tiny vocabulary feels it."""
    L, steps = 16, 8
    ids = tiny_backend.encode_prompt(PROMPT)
    expected = dream_reference(tiny_backend, ids, L, steps, "entropy", top_k=4)
    strategy = build_strategy("entropy", steps=steps, schedule="dream")
    result = run(
        tiny_backend, [ids], strategy, EngineConfig(gen_length=L, block_length=L, candidate_top_k=4), keep_records=True
    )
    assert result.tokens[0].tolist() == expected
    probs = result.records[0].features.topk_probs[0]
    assert torch.allclose(probs[:, :4].sum(-1), torch.ones(L), atol=1e-5)  # renormalised over the top 4
    assert (probs[:, 4:] == 0).all()


def factor_reference(backend, prompt_ids, gen_length, block_length, factor):
    """Fast-dLLM ``generate`` with ``get_transfer_index_dynamic`` (greedy, no cache)."""
    x = torch.tensor([prompt_ids + [backend.mask_id] * gen_length])
    P, nfe = len(prompt_ids), 0
    for b in range(gen_length // block_length):
        end = P + (b + 1) * block_length
        while (x[0, P + b * block_length : end] == backend.mask_id).any():
            nfe += 1
            mask_index = x == backend.mask_id
            mask_index[:, end:] = False
            logits = _scores(backend, x)
            p = F.softmax(logits.to(torch.float64), dim=-1)
            x0 = logits.argmax(-1)
            conf = torch.where(mask_index, p.gather(-1, x0.unsqueeze(-1)).squeeze(-1), -torch.inf)[0]
            n = int(mask_index.sum())
            thresholds = [-1] + [1 - factor / (k + 1) for k in range(2, n + 1)]
            ranked = torch.sort(conf[mask_index[0]], descending=True).values
            for top_i in range(len(thresholds)):
                if ranked[top_i] < thresholds[top_i]:
                    break
            if top_i == 0 or top_i == len(thresholds) - 1:
                top_i += 1
            select = torch.topk(conf, k=top_i).indices
            x[0, select] = x0[0, select]
    return x[0, P:].tolist(), nfe


@pytest.mark.parametrize("factor", [0.5, 1.0, 1.9])
@pytest.mark.parametrize("model", ["tiny", "llada"])
def test_factor_upstream_decodes_equal_fast_dllm(request, model, factor):
    backend = backend_named(request, model)
    L, BL = 16, 8
    ids = backend.encode_prompt(PROMPT)
    expected, nfe = factor_reference(backend, ids, L, BL, factor)
    up = run(
        backend,
        [ids],
        build_strategy("factor", factor=factor, variant="upstream"),
        EngineConfig(gen_length=L, block_length=BL),
    )
    assert up.tokens[0].tolist() == expected and int(up.nfe[0]) == nfe


def threshold_reference(backend, prompt_ids, gen_length, block_length, threshold):
    """Fast-dLLM ``generate`` with ``get_transfer_index(threshold=τ)`` (greedy, no cache)."""
    x = torch.tensor([prompt_ids + [backend.mask_id] * gen_length])
    P, nfe = len(prompt_ids), 0
    for b in range(gen_length // block_length):
        end = P + (b + 1) * block_length
        while (x[0, P + b * block_length : end] == backend.mask_id).any():
            nfe += 1
            mask_index = x == backend.mask_id
            mask_index[:, end:] = False
            logits = _scores(backend, x)
            x0 = logits.argmax(-1)
            p = F.softmax(logits.to(torch.float64), dim=-1)
            confidence = torch.where(mask_index, p.gather(-1, x0.unsqueeze(-1)).squeeze(-1), -torch.inf)[0]
            n = int(mask_index.sum())
            _, select = torch.topk(confidence, k=n)
            keep = [int(select[0])] + [int(i) for i in select[1:] if confidence[i] >= threshold]
            x[0, keep] = x0[0, keep]
    return x[0, P:].tolist(), nfe


@pytest.mark.parametrize("threshold", [0.5, 0.9])
@pytest.mark.parametrize("model", ["tiny", "llada"])
def test_threshold_equals_fast_dllm(request, model, threshold):
    backend = backend_named(request, model)
    ids = backend.encode_prompt(PROMPT)
    expected, nfe = threshold_reference(backend, ids, 16, 8, threshold)
    result = run(
        backend, [ids], build_strategy("threshold", threshold=threshold), EngineConfig(gen_length=16, block_length=8)
    )
    assert result.tokens[0].tolist() == expected and int(result.nfe[0]) == nfe
