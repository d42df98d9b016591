"""Soak the served app: mixed requests through gradio_client against ``python app.py`` (API runs,
Explore runs, cancelled long runs, refused uploads, branches, uploaded-policy runs with their
export and re-upload), printing the server's RSS as it goes and its creep per request.

The test suite runs the same rounds, fewer of them (``tests/ui/test_server_load.py``).

    python bench/soak.py                      # 400 rounds (~960 requests), warm-up 100
    python bench/soak.py --rounds 1000 --warmup 100

A round makes 2 requests, or 4 with an uploaded policy. The server's RSS takes a one-off step of a
few MB within its first ~200 rounds, so the slope is read over the last 100 rounds of a longer run.
It measures and prints; it asserts nothing (the bar: RSS growth < 5 % after warm-up and a slope
< 0.02 MB per request over the last 100 rounds).
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
# The app server and the soak rounds are the test suite's own (tests/conftest.py, tests/ui/test_server_load.py).
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "ui")]


class _Temp:
    """The one method of pytest's tmp_path_factory that ``serve_app`` uses."""

    def __init__(self, root: Path):
        self.root = root

    def mktemp(self, name: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=name, dir=self.root))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--every", type=int, default=25, help="print RSS every this many rounds")
    parser.add_argument("--last", type=int, default=100, help="rounds the slope is fitted over")
    args = parser.parse_args(argv)

    from conftest import save_tiny_masked_lm, serve_app
    from test_server_load import rss_mb, slope_mb_per_round, soak

    with tempfile.TemporaryDirectory() as tmp:
        temp = _Temp(Path(tmp))
        with serve_app(temp, save_tiny_masked_lm(temp.mktemp("tiny"))) as app:
            print(f"server pid {app.pid}, RSS at start {rss_mb(app.pid):.0f} MB")
            try:
                result = soak(app, temp.mktemp("soak"), runs=args.rounds, warmup=min(args.warmup, args.rounds - 1))
            except Exception:
                print(f"the soak failed; the end of the server's log:\n{app.log.read_text()[-6000:]}", file=sys.stderr)
                raise
    series = result["series"]
    for done in range(args.every, len(series) + 1, args.every):
        print(f"{done:5d} rounds: RSS {series[done - 1]:.1f} MB")
    growth = 100 * (result["end"] / result["warm"] - 1)
    last = series[-args.last :]
    per_round = slope_mb_per_round(last)
    requests = result["requests"][-len(last) :]
    print(f"after warm-up ({args.warmup} rounds): {result['warm']:.1f} → {result['end']:.1f} MB ({growth:+.1f} %)")
    print(
        f"slope over the last {len(last)} rounds ({sum(requests)} requests): {per_round:+.4f} MB/round, "
        f"{per_round * len(requests) / sum(requests):+.4f} MB/request; {result['files']} files"
    )


if __name__ == "__main__":
    main()
