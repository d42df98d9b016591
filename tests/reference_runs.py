"""A fixed set of runs through every producer of traces (the API, Compare's handler, ``/compare``,
Explore's ``/branch``, the branch library), recorded as JSON so a refactor can be checked against
the outputs the code gave before it.

    python tests/reference_runs.py          # write tests/fixtures/reference/*.json

``tests/test_reference_outputs.py`` re-runs each and compares. Timings are dropped; a random
state (``rng``) may be added where the reference kept none (producers that dropped it), but
where the reference kept one it must match.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REFERENCE = Path(__file__).resolve().parent / "fixtures" / "reference"
TIMINGS = frozenset({"model_ms", "step_ms", "load_ms", "render_ms", "seconds"})

P1 = "Tom has 3 boxes with 12 pens in each box. How many pens does he have?"
P2 = "Ann has 5 apples and eats 2. How many are left?"


def _last(gen):
    return list(gen)[-1]


def api_batch():
    """One batch with a repeated prompt, sampled tokens and a stochastic strategy."""
    import dllm_viz

    out = dllm_viz.decode(None, [P1, P2, P1], strategy="random", steps=8, gen_length=32, block_length=8, seed=3)
    sampled = dllm_viz.decode(
        None,
        [P2, P2],
        strategy="threshold",
        threshold=0.8,
        config=dllm_viz.EngineConfig(gen_length=32, block_length=8, temperature=0.8, seed=5),
    )
    return {"random": [t.to_json() for t in out.traces], "sampled": [t.to_json() for t in sampled.traces]}


def api_policy():
    """A shipped learned policy with a policy temperature and β."""
    import dllm_viz

    out = dllm_viz.decode(
        None,
        [P1],
        strategy="policy:semi-ar-alpha1",
        policy_temperature=0.7,
        beta=1.5,
        gen_length=32,
        block_length=8,
        seed=1,
    )
    return {"policy": [t.to_json() for t in out.traces]}


def compare_handler():
    """The Compare tab's Run handler to the end: the comparison it exports."""
    from dllm_viz.strategies import StrategySpec
    from dllm_viz.ui import allowed_models, compare, picker

    heur = dict(steps=0, threshold=0.9, factor=1.0, gamma=0.01, tau=1.0, beta=1.0, policy_files=None)

    def pane(choice, **over):
        values = {**heur, **over}
        return [choice] + [values[f] for f in compare.PANE_FIELDS[1:]]

    a = pane("heuristic:random", steps=6)
    b = pane(picker.choice_of(StrategySpec.parse("policy:semi-ar-alpha1")), tau=0.6, beta=2.0)
    frames = list(compare.run_compare(allowed_models.default_model(), P1, 24, 8, False, 0.7, 11, *a, *b, "full speed"))
    comp = frames[-1]["session"]
    return {"comparison": comp.to_dict()}


def compare_endpoint():
    """``/compare_trace`` (gradio_client's entry point), with a policy's τ_π and a token temperature."""
    from dllm_viz.ui import endpoints

    out = _last(
        endpoints.compare_trace(
            P2,
            "heuristic:eb",
            "policy:semi-ar-alpha1",
            {"gamma": 0.3},
            {"policy_temperature": 0.5, "beta": 1.0},
            gen_length=32,
            block_length=8,
            temperature=0.9,
            seed=2,
        )
    )
    return {"compare": out}


def explore_endpoint():
    """``/branch`` from a prompt: a sampled run, then a branch that re-masks and forces a position."""
    from dllm_viz.ui import endpoints

    out = _last(
        endpoints.branch_api(
            P1,
            overrides=[
                {"position": 3, "action": "remask", "token": None},
                {"position": 3, "action": "force", "token": 40},
            ],
            step=1,
            run_strategy="heuristic:random",
            run_params={"steps": 8},
            gen_length=32,
            block_length=8,
            temperature=0.6,
            seed=4,
        )
    )
    return {"branch": out}


def branch_library():
    """``branch.record_run``, ``run_branch`` (a re-mask and a force) and ``replay``."""
    from dllm_viz import branch
    from dllm_viz.api import load_model
    from dllm_viz.engine import EngineConfig
    from dllm_viz.strategies import StrategySpec

    backend = load_model(None)
    config = EngineConfig(gen_length=32, block_length=8, temperature=0.7, seed=9)
    strategy = StrategySpec.parse("random", steps=8).build()
    run = branch.record_run(backend, P2, strategy, config, meta={"app": "reference"})
    k = 5
    committed = next(p for p in run.steps[2].committed)
    overrides = [{"position": committed, "action": "remask", "token": None}]
    child = branch.run_branch(backend, run, k, overrides, StrategySpec.parse("confidence", steps=8).build())
    again = branch.replay(backend, child, StrategySpec.parse("confidence", steps=8).build())
    return {"run": run.to_json(), "branch": child.to_json(), "replay": again.to_json()}


RUNS = {
    f.__name__: f for f in (api_batch, api_policy, compare_handler, compare_endpoint, explore_endpoint, branch_library)
}


CHECKOUT = str(Path(__file__).resolve().parents[1])


def normalise(value):
    """JSON strings parsed, timings dropped, the checkout's own path written ``<checkout>`` (the
    library records the built-in model's folder), everything else as is."""
    if isinstance(value, str) and value.startswith(CHECKOUT):
        return "<checkout>" + value[len(CHECKOUT) :]
    if isinstance(value, str) and value[:1] == "{":
        try:
            return normalise(json.loads(value))
        except json.JSONDecodeError:
            return value
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items() if k not in TIMINGS}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    return value


def differences(ref, new, where: str = "") -> list[str]:
    """Where ``new`` differs from ``ref``; an ``rng`` the reference lacks (None) may be set in ``new``."""
    if isinstance(ref, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(ref) | set(new)):
            if key == "rng" and ref.get(key) is None:
                continue
            if key not in ref or key not in new:
                out.append(f"{where}/{key}: only in {'new' if key in new else 'reference'}")
            else:
                out += differences(ref[key], new[key], f"{where}/{key}")
        return out
    if isinstance(ref, list) and isinstance(new, list):
        if len(ref) != len(new):
            return [f"{where}: {len(ref)} entries in the reference, {len(new)} now"]
        return [d for i, (r, n) in enumerate(zip(ref, new, strict=True)) for d in differences(r, n, f"{where}[{i}]")]
    return [] if ref == new or _last_digit_apart(ref, new) else [f"{where}: {str(ref)[:80]!r} → {str(new)[:80]!r}"]


def _last_digit_apart(ref, new) -> bool:
    """Two probabilities as a trace records them (4 decimals) that differ by at most one unit in the
    last place: another CPU's float kernels may round the same probability the other way."""
    floats = all(isinstance(v, float) for v in (ref, new))
    return floats and abs(ref - new) <= 1.5e-4


def record(name: str) -> dict:
    import torch

    torch.manual_seed(0)
    return normalise(RUNS[name]())


if __name__ == "__main__":
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(1)
    REFERENCE.mkdir(parents=True, exist_ok=True)
    for name in sys.argv[1:] or RUNS:
        (REFERENCE / f"{name}.json").write_text(json.dumps(record(name), indent=None, sort_keys=True) + "\n")
        print("wrote", name)
