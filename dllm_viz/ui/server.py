"""The app's server: command-line flags, torch threads, then build the Gradio demo and launch it.

    python app.py                         # http://127.0.0.1:7860, built-in tiny model, offline
    dllm-viz app --host 0.0.0.0 --port 8080 --model path/to/model
    dllm-viz app --allow-model-dir /models   # users may also pick models in /models/*
    dllm-viz app --allow-hub-model org/my-dllm   # users may also pick (and so download) this Hub model
    dllm-viz app --model /models/my-dllm --trust-remote-code   # a folder that ships its own modelling code
    dllm-viz app --allow-hub-policy you/my-policy   # users may pick policy:you/my-policy (downloaded once)
    dllm-viz app --share                  # also a temporary public gradio.live link (needs internet)

``app.py`` (Hugging Face Spaces' entry point), ``dllm-viz app`` and ``python -m dllm_viz.ui.server``
all run :func:`main`. Host and port also come from ``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT``;
the default model from ``DLLM_VIZ_MODEL``. Importing this module builds nothing, and imports neither
torch nor Gradio (``--help`` answers at once).
"""

from __future__ import annotations

import argparse
import logging
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def _extend_env(name: str, values: list[str], sep: str) -> None:
    """Append a repeatable flag's values to the list variable ``name`` the app reads (flags add to the env's)."""
    if values:
        current = [v for v in os.environ.get(name, "").split(sep) if v]
        os.environ[name] = sep.join(current + values)


def _add_model_flags(parser: argparse.ArgumentParser) -> None:
    """Which models (and learned policies) the app serves, and whose modelling code it may run."""
    parser.add_argument("--model", default=None, help="default model folder or Hub id (env DLLM_VIZ_MODEL)")
    parser.add_argument(
        "--allow-model-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="a folder whose model subfolders users may pick (repeatable; assets/ always is; "
        "env DLLM_VIZ_ALLOW_MODEL_DIRS, os.pathsep-separated)",
    )
    parser.add_argument(
        "--allow-hub-model",
        action="append",
        default=[],
        metavar="ORG/NAME",
        help="a Hub id users may pick, downloaded on demand (repeatable; the listed LLaDA and Dream "
        "models always are; env DLLM_VIZ_ALLOW_HUB_MODELS, comma-separated)",
    )
    parser.add_argument(
        "--allow-hub-policy",
        action="append",
        default=[],
        metavar="ORG/NAME",
        help="a learned policy on the Hub that users may pick as policy:ORG/NAME, downloaded on first use "
        "(repeatable; env DLLM_VIZ_ALLOW_HUB_POLICIES, comma-separated)",
    )
    parser.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="run the modelling code shipped with the default model and with folders under "
        "--allow-model-dir (never with a Hub id a user types); env DLLM_VIZ_TRUST_REMOTE_CODE=1",
    )


def _add_running_flags(parser: argparse.ArgumentParser) -> None:
    """How the server runs: torch threads, preloading, the queue's length, a public link."""
    parser.add_argument(
        "--threads",
        type=int,
        default=int(os.environ.get("DLLM_VIZ_THREADS", "1")),
        help="CPU threads for torch (default 1: the built-in model's steps are too small to gain "
        "from more, and on shared cores extra threads spin; measured 80x slower with 2)",
    )
    parser.add_argument(
        "--preload",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="load the default model at start so the first run streams at once",
    )
    parser.add_argument(
        "--queue-size",
        type=int,
        default=None,
        metavar="N",
        help="events that may wait in the queue, all visitors together; one more is told the queue is "
        "full (default 64; env DLLM_VIZ_QUEUE_SIZE)",
    )
    parser.add_argument(
        "--share",
        action="store_true",
        help="also serve through a temporary public *.gradio.live link (needs internet; anyone with the "
        "link can run models on this machine)",
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, checked; ``--help`` and a bad flag exit here."""
    parser = argparse.ArgumentParser(prog="python app.py", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    _add_model_flags(parser)
    _add_running_flags(parser)
    args = parser.parse_args(argv)
    if args.queue_size is not None and args.queue_size < 1:
        parser.error(f"--queue-size ({args.queue_size}) must be at least 1")
    return args


def _export_to_env(args: argparse.Namespace) -> None:
    """Hand the app's flags over through the environment variables it reads (flags add to the env's lists)."""
    if args.model:
        os.environ["DLLM_VIZ_MODEL"] = args.model
    if args.trust_remote_code:
        os.environ["DLLM_VIZ_TRUST_REMOTE_CODE"] = "1"
    _extend_env("DLLM_VIZ_ALLOW_MODEL_DIRS", args.allow_model_dir, os.pathsep)
    _extend_env("DLLM_VIZ_ALLOW_HUB_MODELS", args.allow_hub_model, ",")
    _extend_env("DLLM_VIZ_ALLOW_HUB_POLICIES", args.allow_hub_policy, ",")
    if args.queue_size is not None:
        os.environ["DLLM_VIZ_QUEUE_SIZE"] = str(args.queue_size)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    _export_to_env(args)

    import torch

    if args.threads > 0:
        torch.set_num_threads(args.threads)

    from . import allowed_models, runtime
    from .app import build_demo, launch_kwargs

    demo = build_demo()
    if args.preload:
        runtime.preload(allowed_models.default_model())
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, **launch_kwargs())


if __name__ == "__main__":
    main()
