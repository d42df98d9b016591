"""The block-wise prefix KV cache: exact where the method is exact, per-row, recorded, refused
where unsupported. (Its approximation error elsewhere is measured by bench/prefix_cache.py.)"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dllm_viz.engine import EngineConfig, run
from dllm_viz.models import PrefixKVCache
from dllm_viz.strategies import build_strategy
from dllm_viz.trace import Trace

PROMPTS = ["one plus two", "two plus one"]  # the same length, so no padding


def backend_named(request, name):
    backend = (
        request.getfixturevalue("tiny_backend") if name == "tiny" else request.getfixturevalue("replica_backends")[name]
    )
    if name == "tiny":
        needs_modernbert_cache(backend)
    return backend


def needs_modernbert_cache(backend):
    """transformers 5 rewrote ModernBERT's attention modules, so the built-in model's cache path is
    off there (feature-detected, see docs/native-models.md); its cache tests then have nothing to test."""
    if not backend.supports_kv_cache:
        import transformers

        pytest.skip(f"ModernBERT has no prefix cache under transformers {transformers.__version__}")


def _canvas(backend, L=16, pad_first=0):
    ids = backend.encode_prompt(PROMPTS[0])
    rows = [[backend.pad_id] * pad_first + ids + [backend.mask_id] * L, ids + ids[:pad_first] + [backend.mask_id] * L]
    x = torch.tensor(rows)
    mask = torch.ones_like(x)
    mask[0, :pad_first] = 0
    return x, mask, len(ids) + pad_first


@pytest.mark.parametrize("model", ["tiny", "llada", "dream"])
def test_a_refresh_pass_is_the_plain_forward(request, model):
    backend = backend_named(request, model)
    x, mask, P = _canvas(backend, pad_first=2)
    cache = PrefixKVCache(2, x.shape[1], P, 8, backend.logit_shift)
    cache.plan(slice(None), torch.zeros(2, dtype=torch.long))
    assert cache.start == 0
    assert torch.allclose(backend.logits(x, mask, kv_cache=cache), backend.logits(x, mask), atol=1e-5)


@pytest.mark.parametrize("model", ["tiny", "llada", "dream"])
def test_a_cached_pass_on_an_unchanged_canvas_is_exact(request, model):
    """The stored prefix was computed on this very canvas, so reusing it changes nothing: the
    window's predictions equal the full pass's at every position the engine reads."""
    backend = backend_named(request, model)
    x, mask, P = _canvas(backend, pad_first=2)
    cache = PrefixKVCache(2, x.shape[1], P, 8, backend.logit_shift)
    block = torch.tensor([0, 1])
    cache.plan(slice(None), block)
    backend.logits(x, mask, kv_cache=cache)  # refresh
    x[1, P : P + 8] = x[1, P - 1]  # row 1 has finished block 0 (any tokens will do) …
    cache.plan(slice(None), block)  # … but both rows stay in their block: no refresh
    assert cache.start == P - backend.logit_shift  # row 0's window starts at its block
    # Row 1's prefix now covers block 0, whose tokens changed since the refresh: recompute its
    # store on the new canvas first, so that its canvas is "unchanged" too.
    fresh = PrefixKVCache(2, x.shape[1], P, 8, backend.logit_shift)
    fresh.plan(slice(None), block)
    backend.logits(x, mask, kv_cache=fresh)
    fresh.plan(slice(None), block)
    window = backend.logits(x, mask, kv_cache=fresh)
    full = backend.logits(x, mask)[:, fresh.start :]
    for row, first in enumerate((fresh.fresh_from - fresh.start).tolist()):
        assert torch.allclose(window[row, first:], full[row, first:], atol=1e-4)


@pytest.mark.parametrize("model", ["tiny", "llada", "dream"])
def test_block_length_one_decodes_exactly_as_without_cache(request, model):
    """With BL = 1 every step enters a new block, so every pass refreshes: the cache is exact."""
    backend = backend_named(request, model)
    config = EngineConfig(gen_length=8, block_length=1)
    plain = run(backend, PROMPTS, build_strategy("confidence"), config)
    cached = run(
        backend, PROMPTS, build_strategy("confidence"), EngineConfig(gen_length=8, block_length=1, cache="prefix")
    )
    assert torch.equal(plain.tokens, cached.tokens) and torch.equal(plain.nfe, cached.nfe)


@pytest.mark.parametrize("model", ["tiny", "llada", "dream"])
def test_each_block_starts_with_the_exact_features(request, model):
    backend = backend_named(request, model)
    plain = run(
        backend,
        PROMPTS[:1],
        build_strategy("confidence"),
        EngineConfig(gen_length=16, block_length=8),
        keep_records=True,
    )
    cached = run(
        backend,
        PROMPTS[:1],
        build_strategy("confidence"),
        EngineConfig(gen_length=16, block_length=8, cache="prefix"),
        keep_records=True,
    )
    assert torch.allclose(plain.records[0].features.confidence, cached.records[0].features.confidence, atol=1e-5)
    if torch.equal(plain.records[7].tokens, cached.records[7].tokens):  # same first block: block 2 starts alike
        assert torch.allclose(plain.records[8].features.confidence, cached.records[8].features.confidence, atol=1e-5)


@pytest.mark.parametrize("model", ["tiny", "dream"])
def test_a_row_decodes_the_same_alone_or_in_a_batch(request, model):
    """Rows enter blocks at different steps; each keeps its own prefix, so batching changes nothing."""
    backend = backend_named(request, model)
    config = EngineConfig(gen_length=16, block_length=4, cache="prefix")
    strategy = build_strategy("threshold", threshold=0.6)  # rows move through blocks at their own pace
    batch = run(backend, PROMPTS, strategy, config)
    for i, prompt in enumerate(PROMPTS):
        alone = run(backend, [prompt], strategy, config)
        assert batch.tokens[i].tolist() == alone.tokens[0].tolist() and int(batch.nfe[i]) == int(alone.nfe[0])


def test_the_trace_header_records_the_cache(tiny_backend):
    needs_modernbert_cache(tiny_backend)
    config = EngineConfig(gen_length=8, block_length=4, cache="prefix")
    strategy = build_strategy("threshold")
    result = run(tiny_backend, PROMPTS[:1], strategy, config, keep_records=True)
    trace = Trace.from_records(result.records, 0, tiny_backend, PROMPTS[0], result.prompt_ids[0], strategy, config)
    assert trace.engine["cache"] == "prefix"
    assert Trace.from_json(trace.to_json()).engine["cache"] == "prefix"


def test_a_backend_without_a_cache_is_refused_before_any_forward(scripted):
    backend = scripted()
    with pytest.raises(ValueError, match=r"cache='prefix' needs a model with a KV cache .* so use cache='none'"):
        run(backend, ["a b"], build_strategy("threshold"), EngineConfig(gen_length=8, block_length=4, cache="prefix"))
    assert backend.calls == 0


def test_unknown_cache_name():
    with pytest.raises(ValueError, match=r"cache \('dual'\) must be one of none, prefix"):
        EngineConfig(cache="dual")


# ---- against Fast-dLLM's own prefix cache ------------------------------------------------------


def fast_dllm_prefix_cache(model, mask_id, prompt_ids, gen_length, block_length, threshold):
    """Fast-dLLM's ``generate_with_prefix_cache`` (threshold, greedy, [MASK] never proposed)."""
    x = torch.tensor([prompt_ids + [mask_id] * gen_length])
    P, nfe = len(prompt_ids), 0

    def reveal(logits, mask_index, canvas):
        logits = logits.float().clone()
        logits[..., mask_id] = -torch.inf
        x0 = logits.argmax(-1)
        p = F.softmax(logits.to(torch.float64), dim=-1).gather(-1, x0.unsqueeze(-1)).squeeze(-1)
        conf = torch.where(mask_index, p, -torch.inf)[0]
        order = torch.topk(conf, k=int(mask_index.sum())).indices
        keep = [int(order[0])] + [int(i) for i in order[1:] if conf[i] >= threshold]
        canvas[0, keep] = x0[0, keep]

    for b in range(gen_length // block_length):
        start, end = P + b * block_length, P + (b + 1) * block_length
        out = model(x, use_cache=True)
        mask_index = x == mask_id
        mask_index[:, end:] = False
        reveal(out.logits, mask_index, x)
        past = [tuple(t[:, :, :start] for t in layer) for layer in out.past_key_values]
        nfe += 1
        while (x[0, start:end] == mask_id).any():
            nfe += 1
            mask_index = x[:, start:] == mask_id
            mask_index[:, block_length:] = False
            logits = model(x[:, start:], past_key_values=past, use_cache=True).logits
            window = x[:, start:]
            reveal(logits, mask_index, window)
            x[:, start:] = window
    return x[0, P:].tolist(), nfe


@pytest.mark.parametrize("threshold", [0.6, 0.9])
def test_prefix_cache_decodes_equal_fast_dllms(replica_dirs, replica_backends, tmp_path, threshold):
    from test_native_models import _upstream_copy
    from transformers import AutoModel

    path = _upstream_copy(replica_dirs["llada"], "llada", tmp_path)
    reference = AutoModel.from_pretrained(
        path, trust_remote_code=True, local_files_only=True, dtype=torch.float32
    ).eval()
    backend = replica_backends["llada"]
    ids = backend.encode_prompt(PROMPTS[0])
    try:
        with torch.no_grad(), torch._dynamo.config.patch(disable=True):
            expected, nfe = fast_dllm_prefix_cache(reference, backend.mask_id, ids, 16, 8, threshold)
    except AssertionError:
        pytest.skip("this upstream LLaDA code has no KV cache (only Fast-dLLM's copy does)")
    result = run(
        backend,
        [ids],
        build_strategy("threshold", threshold=threshold),
        EngineConfig(gen_length=16, block_length=8, cache="prefix"),
    )
    assert result.tokens[0].tolist() == expected and int(result.nfe[0]) == nfe


def test_the_benchmark_runs_at_a_tiny_shape():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "bench" / "prefix_cache.py"
    spec = importlib.util.spec_from_file_location("bench_prefix_cache", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    report = bench.main(
        [
            "--skip",
            "builtin",
            "replicas",
            "--speed-d-model",
            "32",
            "--speed-layers",
            "1",
            "--speed-prompt",
            "8",
            "--gen-length",
            "16",
            "--block-length",
            "8",
            "--repeats",
            "1",
        ]
    )
    speed = report["speed"]
    assert speed["none"]["nfe"] == speed["prefix"]["nfe"] == 16  # NFE-equal by construction
    assert speed["speedup_model"] > 0


def test_an_unfamiliar_modernbert_layout_means_no_cache_not_a_crash(tiny_backend):
    """transformers 5's ModernBERT has no per-module rotary embedding or local_attention."""
    import copy

    from dllm_viz.models import modernbert

    needs_modernbert_cache(tiny_backend)
    assert modernbert.supports_cache(tiny_backend.model)
    model = copy.deepcopy(tiny_backend.model)
    for layer in model.model.layers:
        del layer.attn.rotary_emb
    assert not modernbert.supports_cache(model)
