"""Soak the served app: many API runs, uploaded-policy runs, exports and trace re-uploads through
gradio_client against ``python app.py``, printing the server's RSS and file count as it goes.

The test suite runs the same loop for 100 rounds (``tests/ui/test_server_load.py``); this runs longer.

    python bench/soak.py                 # 1000 rounds, warm-up 100
    python bench/soak.py --rounds 300 --warmup 50

It measures and prints; it asserts nothing (issue 11's bar: RSS growth < 5 % after warm-up).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
# The app server and the soak loop are the test suite's own (tests/conftest.py, tests/ui/test_server_load.py).
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "ui")]


class _Temp:
    """The one method of pytest's tmp_path_factory that ``serve_app`` uses."""

    def __init__(self, root: Path):
        self.root = root

    def mktemp(self, name: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=name, dir=self.root))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--every", type=int, default=100, help="print RSS every this many rounds")
    args = parser.parse_args(argv)

    from conftest import save_tiny_masked_lm, serve_app
    from test_server_load import rss_mb, soak

    with tempfile.TemporaryDirectory() as tmp:
        temp = _Temp(Path(tmp))
        with serve_app(temp, save_tiny_masked_lm(temp.mktemp("tiny"))) as app:
            print(f"server pid {app.pid}, RSS at start {rss_mb(app.pid):.0f} MB")
            warm = None
            for done in range(args.every, args.rounds + 1, args.every):
                result = soak(app, temp.mktemp("round"), runs=args.every, warmup=0)
                warm = result["warm"] if done > args.warmup and warm is None else warm
                growth = f"{100 * (result['end'] / warm - 1):+.1f} % since warm-up" if warm else "warming up"
                print(f"{done:5d} rounds: RSS {result['end']:.0f} MB ({growth}), {result['files']} files")


if __name__ == "__main__":
    main()
