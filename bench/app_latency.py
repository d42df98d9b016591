"""Latency of the app's side-by-side run: time to the first streamed frame and total time.

Drives the Compare tab's own handler (``dllm_viz.ui.compare.run_compare``), so it measures what
the server does per run: both engines in lockstep, trace building, grid/heatmap rendering and
throttling. ``--served`` also measures through HTTP with gradio_client against ``python app.py``.

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
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def handler_args(model: str, prompt: str, L: int, BL: int, a: str, b: str) -> list:
    from dllm_viz.ui.compare import PANE_FIELDS

    defaults = dict(steps=0, threshold=0.9, factor=1.0, gamma=0.01, tau=1.0, beta=1.0, policy_files=None)
    pane = lambda choice: [choice] + [defaults[f] for f in PANE_FIELDS[1:]]  # noqa: E731
    return [model, prompt, L, BL, False, 0.0, 0, *pane(a), *pane(b)]


def one_run(args: list) -> dict:
    """Times of one streamed run: first frame with a committed step, the last frame, and splits."""
    from dllm_viz.ui.compare import run_compare

    t0 = time.perf_counter()
    first = None
    frames = 0
    for out in run_compare(*args):
        comp = out[10]
        if first is None and comp.a is not None and comp.a.num_steps >= 1 and isinstance(out[0], str):
            first = time.perf_counter() - t0
        frames += 1
    total = time.perf_counter() - t0
    model_ms = sum(s.model_ms for t in (comp.a, comp.b) for s in t.steps)
    engine_ms = sum(s.step_ms for t in (comp.a, comp.b) for s in t.steps)
    return dict(first=first, total=total, frames=frames, steps=(comp.a.num_steps, comp.b.num_steps),
                model_ms=model_ms, engine_ms=engine_ms, render_ms=comp.render_ms)


def served_runs(model: str, prompt: str, L: int, BL: int, a: str, b: str, repeats: int, port: int,
                browser: bool = False) -> tuple[list[dict], list[dict]]:
    """The same run through HTTP: ``python app.py`` + gradio_client streaming every yield (and,
    with ``browser``, clicks in headless chromium)."""
    from gradio_client import Client

    env = dict(os.environ, DLLM_VIZ_MODEL=model)
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
            for out in job:
                if first is None and isinstance(out[0], str) and 'data-step="0"' not in out[0]:
                    first = time.perf_counter() - t0
            job.result()
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
        page.goto(url)
        page.wait_for_selector("#run-btn")
        page.locator("#prompt textarea").fill(prompt)
        for _ in range(repeats + 1):
            before = page.locator("#status textarea").input_value()
            t0 = time.perf_counter()
            page.click("#run-btn")
            page.wait_for_function(f"() => document.querySelector('#status textarea').value !== {before!r} && "
                                   "(document.querySelector('#grid-a .dv-grid')?.dataset.step | 0) >= 1",
                                   polling="raf", timeout=120_000)
            first = time.perf_counter() - t0
            page.wait_for_function("() => document.querySelector('#status textarea').value.startsWith('done')",
                                   polling="raf", timeout=120_000)
            results.append(dict(first=first, total=time.perf_counter() - t0))
        browser.close()
    return results[1:]


def main(argv: list[str] | None = None) -> None:
    import torch

    from dllm_viz.ui import runtime
    from dllm_viz.ui.examples import example_problems

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=runtime.default_model())
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
    a, b = runtime.default_strategies()
    print(f"model {args.model} | L={args.gen_length} BL={args.block_length} | A={a} B={b} | "
          f"torch threads {torch.get_num_threads()} | device {'cuda' if torch.cuda.is_available() else 'cpu'}")
    hargs = handler_args(args.model, prompt, args.gen_length, args.block_length, a, b)

    t0 = time.perf_counter()
    cold = one_run(hargs)
    print(f"cold (includes loading the model, {time.perf_counter() - t0:.2f} s): first frame {cold['first']:.3f} s, "
          f"total {cold['total']:.3f} s")
    runs = [one_run(hargs) for _ in range(args.repeats)]
    med = {k: statistics.median(r[k] for r in runs) for k in ("first", "total", "model_ms", "engine_ms", "render_ms", "frames")}
    print(f"warm, median of {args.repeats}: first frame {med['first']:.3f} s | total {med['total']:.3f} s | "
          f"steps A/B {runs[0]['steps'][0]}/{runs[0]['steps'][1]} | frames sent {med['frames']:.0f} | "
          f"model {med['model_ms']:.0f} ms, engine {med['engine_ms']:.0f} ms (both panes), render {med['render_ms']:.0f} ms")
    print(f"  range: first {min(r['first'] for r in runs):.3f}–{max(r['first'] for r in runs):.3f} s, "
          f"total {min(r['total'] for r in runs):.3f}–{max(r['total'] for r in runs):.3f} s")
    if args.served:
        served, clicks = served_runs(args.model, prompt, args.gen_length, args.block_length, a, b, args.repeats,
                                     args.port, args.browser)
        warm = served[1:]
        print(f"served (HTTP, gradio_client): first call {served[0]['first']:.3f}/{served[0]['total']:.3f} s; warm median "
              f"first frame {statistics.median(r['first'] for r in warm):.3f} s, total "
              f"{statistics.median(r['total'] for r in warm):.3f} s")
        if clicks:
            print(f"browser (chromium, click → first painted step / → 'done'): median first frame "
                  f"{statistics.median(r['first'] for r in clicks):.3f} s, total "
                  f"{statistics.median(r['total'] for r in clicks):.3f} s")


if __name__ == "__main__":
    main()
