"""Ship a trained built-in model: copy its weights and tokenizer and write the model card.

    python -m dllm_viz.tiny.card outputs/tiny-dllm assets/tiny-dllm \\
        --evaluate outputs/tiny-eval.json --baselines docs/results/tiny-baselines/results.md

The card is assembled from what the runs wrote (each stage's ``checkpoint/trainer_state.json``:
its config, steps reached and training seconds), the JSON of ``python -m dllm_viz.tiny.evaluate``
and the markdown of ``python -m dllm_viz.eval``, so every number traces to a file and a command.
A model trained in stages (``--init-from``) lists every stage, oldest first. Every input is read
and checked before anything is written; a destination that is not empty (the shipped
``assets/tiny-dllm``) is refused unless ``--force``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import shutil
from dataclasses import fields
from pathlib import Path

from ..outputs import check_destination, check_input
from .train import CHECKPOINT, TrainConfig

REQUIRED = ("config.json", "model.safetensors", "tokenizer.json")
SHIPPED = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
)
NOT_FLAGS = {"model", "device"}


def stage_command(config: dict) -> str:
    """The ``python -m dllm_viz.tiny.train`` flags that differ from today's defaults."""
    defaults = TrainConfig().to_dict()
    flags = []
    for f in fields(TrainConfig):
        value = config.get(f.name, defaults[f.name])
        value = tuple(value) if isinstance(value, list) else value  # JSON stores tuples as lists
        if f.name in NOT_FLAGS or value == defaults[f.name]:
            continue
        flag = "--" + f.name.replace("_", "-")
        value = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else value
        flags += [flag, str(value)]
    model, default_model = config.get("model", {}), defaults["model"]
    names = {
        "hidden_size": "--hidden-size",
        "num_layers": "--layers",
        "num_heads": "--heads",
        "intermediate_size": "--intermediate-size",
    }
    for key, flag in names.items():
        if model.get(key, default_model[key]) != default_model[key]:
            flags += [flag, str(model[key])]
    return "python -m dllm_viz.tiny.train " + " ".join(map(shlex.quote, flags))


def stage_lines(run_dir: Path) -> list[str]:
    state = json.loads((run_dir / CHECKPOINT / "trainer_state.json").read_text())
    config = state["config"]
    reached, planned = state["step"], config["steps"]
    stop = "" if reached >= planned else f", stopped at step {reached:,} of {planned:,} (schedule not finished)"
    return [
        "```",
        stage_command(config),
        "```",
        "",
        f"- {reached:,} steps of batch {config['batch_size']} in {state['elapsed_seconds'] / 60:.0f} min{stop}",
        "",
    ]


def level_table(evaluation: dict) -> list[str]:
    lines = ["| setting | problems | level | n | accuracy | mean NFE | no answer |", "|---|---|---|---|---|---|---|"]
    for r in evaluation["levels"]:
        kind = f"free choice (free={r['free']:g})" if r.get("free") else "fixed answer"
        lines.append(
            f"| {r['setting']} (BL={r['block_length']}) | {kind} | {r['level']} | {r['n']} | "
            f"{100 * r['accuracy']:.1f} % | {r['mean_nfe']:.1f} | {100 * r['no_answer']:.1f} % |"
        )
    return lines


def write_card(
    stages: list[Path],
    dest: Path,
    evaluation: Path,
    baselines: list[Path],
    notes: Path | None,
    hardware: str | None,
    force: bool = False,
) -> Path:
    """Copy the last stage's model to ``dest`` and write ``dest/README.md``; returns its path.

    Raises:
        ValueError: a missing or malformed input (named), or ``dest`` not empty without ``force``.
    """
    # 1. Read and check every input, and the destination; nothing is written until all pass.
    final = _check_inputs(stages, evaluation, baselines, notes, dest, force)
    config = json.loads((final / "config.json").read_text())
    result = json.loads(evaluation.read_text())
    if not isinstance(result, dict) or not {"levels", "speed"} <= set(result):
        raise ValueError(
            f"--evaluate {evaluation} has no 'levels' and 'speed' "
            "(write it with python -m dllm_viz.tiny.evaluate --json)"
        )
    size_mb = sum((final / n).stat().st_size for n in SHIPPED if (final / n).exists()) / 1e6
    stage_blocks = [stage_lines(stage) for stage in stages]
    notes_text = notes.read_text().strip() if notes else None
    reports = [report.read_text() for report in baselines]
    lines = _header_lines(config, size_mb, hardware)
    for i, block in enumerate(stage_blocks, 1):
        lines += [f"Stage {i}{' (from the previous stage, --init-from)' if i > 1 else ''}:", "", *block]
    if notes_text:
        lines += [notes_text, ""]
    lines += [
        "## Held-out accuracy",
        "",
        "High-Confidence-K at one token per step (greedy tokens), L = 64, held-out problems that training never sees:",
        "",
        "```",
        result.get("command", "python -m dllm_viz.tiny.evaluate --n 200"),
        "```",
        "",
        *level_table(result),
        "",
        _speed_line(result["speed"]),
        "",
    ]
    if baselines:
        lines += ["## Heuristic baselines", ""]
    for text in reports:
        title, _, body = text.partition("\n")
        lines += [f"Held-out problems: {title.lstrip('# ').split(': ', 1)[-1]}.", "", body.strip(), ""]
    # 2. Write.
    dest.mkdir(parents=True, exist_ok=True)
    for name in SHIPPED:
        if (final / name).exists():
            shutil.copy(final / name, dest / name)
    (dest / "README.md").write_text("\n".join(lines))
    return dest / "README.md"


def _speed_line(speed: dict) -> str:
    return (
        f"Decoding speed, batch 1, L = 64, {speed['threads']} CPU threads: "
        f"median **{speed['median_steps_per_s']:.0f} steps/s** "
        f"(min {speed['min_steps_per_s']:.0f}) over {speed['prompts']} decodes."
    )


def _check_inputs(
    stages: list[Path], evaluation: Path, baselines: list[Path], notes: Path | None, dest: Path, force: bool
) -> Path:
    """Check every input file and the destination; returns the last stage's checkpoint folder."""
    for stage in stages:
        if not (stage / CHECKPOINT / "trainer_state.json").is_file():
            raise ValueError(
                f"{stage} holds no {CHECKPOINT}/trainer_state.json (not a python -m dllm_viz.tiny.train run)"
            )
    final = stages[-1] / CHECKPOINT
    for name in REQUIRED:
        check_input(final / name, "the model file")
    check_input(evaluation, "--evaluate (JSON of python -m dllm_viz.tiny.evaluate --json)")
    for path in baselines:
        check_input(path, "--baselines (results.md of python -m dllm_viz.eval)")
    if notes is not None:
        check_input(notes, "--notes")
    check_destination(
        dest, kind="folder", force=force, hint="pass --force to replace the model there, or choose a new folder"
    )
    return final


def _header_lines(config: dict, size_mb: float, hardware: str | None) -> list[str]:
    """The card's metadata, title, summary, usage and the start of its training section."""
    return [
        "---",
        "license: mit",
        "library_name: transformers",
        "pipeline_tag: fill-mask",
        "tags: [diffusion, dllm-viz]",
        "---",
        "",
        "# tiny-dllm: the built-in masked-diffusion LM of dllm-viz",
        "",
        f"A `{config['architectures'][0]}` (RoPE, bidirectional; d={config['hidden_size']}, "
        f"{config['num_hidden_layers']} layers, {config['num_attention_heads']} heads, "
        f"vocabulary {config['vocab_size']}, {size_mb:.1f} MB) trained by the project "
        "with the LLaDA-SFT / MDLM objective on its procedural word problems (`dllm_viz.tasks.wordproblems`). "
        "It answers in GSM8K's format (`... #### N`) and decodes at interactive speed on a laptop CPU.",
        "",
        "```python",
        "from dllm_viz.backends import load_backend",
        "backend = load_backend('assets/tiny-dllm')  # or AutoModelForMaskedLM / AutoTokenizer",
        "```",
        "",
        "## Training",
        "",
        f"Hardware: {hardware or platform.machine() + ' CPU'}.",
        "",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dllm_viz.tiny.card", description=__doc__.splitlines()[0])
    parser.add_argument("stages", type=Path, nargs="+", help="training run folders, oldest stage first")
    parser.add_argument("--dest", type=Path, required=True)
    parser.add_argument(
        "--evaluate", type=Path, required=True, help="JSON from python -m dllm_viz.tiny.evaluate --json"
    )
    parser.add_argument(
        "--baselines",
        type=Path,
        action="append",
        default=[],
        help="results.md from python -m dllm_viz.eval (repeatable)",
    )
    parser.add_argument("--notes", type=Path, default=None, help="markdown added after the training commands")
    parser.add_argument("--hardware", default=None)
    parser.add_argument(
        "--force", action="store_true", help="replace the files of a non-empty --dest (e.g. the shipped model)"
    )
    args = parser.parse_args(argv)
    try:
        print(
            write_card(
                args.stages, args.dest, args.evaluate, args.baselines, args.notes, args.hardware, force=args.force
            )
        )
    except (OSError, ValueError) as err:
        parser.exit(2, f"error: {err}\n")
    except KeyError as err:  # a run or evaluation file from an older version
        parser.exit(2, f"error: an input file lacks the field {err}; nothing was written\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
