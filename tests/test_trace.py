"""Trace capture, JSON round trip, replay without a model, and validation of bad files."""

from __future__ import annotations

import json
import pickle

import pytest

from dllm_viz import trace as trace_mod
from dllm_viz.engine import EngineConfig, generate
from dllm_viz.generate import main as generate_main
from dllm_viz.strategies import build_strategy
from dllm_viz.trace import Trace, TraceError

from conftest import schema_errors


@pytest.fixture(scope="module")
def sample_trace(tiny_backend):
    config = EngineConfig(gen_length=8, block_length=4)
    strategy = build_strategy("threshold", threshold=0.3)
    records = list(generate(tiny_backend, ["one plus two"], strategy, config))
    ids = tiny_backend.encode_prompt("one plus two")
    return Trace.from_records(records, 0, tiny_backend, "one plus two", ids, strategy, config, text="x"), records


def test_trace_replays_the_run_without_a_model(sample_trace, tmp_path):
    trace, records = sample_trace
    loaded = Trace.load(trace.save(tmp_path / "t.json"))
    assert loaded == trace
    assert loaded.strategy == {"name": "threshold", "threshold": 0.3}
    for s, rec in enumerate(records):
        assert loaded.tokens_at(s) == rec.tokens[0].tolist()
    assert loaded.tokens_at(-1) == [trace.mask_id] * 8
    assert sorted(loaded.commit_step().tolist()) == sorted(
        s for s, rec in enumerate(records) for _ in range(int(rec.committed[0].sum()))
    )
    assert loaded.matrix("confidence").shape == (len(records), 8)
    assert loaded.nfe == int(records[-1].nfe[0])


def test_trace_keeps_only_the_rows_active_steps(tiny_backend):
    config = EngineConfig(gen_length=8, block_length=8)
    strategy = build_strategy("confidence", steps=8)
    quick = build_strategy("threshold", threshold=0.01)  # commits everything in one step
    recs = list(generate(tiny_backend, ["a", "b c"], quick, config))
    assert len(Trace.from_records(recs, 0, tiny_backend, "a", [1], strategy, config).steps) == 1
    recs = list(generate(tiny_backend, ["a"], strategy, config))
    assert len(Trace.from_records(recs, 0, tiny_backend, "a", [1], strategy, config).steps) == 8


def _mutate(trace, fn):
    data = json.loads(trace.to_json())
    fn(data)
    return json.dumps(data)


@pytest.mark.parametrize(
    "mutation, message",
    [
        (lambda d: d.update(version=99), "unsupported trace schema version 99"),
        (lambda d: d.pop("steps"), r"missing field\(s\) \['steps'\]"),
        (lambda d: d.update(gen_length=10), r"block_length \(4\) must divide gen_length \(10\)"),
        (lambda d: d["steps"][0].update(confidence=[0.5]), "step 0: confidence must be a list of 8 entries"),
        (lambda d: d["steps"][0].update(committed=[99]), r"step 0: committed positions must be integers in \[0, 8\)"),
        (lambda d: d["steps"][-1].update(committed=d["steps"][0]["committed"]), "committed twice"),
        (lambda d: d["steps"][0].update(confidence=[2.0] * 8), r"confidence values must be numbers in \[0, 1\]"),
        (lambda d: d["steps"][0].pop("nfe"), r"step 0: missing field\(s\) \['nfe'\]"),
        # wrong-typed fields that once passed loading and broke rendering
        (lambda d: d.update(text=["a"]), "text must be text"),
        (lambda d: d["steps"][0].update(step="3"), "step, nfe and block must be non-negative integers"),
        (lambda d: d["steps"][0].update(model_ms="fast"), "model_ms and step_ms must be non-negative numbers"),
        (lambda d: d["steps"][0]["topk_ids"][3].__setitem__(0, "x"), "topk_ids must hold token ids"),
        (lambda d: d["steps"][0]["topk_probs"][3].__setitem__(0, None), "topk_probs numbers in"),
    ],
)
def test_invalid_traces_are_refused_with_the_reason(sample_trace, mutation, message):
    trace, _ = sample_trace
    with pytest.raises(TraceError, match=message):
        Trace.from_json(_mutate(trace, mutation))


def test_non_json_and_pickles_are_refused(tmp_path):
    path = tmp_path / "evil.json"
    path.write_bytes(pickle.dumps({"version": 1}))
    with pytest.raises(TraceError, match="not valid JSON"):
        Trace.load(path)
    with pytest.raises(TraceError, match="top level must be an object"):
        Trace.from_json("[1, 2]")


def test_oversized_trace_is_refused_before_reading(tmp_path, monkeypatch):
    monkeypatch.setattr(trace_mod, "MAX_TRACE_BYTES", 100)
    path = tmp_path / "big.json"
    path.write_text(" " * 101)
    with pytest.raises(TraceError, match="trace file is 101 bytes; the limit is 100"):
        Trace.load(path)


def test_generate_cli_prints_text_nfe_and_saves_trace(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "cli.json"
    code = generate_main(
        [
            "--model",
            str(tiny_model_dir),
            "--prompt",
            "one plus two",
            "--gen-length",
            "16",
            "--strategy",
            "confidence",
            "--param",
            "steps=8",
            "--save-trace",
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "NFE 8  tokens/step 2.00" in printed
    assert Trace.load(out).nfe == 8


@pytest.mark.parametrize(
    "args, message",
    [
        (["--gen-length", "10", "--block-length", "4"], "block_length (4) must divide gen_length (10)"),
        (["--strategy", "nope"], "unknown strategy 'nope'"),
        (["--param", "threshold=1.5"], "threshold (1.5) must be in (0, 1]"),
        (["--prompt", ""], "the prompt is empty"),
    ],
)
def test_generate_cli_bad_input(tiny_model_dir, capsys, args, message):
    base = ["--model", str(tiny_model_dir), "--prompt", "a b"]
    assert generate_main(base + args) == 2
    assert message in capsys.readouterr().err


# ---- the published schema (docs/trace-schema.json) ------------------------------------------------


@pytest.mark.parametrize(
    "strategy, engine",
    [
        (("threshold", {"threshold": 0.3}), {}),
        (("random", {}), {"temperature": 0.8, "seed": 3}),  # draws: rng states recorded
        (("policy:semi-ar-alpha1", {"temperature": 0.5}), {}),  # a learned policy: probs per position
    ],
)
def test_engine_traces_follow_the_published_schema(tiny_backend, strategy, engine):
    from dllm_viz.strategies import StrategySpec

    name, params = strategy
    built = StrategySpec.parse(name, **params).build() if name.startswith("policy:") else build_strategy(name, **params)
    config = EngineConfig(gen_length=8, block_length=4, **engine)
    records = list(generate(tiny_backend, ["one plus two"], built, config))
    trace = Trace.from_records(records, 0, tiny_backend, "one plus two", None, built, config, text="3")
    data = json.loads(trace.to_json())
    assert schema_errors(data) == []
    assert (data["steps"][0]["probs"] is not None) == name.startswith("policy:")


@pytest.mark.parametrize(
    "mutation",
    [
        lambda d: d.update(version=99),
        lambda d: d.pop("steps"),
        lambda d: d["steps"][0].update(confidence=[2.0] * 8),
        lambda d: d["steps"][0].pop("nfe"),
        lambda d: d.update(text=["a"]),
        lambda d: d["steps"][0].update(step="3"),
        lambda d: d["steps"][0].update(model_ms="fast"),
        lambda d: d["steps"][0]["topk_ids"][3].__setitem__(0, "x"),
        lambda d: d["steps"][0]["topk_probs"][3].__setitem__(0, None),
        lambda d: d["steps"][0].update(overrides=[{"position": 0, "action": "poke", "token": None}]),
    ],
)
def test_the_schema_refuses_what_the_loader_refuses(sample_trace, mutation):
    trace, _ = sample_trace
    text = _mutate(trace, mutation)
    assert schema_errors(json.loads(text))
    with pytest.raises(TraceError):
        Trace.from_json(text)


def _steps(trace, start=0):
    return [(s.step, s.committed, s.proposed, s.nfe, s.rng) for s in trace.steps[start:]]


@pytest.mark.parametrize("row", [0, 1])
def test_any_row_of_a_batch_branches_exactly(tiny_backend, row):
    """The builder keeps each row's own random state, so a row of a batch — here the second copy
    of a repeated prompt, whose stream differs from a one-row decode's — continues exactly."""
    from dllm_viz.api import decode
    from dllm_viz.branch import lacks_random_state, run_branch
    from dllm_viz.strategies import StrategySpec

    config = EngineConfig(gen_length=16, block_length=4, temperature=0.8, seed=7)
    traces = decode(tiny_backend, ["one plus two", "one plus two"], "random", steps=4, config=config).traces
    assert _steps(traces[0]) != _steps(traces[1]), "two copies of a prompt draw different streams"
    trace = Trace.from_json(traces[row].to_json())
    assert not lacks_random_state(trace) and trace.steps[0].rng is not None
    for k in (0, 1, trace.num_steps // 2):
        child = run_branch(tiny_backend, trace, k, [], StrategySpec.from_dict(trace.strategy).build())
        assert _steps(child, k) == _steps(trace, k), f"row {row}, branch after step {k}"


def test_builder_records_the_random_state_only_where_it_moved(tiny_backend):
    from dllm_viz.api import decode

    greedy = decode(tiny_backend, ["one plus two"], "confidence", steps=4, gen_length=16, block_length=4).traces[0]
    assert all(s.rng is None for s in greedy.steps)
    sampled = decode(
        tiny_backend, ["one plus two"], "confidence", steps=4, config=EngineConfig(16, 4, temperature=0.5)
    ).traces[0]
    assert all(s.rng is not None for s in sampled.steps) and len({s.rng for s in sampled.steps}) == sampled.num_steps
