"""Assemble the Gradio app: Compare, Explore, Train, Benchmark and About tabs (no side effects at import)."""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402
import torch  # noqa: E402

from ..trace import MAX_TRACE_BYTES  # noqa: E402
from ..views import GRID_CSS, STATS_CSS  # noqa: E402
from ..views.explore import EXPLORE_CSS  # noqa: E402
from . import allowed_models, runtime  # noqa: E402
from .about import build_about_tab  # noqa: E402
from .benchmark import build_benchmark_tab  # noqa: E402
from .bookkeeping import SESSIONS, bound_queue_bookkeeping  # noqa: E402
from .compare_tab import COMPARE_CSS, build_compare_tab  # noqa: E402
from .endpoints import compare_trace  # noqa: E402
from .explore_tab import build_explore_tab  # noqa: E402
from .share_events import wire_share  # noqa: E402
from .train_tab import build_train_tab  # noqa: E402
from .updates import name_api_returns  # noqa: E402

TITLE = "dllm-viz: watch a learned unmasking policy and a heuristic decode side by side"
APP_CSS = (
    GRID_CSS
    + STATS_CSS
    + EXPLORE_CSS
    + COMPARE_CSS
    + """
#notes { font-size: 12px; }
#notes ul { margin: 0; }
#notes li { margin: 0; }
#status textarea { font-family: ui-monospace, monospace; font-size: 12px; }
h1 { font-size: 1.35rem !important; margin: 0 !important; }  /* one line at 1024 px: Run and grids above the fold */
.dv-caption p { font-size: 12px; color: #555; margin: 2px 0 0; }
#stop-btn, #run-btn, #share-btn, #prev-step, #next-step, #play-btn { white-space: nowrap; }
.toast-wrap { top: auto !important; bottom: 16px !important; }  /* toasts never cover the title */
"""
)

# Step-through from the keyboard: ← / → press the step buttons unless the user is typing.
STEP_KEYS_JS = """<script>
document.addEventListener('keydown', (e) => {
  const t = e.target, typing = t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
  if (typing || e.altKey || e.ctrlKey || e.metaKey) return;
  const id = {ArrowLeft: 'prev-step', ArrowRight: 'next-step'}[e.key];
  const btn = id && document.getElementById(id);
  if (btn) { e.preventDefault(); btn.click(); }
});
</script>"""


# What each gr.api endpoint returns, as client.view_api() names it (the last item a client gets).
API_RETURNS = {"compare_trace": "comparison", "branch": "tree", "train": "train_event"}

QUEUE_POLL_S = 0.005
# Events waiting in the queue, all visitors together (a run's live-frame ticks count too); one more
# gets "the queue is full" at once instead of a wait with no end. Gradio's default is no limit, and
# on a ZeroGPU Space 1, which a single streaming run fills.
QUEUE_SIZE = int(os.environ.get("DLLM_VIZ_QUEUE_SIZE", "64"))


def build_demo() -> gr.Blocks:
    """The whole app as a ``gr.Blocks`` (not launched)."""
    with gr.Blocks(title="dllm-viz", analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        gr.Markdown(f"# {TITLE}")
        notes = availability_notes()
        if notes:
            gr.Markdown("\n".join(f"* {n}" for n in notes), elem_id="notes")
        with gr.Tabs():
            with gr.Tab("Compare", id="compare"):
                compare = build_compare_tab()
            with gr.Tab("Explore", id="explore"):
                explore = build_explore_tab()
            with gr.Tab("Train", id="train"):
                pickers = [
                    compare.get("strategy_a", gr.Dropdown),
                    compare.get("strategy_b", gr.Dropdown),
                    explore.get("strategy_r", gr.Dropdown),
                    explore.get("strategy_c", gr.Dropdown),
                ]
                build_train_tab(pickers)
            with gr.Tab("Benchmark", id="benchmark"):
                build_benchmark_tab()
            with gr.Tab("About", id="about"):
                build_about_tab()
        wire_share(demo, compare)
        gr.api(
            compare_trace, api_name="compare_trace", concurrency_limit=runtime.MODEL_CONCURRENCY, concurrency_id="model"
        )
    name_api_returns(demo, API_RETURNS)
    demo.queue(default_concurrency_limit=4, max_size=QUEUE_SIZE)
    # Gradio's queue polls for work every 1 ms while idle on Linux, near the 0.1-core "idle" bar of
    # tests/ui/test_server_load.py; every 5 ms costs a third of that and no first-frame latency we
    # could measure (figures: docs/architecture.md, "Idle is idle").
    demo._queue.sleep_when_free = QUEUE_POLL_S
    bound_queue_bookkeeping(demo)
    return demo


def launch_kwargs() -> dict:
    """Arguments for ``demo.launch`` shared by ``app.py`` and the tests."""
    return dict(
        css=APP_CSS,
        head=STEP_KEYS_JS,
        max_file_size=MAX_TRACE_BYTES,
        footer_links=["api", "gradio"],
        show_error=False,
        state_session_capacity=SESSIONS,
    )


def availability_notes() -> list[str]:
    """Plain-language notes about missing pieces, shown at the top of the app."""
    notes = []
    builtin, chosen = allowed_models.builtin_model_installed(), os.environ.get(allowed_models.MODEL_ENV)
    if builtin and not chosen:
        notes.append(
            "The built-in tiny model only knows short English arithmetic word problems like the examples "
            "below; other prompts give nonsense. Larger models (LLaDA, Dream) need a GPU."
        )
    if not builtin and not chosen:
        notes.append(
            "The built-in tiny model (assets/tiny-dllm) is not installed in this copy, so there is "
            "no model to run offline: pick a Hub model on a GPU machine, or upload a trace to replay it."
        )
    if not runtime.shipped_policies():
        notes.append(
            "No trained policy is shipped in assets/policies/ yet: pane A defaults to a heuristic. "
            "You can still upload a policy (model.safetensors, optional config.json)."
        )
    if not torch.cuda.is_available():
        notes.append("No GPU here: LLaDA-8B and Dream-7B cannot run; the built-in tiny model runs on CPU.")
    return notes
