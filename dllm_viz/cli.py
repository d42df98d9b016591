"""The ``dllm-viz`` command: one entry point whose sub-commands are the project's CLIs.

    dllm-viz app                                  # the Gradio app (same as python app.py)
    dllm-viz generate --prompt "..." --strategy threshold --param threshold=0.9
    dllm-viz eval --help                          # each sub-command's own flags

Each sub-command hands the rest of the command line to the ``main(argv)`` of the module that
``python -m`` runs, so flags are defined once, there. Modules are imported only when their command
runs, so ``dllm-viz --help`` answers without loading torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from . import __version__

# command -> (module whose main(argv) runs it, one line for --help)
COMMANDS: dict[str, tuple[str, str]] = {
    "app": ("dllm_viz.ui.server", "serve the Gradio app (python app.py)"),
    "generate": ("dllm_viz.generate", "decode prompts with one strategy; optionally save the trace"),
    "eval": ("dllm_viz.eval.__main__", "sweep strategies on held-out problems: tables and Pareto plots"),
    "train-policy": ("dllm_viz.rl.train", "train an unmasking policy with GRPO"),
    "policy-card": ("dllm_viz.rl.card", "ship a policy checkpoint with its model card"),
    "push-policy": ("dllm_viz.rl.push", "upload a policy folder and its card to the Hugging Face Hub"),
    "train-tiny": ("dllm_viz.tiny.train", "train the built-in tiny dLLM (MDLM)"),
    "evaluate-tiny": ("dllm_viz.tiny.evaluate", "held-out accuracy and speed of a dLLM"),
    "model-card": ("dllm_viz.tiny.card", "ship a trained tiny dLLM with its model card"),
}


def build_parser() -> argparse.ArgumentParser:
    listing = "\n".join(
        f"  {name:<15} {help_}  [python -m {module.removesuffix('.__main__')}]"
        for name, (module, help_) in COMMANDS.items()
    )
    parser = argparse.ArgumentParser(
        prog="dllm-viz",
        description="dllm-viz: watch diffusion LMs decode; train and inspect unmasking policies.",
        usage="dllm-viz [-h] [--version] <command> [args ...]",
        epilog=f"commands:\n{listing}\n\n'dllm-viz <command> --help' shows a command's flags.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("command", choices=list(COMMANDS), metavar="<command>", help="one of the commands below")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``dllm-viz <command> [args ...]``; returns the command's exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # Only the first word is ours: everything after the command, --help included, is the command's.
    command = build_parser().parse_args(argv[:1]).command
    module = importlib.import_module(COMMANDS[command][0])
    status = module.main(argv[1:])
    return status if isinstance(status, int) else 0  # some mains return their results (a dict) or None


if __name__ == "__main__":
    raise SystemExit(main())
