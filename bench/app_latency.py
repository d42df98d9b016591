"""Latency of the app's side-by-side run: time to the first streamed frame and total time.

Drives the Compare tab's own handlers, so it measures what the server does per run: the run
(``dllm_viz.ui.compare.run_compare``: both engines in lockstep, trace building, the final render)
at full speed, while a thread pulls live frames (``live_frame``) every ``LIVE_TICK_S`` as the
browser's live timer does; the first frame is the first pulled frame with a committed step.
``--served`` also measures through HTTP with gradio_client against ``python app.py`` (a client
gets no live frames, so its "first" is the first status line with a step, sent every
``STATUS_INTERVAL_S``), and ``--browser`` clicks Run in headless chromium (first painted step).

    python bench/app_latency.py                     # built-in model, L=64, BL=8, 5 repeats
    python bench/app_latency.py --model /path/to/model --served --browser

It measures and prints; it asserts nothing (targets: first frame < 1 s, total < 5 s on CPU).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dllm_viz.strategies import StrategySpec

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]  # where app.py is


def handler_args(model: str, prompt: str, L: int, BL: int, a: StrategySpec, b: StrategySpec) -> list:
    """The Run button's inputs: settings, then each pane's picker and controls (no uploaded files)."""
    from dllm_viz.ui.pane import pane_values

    return [model, prompt, L, BL, False, 0.0, 0, *pane_values(a), None, *pane_values(b), None, "full speed"]


def one_run(args: list) -> dict:
    """Times of one run: first live frame with a committed step, the final frame, and splits."""
    from dllm_viz.ui.compare import LIVE_TICK_S, live_frame, run_compare
    from dllm_viz.ui.session import Comparison

    t0 = time.perf_counter()
    seen = {"comp": None, "first": None, "live": 0}
    done = threading.Event()

    def pull() -> None:  # the browser's live timer
        while not done.wait(LIVE_TICK_S):
            comp = seen["comp"]
            if comp is None:
                continue
            out = live_frame(comp)
            if isinstance(out.get("grid_a"), str):
                seen["live"] += 1
                if seen["first"] is None and comp.num_steps >= 1:
                    seen["first"] = time.perf_counter() - t0

    puller = threading.Thread(target=pull, daemon=True)
    puller.start()
    frames = 0
    try:
        for out in run_compare(*args):
            if isinstance(out.get("session"), Comparison):
                seen["comp"] = out["session"]
            frames += 1
    finally:
        done.set()
        puller.join()
    total = time.perf_counter() - t0
    comp = seen["comp"]
    first = seen["first"] if seen["first"] is not None else total  # a run shorter than one tick: the final frame
    model_ms = sum(s.model_ms for t in (comp.a, comp.b) for s in t.steps)
    engine_ms = sum(s.step_ms for t in (comp.a, comp.b) for s in t.steps)
    return dict(
        first=first,
        total=total,
        frames=frames + seen["live"],
        steps=(comp.a.num_steps, comp.b.num_steps),
        model_ms=model_ms,
        engine_ms=engine_ms,
        render_ms=comp.render_ms,
    )


def served_runs(
    model: str, prompt: str, L: int, BL: int, a: str, b: str, repeats: int, port: int, browser: bool = False
) -> tuple[list[dict], list[dict]]:
    """The same run through HTTP: ``python app.py`` + gradio_client streaming every yield (and,
    with ``browser``, clicks in headless chromium)."""
    from gradio_client import Client

    env = dict(os.environ, DLLM_VIZ_MODEL=model)
    proc = subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        for _ in range(240):
            try:
                client = Client(url, verbose=False)
                break
            except Exception:
                time.sleep(0.5)
        else:
            raise RuntimeError("app did not start")
        results = []
        for _ in range(repeats + 1):  # the first run also loads/warms the model: reported separately
            t0 = time.perf_counter()
            job = client.submit(*handler_args(model, prompt, L, BL, a, b), api_name="/compare")
            first = None
            for out in job:  # status lines only: the panes reach a browser through its live timer
                if (
                    first is None
                    and isinstance(out[7], str)
                    and out[7].startswith("running step")
                    and not out[7].startswith("running step 0 ")
                ):
                    first = time.perf_counter() - t0
            job.result()
            first = first if first is not None else time.perf_counter() - t0
            results.append(dict(first=first, total=time.perf_counter() - t0))
        return results, (browser_runs(url, prompt, repeats) if browser else [])
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def browser_runs(url: str, prompt: str, repeats: int) -> list[dict]:
    """Click-to-paint times in headless chromium: first grid showing step ≥ 1, and "done"."""
    import shutil

    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        raise RuntimeError("chromium is not installed (apt-get install -y chromium)")
    results = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(120_000)  # shared cores: the first load can take a while
        page.goto(url)
        page.wait_for_selector("#run-btn")
        page.locator("#prompt textarea").fill(prompt)
        page.locator("#settings .label-wrap").first.click()  # live speed sits in the (closed) settings box
        page.get_by_label("full speed").check()  # the page opens in slow motion, for a class
        for _ in range(repeats + 1):
            before = page.locator("#status textarea").input_value()
            t0 = time.perf_counter()
            page.click("#run-btn")
            page.wait_for_function(
                f"() => document.querySelector('#status textarea').value !== {before!r} && "
                "(document.querySelector('#grid-a .dv-grid')?.dataset.step | 0) >= 1",
                polling="raf",
                timeout=120_000,
            )
            first = time.perf_counter() - t0
            page.wait_for_function(
                "() => document.querySelector('#status textarea').value.startsWith('done')",
                polling="raf",
                timeout=120_000,
            )
            results.append(dict(first=first, total=time.perf_counter() - t0))
        browser.close()
    return results[1:]


def main(argv: list[str] | None = None) -> None:
    import torch

    from dllm_viz.ui import allowed_models, picker
    from dllm_viz.ui.examples import example_problems

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=allowed_models.default_model())
    parser.add_argument("--gen-length", type=int, default=64)
    parser.add_argument("--block-length", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the app's default is 1)")
    parser.add_argument("--served", action="store_true", help="also measure through python app.py + gradio_client")
    parser.add_argument("--browser", action="store_true", help="with --served: also click Run in headless chromium")
    parser.add_argument("--port", type=int, default=7899)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    problems = example_problems()
    prompt = problems[0].question if problems else "Tom has 3 apples and buys 4 more. How many apples does he have?"
    a, b = picker.default_strategies()
    print(
        f"model {args.model} | L={args.gen_length} BL={args.block_length} | A={a.key} B={b.key} | "
        f"torch threads {torch.get_num_threads()} | device {'cuda' if torch.cuda.is_available() else 'cpu'}"
    )
    hargs = handler_args(args.model, prompt, args.gen_length, args.block_length, a, b)

    t0 = time.perf_counter()
    cold = one_run(hargs)
    print(
        f"cold (includes loading the model, {time.perf_counter() - t0:.2f} s): first frame {cold['first']:.3f} s, "
        f"total {cold['total']:.3f} s"
    )
    runs = [one_run(hargs) for _ in range(args.repeats)]
    med = {
        k: statistics.median(r[k] for r in runs)
        for k in ("first", "total", "model_ms", "engine_ms", "render_ms", "frames")
    }
    print(
        f"warm, median of {args.repeats}: first frame {med['first']:.3f} s | total {med['total']:.3f} s | "
        f"steps A/B {runs[0]['steps'][0]}/{runs[0]['steps'][1]} | frames sent {med['frames']:.0f} | "
        f"model {med['model_ms']:.0f} ms, engine {med['engine_ms']:.0f} ms (both panes), "
        f"render {med['render_ms']:.0f} ms"
    )
    print(
        f"  range: first {min(r['first'] for r in runs):.3f}–{max(r['first'] for r in runs):.3f} s, "
        f"total {min(r['total'] for r in runs):.3f}–{max(r['total'] for r in runs):.3f} s"
    )
    if args.served:
        served, clicks = served_runs(
            args.model, prompt, args.gen_length, args.block_length, a, b, args.repeats, args.port, args.browser
        )
        warm = served[1:]
        print(
            f"served (HTTP, gradio_client): first call {served[0]['first']:.3f}/{served[0]['total']:.3f} s; "
            f"warm median first frame {statistics.median(r['first'] for r in warm):.3f} s, total "
            f"{statistics.median(r['total'] for r in warm):.3f} s"
        )
        if clicks:
            print(
                f"browser (chromium, click → first painted step / → 'done'): median first frame "
                f"{statistics.median(r['first'] for r in clicks):.3f} s, total "
                f"{statistics.median(r['total'] for r in clicks):.3f} s"
            )


if __name__ == "__main__":
    main()
