"""Train an unmasking policy with GRPO on the built-in word problems (the dLLM stays frozen).

    python -m dllm_viz.rl.train --out-dir outputs/policy-a1 --alpha 1 --iterations 150
    python -m dllm_viz.rl.train --out-dir outputs/policy-full --block-length 64 --es-thresholds 0.9

The command line of :class:`~.trainer.GRPOTrainer`: its flags are generated from
:class:`~.trainer.GRPOTrainConfig` and :class:`~.config.GRPOConfig` (defaults and help live
there); ``--resume`` continues a run from its ``checkpoint-last``.
"""

from __future__ import annotations

import argparse
import logging

from ..backends import ModelLoadError
from ..flags import add_arguments, from_args
from .distributed import setup
from .trainer import GRPOTrainConfig, GRPOTrainer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dllm_viz.rl.train", description=__doc__.splitlines()[0])
    add_arguments(parser, GRPOTrainConfig)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    procs = setup()
    try:
        GRPOTrainer(from_args(GRPOTrainConfig, args), procs=procs).train()
    except (ValueError, ModelLoadError) as err:
        parser.exit(2, f"error: {err}\n")
    finally:
        procs.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
