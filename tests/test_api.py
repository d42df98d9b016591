"""The public API (dllm_viz.decode / stream) and the strategy registry behind it."""

from __future__ import annotations

import doctest
import json

import pytest
import torch

import dllm_viz
from dllm_viz import api
from dllm_viz.api import decode
from dllm_viz.engine import EngineConfig, generate, run
from dllm_viz.strategies import REGISTRY, StrategySpec, build_strategy, control_params, registry, schema
from dllm_viz.strategies.learned import LearnedPolicy
from dllm_viz.trace import Trace

PROMPTS = ["Tom has 3 boxes with 12 pens in each box. How many pens does he have?", "Ann has 5 apples."]


@pytest.mark.parametrize("module", [api, registry, dllm_viz])
def test_documented_examples_run(module):
    """The docstring examples of the public modules are executed, so they stay true."""
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_decode_equals_the_engine_and_its_traces_equal_the_records(tiny_backend):
    config = EngineConfig.semi_ar(32, temperature=0.0)
    out = dllm_viz.decode(tiny_backend, PROMPTS, "threshold", config=config, threshold=0.7)
    reference = run(tiny_backend, PROMPTS, build_strategy("threshold", threshold=0.7), config, keep_records=True)
    assert out.texts == reference.texts and out.nfe == reference.nfe.tolist()
    assert torch.equal(out.tokens, reference.tokens)
    for row, trace in enumerate(out.traces):
        expected = Trace.from_records(
            reference.records, row, tiny_backend, PROMPTS[row], reference.prompt_ids[row],
            build_strategy("threshold", threshold=0.7), config, text=reference.texts[row],
        )  # fmt: skip
        got, want = json.loads(trace.to_json()), json.loads(expected.to_json())
        for step in got["steps"] + want["steps"]:  # wall times differ between the two runs
            step["model_ms"] = step["step_ms"] = 0
        assert got == want
        assert trace.prompt_ids == tiny_backend.encode_prompt(PROMPTS[row])  # from the records, not re-encoded


def test_stream_builds_traces_as_records_arrive_and_can_be_cancelled(tiny_backend):
    steps = dllm_viz.stream(tiny_backend, PROMPTS[0], "confidence", gen_length=16, block_length=16, steps=4)
    seen = []
    for record in steps:
        seen.append(record)
        assert steps.traces[0].num_steps == len(seen)  # the trace so far, one step per record
        assert record.prompt_ids[0] == tiny_backend.encode_prompt(PROMPTS[0])
        if len(seen) == 2:
            break
    steps.close()
    with pytest.raises(RuntimeError, match="closed before it finished"):
        steps.result()
    finished = dllm_viz.stream(tiny_backend, PROMPTS[0], "confidence", gen_length=16, block_length=16, steps=4)
    assert finished.result().nfe == [4]


def test_decode_accepts_token_ids_specs_and_strategy_objects(tiny_backend):
    ids = tiny_backend.encode_prompt(PROMPTS[1])
    by_text = dllm_viz.decode(tiny_backend, PROMPTS[1], "eb", gen_length=16, gamma=0.1)
    by_ids = dllm_viz.decode(tiny_backend, [ids], StrategySpec("eb", {"gamma": 0.1}), gen_length=16)
    by_object = dllm_viz.decode(tiny_backend, [ids], build_strategy("eb", gamma=0.1), gen_length=16, trace=False)
    assert by_text.texts == by_ids.texts == by_object.texts and by_object.traces is None
    assert by_ids.traces[0].prompt_ids == ids


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"strategy": "nope"}, "unknown strategy 'nope'"),
        ({"strategy": "threshold", "lam": 0.3}, r"has no parameter\(s\) \['lam'\]"),
        ({"strategy": "threshold", "threshold": "high"}, r"threshold \('high'\) must be a number"),
        ({"strategy": "threshold", "threshold": 1.5}, r"threshold \(1.5\) must be in \(0, 1\]"),
        ({"strategy": "confidence", "steps": 2.5}, r"steps \(2.5\) must be an integer"),
        ({"strategy": "policy:no-such-policy"}, "no policy folder, shipped policy or hub id 'no-such-policy'"),
        ({"strategy": "heuristic:policy"}, "'heuristic:policy' is not a heuristic"),
        ({"config": EngineConfig(), "gen_length": 32}, "inside `config`"),
        ({"gen_length": 30, "block_length": 4}, r"block_length \(4\) must divide gen_length \(30\)"),
        ({"strategy": build_strategy("eb"), "gamma": 0.1}, "go with a strategy name"),
    ],
)
def test_bad_arguments_fail_before_any_model_is_loaded(monkeypatch, kwargs, message):
    monkeypatch.setattr(api, "load_model", lambda *a, **k: pytest.fail("loaded a model for a bad call"))
    kwargs = {"strategy": "threshold", **kwargs}
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        dllm_viz.decode("any-model", PROMPTS, **kwargs)


def test_every_registry_entry_round_trips_through_params_and_the_trace(tiny_backend):
    for name, info in REGISTRY.items():
        params = {p.name: p.default for p in info.params if p.default is not None}
        spec = StrategySpec(name, params, policy="full-diffusion" if name == registry.POLICY else None)
        strategy = spec.build()
        again = StrategySpec.from_dict({"name": strategy.name, **strategy.params()})
        assert again.name == name and again.build().params() == strategy.params()
        assert StrategySpec.parse(spec.key, **spec.params).build().params() == strategy.params()
    # a trace written by one decode rebuilds its policy and reproduces the decode exactly
    out = dllm_viz.decode(tiny_backend, PROMPTS[:1], "policy:full-diffusion", gen_length=32, temperature=0.5)
    trace = Trace.from_json(out.traces[0].to_json())
    rebuilt = StrategySpec.from_dict(trace.strategy)
    assert trace.strategy["policy_source"] == "full-diffusion"  # as given: no server folder in the file
    assert rebuilt.params["temperature"] == 0.5
    assert dllm_viz.decode(tiny_backend, PROMPTS[:1], rebuilt, config=EngineConfig(**trace.engine)).texts == out.texts


def test_a_policy_built_from_a_network_cannot_claim_a_source():
    from dllm_viz.policy import DiTConfidencePolicy

    strategy = LearnedPolicy(DiTConfidencePolicy())
    with pytest.raises(ValueError, match="cannot be rebuilt"):
        StrategySpec.from_dict({"name": strategy.name, **strategy.params()})


def test_schema_is_declared_on_the_fields():
    threshold = REGISTRY["threshold"].param("threshold")
    assert (threshold.type, threshold.default, threshold.low, threshold.high, threshold.symbol) == (
        float,
        0.9,
        0,
        1,
        "λ",
    )
    steps = REGISTRY["confidence"].param("steps")
    assert steps.type is int and steps.optional and steps.coerce(8.0) == 8 and steps.coerce(None) is None
    assert REGISTRY["confidence"].param("schedule").advanced
    assert [p.name for p in control_params()] == ["steps", "threshold", "factor", "gamma", "temperature", "beta"]
    assert all(p.help for info in REGISTRY.values() for p in info.params)
    assert [p.name for p in schema(EngineConfig)] == []  # only fields declared with param() count
    assert REGISTRY["random"].stochastic and REGISTRY["policy"].stochastic and not REGISTRY["eb"].stochastic


def test_generate_records_carry_the_prompt_ids(tiny_backend):
    ids = [tiny_backend.encode_prompt(p) for p in PROMPTS]
    first = next(generate(tiny_backend, PROMPTS, build_strategy("threshold"), EngineConfig(gen_length=16)))
    assert [list(r) for r in first.prompt_ids] == ids


def test_generate_cli_flags_come_from_the_schema(tiny_model_dir, capsys):
    from dllm_viz.generate import main as generate_main

    base = ["--model", str(tiny_model_dir), "--prompt", "Ann has 5 apples.", "--gen-length", "16"]
    outputs = []
    for extra in (["--threshold", "0.5"], ["--param", "threshold=0.5"]):
        assert generate_main(base + ["--strategy", "threshold", *extra]) == 0
        outputs.append(capsys.readouterr().out.splitlines()[0])
    assert outputs[0] == outputs[1]
    assert generate_main(base + ["--strategy", "threshold", "--threshold", "0.5", "--param", "threshold=0.6"]) == 2
    assert "threshold is given twice" in capsys.readouterr().err
    policy = ["--strategy", "policy:full-diffusion", "--block-length", "16", "--policy-temperature", "0.5"]
    assert generate_main(base + policy) == 0
    assert generate_main(base + ["--strategy", "eb", "--threshold", "0.5"]) == 2  # not a parameter of eb
    assert "has no parameter(s) ['threshold']" in capsys.readouterr().err
    help_text = _help_text()
    for info in REGISTRY.values():
        for p in info.params:
            assert p.help.split(";")[0][:20] in " ".join(help_text.split())


def _help_text() -> str:
    import contextlib
    import io

    from dllm_viz.generate import main as generate_main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        generate_main(["--help"])
    return out.getvalue()


def test_policy_temperature_is_tau_pi_and_the_old_name_still_works_with_a_warning():
    """τ_π is `policy_temperature`; a policy's `temperature` (its old name) warns and means the same."""
    import warnings

    run = dict(gen_length=16, block_length=8, seed=1)
    new = decode(None, ["Ann has 5 apples."], "policy:semi-ar-alpha1", policy_temperature=0.6, **run)
    with pytest.warns(DeprecationWarning, match="policy_temperature"):
        old = decode(None, ["Ann has 5 apples."], "policy:semi-ar-alpha1", temperature=0.6, **run)
    assert new.traces[0].strategy["temperature"] == 0.6  # the trace header keeps the field's name
    assert [s.committed for s in new.traces[0].steps] == [s.committed for s in old.traces[0].steps]
    with pytest.raises(ValueError, match="not both"):
        decode(None, ["x"], "policy:semi-ar-alpha1", policy_temperature=0.6, temperature=0.6, **run)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a heuristic has no τ_π: nothing to warn about
        decode(None, ["x"], "threshold", threshold=0.8, **run)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(gen_length=0), r"gen_length \(0\) must be a positive integer"),
        (dict(block_length=0), r"block_length \(0\)"),
    ],
)
def test_zero_lengths_are_errors_not_defaults(kwargs, message):
    with pytest.raises(ValueError, match=message):
        api.stream(None, ["x"], "threshold", **kwargs)
