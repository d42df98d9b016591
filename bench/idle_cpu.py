"""CPU the served app uses while idle: ``python app.py`` started as the test suite starts it, left
alone after its preload, then sampled in half-second windows (the windows the cancel tests of
``tests/ui/test_server_load.py`` hold to a 0.1-core bar).

    python bench/idle_cpu.py              # 40 windows of 0.5 s
    python bench/idle_cpu.py --windows 100

It measures and prints; it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
# The app server and the CPU meter are the test suite's own (tests/conftest.py, tests/ui/test_server_load.py).
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "ui")]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=40, help="half-second windows to sample")
    parser.add_argument("--settle", type=float, default=15.0, help="seconds to wait after start (preload)")
    args = parser.parse_args(argv)

    from soak import _Temp

    from conftest import save_tiny_masked_lm, serve_app
    from test_server_load import cpu_rate

    with tempfile.TemporaryDirectory() as tmp:
        temp = _Temp(Path(tmp))
        with serve_app(temp, save_tiny_masked_lm(temp.mktemp("tiny"))) as app:
            time.sleep(args.settle)
            rates = [cpu_rate(app.pid, 0.5) for _ in range(args.windows)]
    print(
        f"idle app, {len(rates)} windows of 0.5 s: mean {statistics.mean(rates):.3f} cores, "
        f"max {max(rates):.3f}, windows ≥ 0.1: {sum(r >= 0.1 for r in rates)}"
    )


if __name__ == "__main__":
    main()
