"""Ship a trained policy: copy its selected checkpoint and write a model card from measured files.

    python -m dllm_viz.rl.card outputs/policy-semi-a1 assets/policies/semi-a1 --eval outputs/eval-semi-a1/results.md

The card is assembled only from what the run wrote (``run_config.json``, ``metrics.jsonl``,
``checkpoint-best/selection.json``) and from an evaluation report, so every number in it can be
traced to a file and a command. Every input is read and checked before anything is written, and a
destination that is not empty (a shipped policy under ``assets/``) is refused unless ``--force``.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import shlex
import shutil
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..outputs import check_destination, check_input
from ..policy import DiTConfidencePolicy, PolicyConfig
from ..strategies.trained_for import TrainedFor, write_trained_for
from .compare_runs import curves_layout

if TYPE_CHECKING:
    import plotly.graph_objects as go

# The Hub's metadata block (the YAML front matter of README.md): what the Hub indexes and filters on.
LICENSE = "mit"  # the project's licence, under which the policies are shared
TAGS = ["dllm-viz", "unmasking-policy", "masked-diffusion", "diffusion-language-model", "grpo"]
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")


def base_model_of(model: str | None) -> str | None:
    """The Hub id of the dLLM a policy was trained against, or None for a local folder (the built-in model)."""
    if not model or not _HUB_ID.fullmatch(model) or Path(model).exists():
        return None
    return model


def card_metadata(base_model: str | None = None) -> str:
    """A policy card's metadata block, ``---`` lines included: library, licence, tags, the base dLLM
    (its Hub id; omitted for the built-in model, which is not on the Hub), task and metric."""
    from huggingface_hub import ModelCardData

    data = ModelCardData(
        library_name="dllm-viz",
        license=LICENSE,
        tags=TAGS,
        base_model=base_model,
        pipeline_tag="reinforcement-learning",
        metrics=["accuracy"],
    )
    return f"---\n{data.to_yaml()}\n---\n"


def _inputs_text(config: PolicyConfig) -> str:
    probs = "its max-prob confidence" if config.top_p == 1 else f"its {config.top_p} largest token probabilities"
    return probs + (" and its entropy" if config.entropy_input else "")


def _action_text(action: str) -> str:
    if action == "bernoulli-plus-one":
        return "independent Bernoulli draws plus exactly one more position (the plus-one action)"
    return "independent Bernoulli draws (the paper's action)"


def _machine(threads: int | None = None) -> str:
    """This machine, with the torch threads the run used (``--threads``; else this process's)."""
    cores = threads or torch.get_num_threads()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{platform.machine()} CPU ({cores} torch threads), {gpu}, torch {torch.__version__}"


def _selection_text(selection: dict) -> str:
    """How checkpoint-best was chosen, from its ``selection.json``."""
    if "heldout_reward" in selection:
        # runs before the validation split selected on the first test problems; say so
        split = selection.get("heldout_split", "test")
        knobs = (
            f", τ_π {selection['heldout_temperature']:g}, β {selection['heldout_beta']:g}"
            if "heldout_temperature" in selection
            else ""
        )
        return (
            f"iteration {selection['iteration']}, best held-out reward {selection['heldout_reward']:.3f} on "
            f"{selection['heldout_problems']} {split}-split problems{knobs} (correct "
            f"{selection['heldout_correct']:.2f}, NFE {selection['heldout_nfe']:.1f})"
        )
    ma = selection.get("reward_ma")  # runs before held-out selection chose by the training reward
    return f"iteration {selection['iteration']} (best 10-iteration moving-average training reward" + (
        f" {ma:.3f})" if ma is not None else ")"
    )


CURVES = (
    ("reward", "heldout_reward", "reward"),
    ("correct", "heldout_correct", "correct"),
    ("nfe", "heldout_nfe", "NFE"),
    ("mean_unmask_prob", None, "mean unmask probability"),
)


def training_curves(rows: list[dict], selected: int | None = None) -> go.Figure:
    """Reward, correctness, NFE and unmask probability per rollout batch (training rollouts as
    lines, held-out evaluations as markers, the selected checkpoint as a dashed line): whether the
    run had plateaued, at a glance."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=len(CURVES), subplot_titles=[t for *_, t in CURVES], horizontal_spacing=0.06)
    its = [r["iteration"] for r in rows]
    for col, (train_key, held_key, _) in enumerate(CURVES, start=1):
        fig.add_trace(
            go.Scatter(
                x=its,
                y=[r[train_key] for r in rows],
                mode="lines",
                name="training rollouts",
                line=dict(color="#0072B2", width=1.5),
                showlegend=col == 1,
            ),
            row=1,
            col=col,
        )
        held = [r for r in rows if held_key and held_key in r]
        if held:
            fig.add_trace(
                go.Scatter(
                    x=[r["iteration"] for r in held],
                    y=[r[held_key] for r in held],
                    mode="markers+lines",
                    name="held-out",
                    line=dict(color="#D55E00", dash="dot"),
                    marker=dict(size=6),
                    showlegend=col == 1,
                ),
                row=1,
                col=col,
            )
        if selected is not None:
            fig.add_vline(x=selected, line=dict(color="#555", dash="dash", width=1), row=1, col=col)
    return curves_layout(fig)


def held_out_summary(rows: list[dict]) -> str:
    """Held-out reward at each evaluation (iteration: reward), so a reader sees whether it had
    stopped improving."""
    held = [(r["iteration"], r["heldout_reward"]) for r in rows if "heldout_reward" in r]
    return ", ".join(f"{it}: {value:.3f}" for it, value in held) or "none"


def write_card(
    run_dir: Path,
    dest: Path,
    eval_report: Path | None,
    hardware: str | None = None,
    force: bool = False,
    curves: bool = True,
    knobs: tuple[float | None, float | None] = (None, None),
) -> Path:
    """Copy ``run_dir``'s selected checkpoint to ``dest`` and write ``dest/README.md`` and
    ``dest/trained_for.json`` (the run's setting and τ_π, β); returns the README's path.

    Args:
        knobs: (τ_π, β) chosen on validation; None keeps the run's validation decodes' own
            (``--eval-temperature``, ``--eval-beta``).

    Raises:
        ValueError: a missing or malformed input (named), or ``dest`` not empty without ``force``.
    """
    # 1. Read and check every input, and the destination; nothing is written until all pass.
    run = read_run(run_dir, eval_report, dest, force)
    trained_for = run_trained_for(run, *knobs)
    lines = card_lines(run, dest.name, hardware)
    if curves:
        lines += [
            "![training curves: training rollouts and held-out evaluations per rollout batch; dashed: the "
            "selected checkpoint](training_curves.png)",
            "",
        ]
    if run.evaluation is not None:
        lines += ["## Evaluation", "", run.evaluation, ""]
    # 2. Write.
    dest.mkdir(parents=True, exist_ok=True)
    if curves:
        from ..eval.report import write_png

        write_png(training_curves(run.rows, run.selection.get("iteration")), dest / "training_curves.png")
    run.policy.save_pretrained(dest)
    write_trained_for(dest, trained_for)
    (dest / "README.md").write_text("\n".join(lines))
    shutil.copy(run_dir / "metrics.jsonl", dest / "training_metrics.jsonl")
    return dest / "README.md"


@dataclass
class Run:
    """What a card reads of a training run: its flags and settings, metrics, selection, policy."""

    args: dict
    grpo: dict
    engine: dict
    rows: list[dict]
    selection: dict
    policy: DiTConfidencePolicy
    evaluation: str | None


def run_trained_for(run: Run, temperature: float | None = None, beta: float | None = None) -> TrainedFor:
    """The run's setting (its engine's L and BL) with τ_π and β: the given ones, else those of its
    validation decodes."""
    knobs = {
        "temperature": run.args.get("eval_temperature", 1.0) if temperature is None else temperature,
        "beta": run.args.get("eval_beta", 1.0) if beta is None else beta,
    }
    return TrainedFor(run.engine["gen_length"], run.engine["block_length"], **knobs)


def read_run(run_dir: Path, eval_report: Path | None, dest: Path, force: bool) -> Run:
    """Every input of a card, checked (and the destination), before anything is written."""
    not_a_run = "(not a python -m dllm_viz.rl.train run folder)"
    check_input(run_dir, "run folder", kind="folder")
    for name in ("run_config.json", "metrics.jsonl"):
        if not (run_dir / name).is_file():
            raise ValueError(f"{run_dir} holds no {name} {not_a_run}")
    if eval_report is not None:
        check_input(eval_report, "--eval report (a results.md written by python -m dllm_viz.eval)")
    check_destination(
        dest, kind="folder", force=force, hint="pass --force to replace the policy there, or choose a new folder"
    )
    run_config = json.loads((run_dir / "run_config.json").read_text())
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    if not rows:
        raise ValueError(f"{run_dir}/metrics.jsonl has no iterations")
    selection_path = run_dir / "checkpoint-best" / "selection.json"
    selection = (
        json.loads(selection_path.read_text())
        if selection_path.exists()
        else {"iteration": rows[-1]["iteration"], "reward_ma": None}
    )
    policy = DiTConfidencePolicy.from_pretrained(run_dir / "checkpoint-best")  # validates, safetensors only
    evaluation = eval_report.read_text().strip() if eval_report is not None else None
    try:
        args, grpo, engine = run_config["args"], run_config["grpo"], run_config["engine"]
    except KeyError as err:
        raise ValueError(f"{run_dir}/run_config.json has no {err} section {not_a_run}") from None
    return Run(args, grpo, engine, rows, selection, policy, evaluation)


def card_lines(run: Run, name: str, hardware: str | None) -> list[str]:
    """The card's text up to its optional curves and evaluation, one list item a line."""
    args, grpo, engine, rows, policy = run.args, run.grpo, run.engine, run.rows, run.policy
    flags = []
    for key, value in args.items():
        if key in ("model", "resume", "no_progress", "stop_after", "device") or value in (None, False, []):
            continue
        flag = "--" + key.replace("_", "-")
        flags += [flag] if value is True else [flag, *map(str, value if isinstance(value, list) else [value])]
    command = "python -m dllm_viz.rl.train " + " ".join(map(shlex.quote, flags))
    minutes = sum(r["seconds"] for r in rows) / 60
    first, last = rows[: min(10, len(rows))], rows[-min(10, len(rows)) :]
    setting = (
        "full diffusion" if engine["block_length"] == engine["gen_length"] else f"semi-AR BL={engine['block_length']}"
    )
    es = f", expert steering λ={grpo['es_thresholds']}" if grpo["es_thresholds"] else ""
    return [
        card_metadata(base_model_of(args.get("model"))),
        f"# Unmasking policy `{name}`",
        "",
        f"A {sum(p.numel() for p in policy.parameters()):,}-parameter DiT confidence policy "
        f"(Jazbec, Olausson et al., arXiv 2512.09106) trained with GRPO on the built-in tiny dLLM's word problems, "
        f"{setting}, L={engine['gen_length']}, {grpo['reward']} reward α={grpo['alpha']}{es}. "
        f"Each position shows it {_inputs_text(policy.config)}; it acts by {_action_text(policy.config.action)}.",
        "",
        "## Training",
        "",
        "```",
        command,
        "```",
        "",
        f"- {len(rows)} rollout batches of {grpo['prompts_per_batch']} prompts × {grpo['num_generations']} rollouts, "
        f"{grpo['num_iterations']} optimiser steps each, lr {grpo['learning_rate']}, ε {grpo['epsilon']}, "
        f"warmup {grpo['warmup_steps']}, seed {grpo['seed']}",
        f"- wall time {minutes:.1f} min on {hardware or _machine(args.get('threads'))}; "
        "one iteration (rollouts + update) "
        f"{statistics.median(r['seconds'] for r in rows):.1f} s median",
        "- selected checkpoint: " + _selection_text(run.selection),
        f"- held-out evaluations: {held_out_summary(rows)}",
        _window_line("first", first),
        _window_line("last", last),
        "",
    ]


def _window_line(which: str, rs: list[dict]) -> str:
    def mean(key: str) -> float:
        return sum(r[key] for r in rs) / len(rs)

    return (
        f"- {which} 10 iterations: reward {mean('reward'):.3f}, correct {mean('correct'):.2f}, "
        f"NFE {mean('nfe'):.1f}, mean unmask prob {mean('mean_unmask_prob'):.3f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dllm_viz.rl.card", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("dest", type=Path)
    parser.add_argument("--eval", type=Path, default=None, help="results.md written by python -m dllm_viz.eval")
    parser.add_argument("--hardware", default=None, help="describe the training machine (default: this one)")
    parser.add_argument(
        "--force", action="store_true", help="replace the files of a non-empty dest (e.g. a shipped policy)"
    )
    parser.add_argument(
        "--no-curves", action="store_true", help="skip training_curves.png (it needs Chromium for kaleido)"
    )
    parser.add_argument("--temperature", type=float, default=None, help="τ_π chosen on validation (default: the run's)")
    parser.add_argument("--beta", type=float, default=None, help="β chosen on validation (default: the run's)")
    args = parser.parse_args(argv)
    try:
        knobs = (args.temperature, args.beta)
        print(write_card(args.run_dir, args.dest, args.eval, args.hardware, args.force, not args.no_curves, knobs))
    except (OSError, ValueError, RuntimeError) as err:
        parser.exit(2, f"error: {err}\n")
    except KeyError as err:  # written by an older or interrupted run
        parser.exit(2, f"error: a file of {args.run_dir} lacks the field {err}; nothing was written\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
