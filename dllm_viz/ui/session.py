"""A comparison held per browser session: two traces (A, B), labels, answer and timings,
plus its export file format. No Gradio here.

Export format (JSON): ``{"format": "dllm-viz-comparison", "version": 1, "labels": [..],
"expected": str | null, "a": <trace>, "b": <trace | null>}``. A plain single trace file
(:meth:`dllm_viz.trace.Trace.save`) is accepted too and replays in pane A.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..trace import MAX_TRACE_BYTES, Trace, TraceError, parse_json, short_repr
from ..views import Verdict, first_divergence

FORMAT = "dllm-viz-comparison"
VERSION = 1
MAX_UPLOAD_BYTES = MAX_TRACE_BYTES  # one limit for a single trace and for a pair
MAX_LABEL_CHARS = 120


def new_run_id() -> str:
    return secrets.token_hex(3)


@dataclass
class Comparison:
    """The state behind both panes.

    Attributes:
        run_id: short id shown in the status line (tells two identical runs apart).
        a, b: the traces; B may be None (a single uploaded trace).
        labels: pane titles.
        expected: the known answer of the prompt, if any.
        render_ms: wall time spent rendering frames in the app (not in the model).
        finished: the run ended (or the comparison was loaded from a file).
        stopped: the user stopped the run before it ended.
        source: "run" or "upload".
    """

    run_id: str
    a: Trace | None
    b: Trace | None
    labels: tuple[str, str] = ("A", "B")
    expected: str | None = None
    render_ms: float = 0.0
    finished: bool = False
    stopped: bool = False
    source: str = "run"
    meta: dict = field(default_factory=dict)

    @property
    def num_steps(self) -> int:
        return max((t.num_steps for t in (self.a, self.b) if t is not None), default=0)

    @property
    def divergence(self) -> int | None:
        return first_divergence(self.a, self.b)

    def verdict(self, trace: Trace | None) -> Verdict | None:
        """The answer check of a finished pane (None while running)."""
        if trace is None or not self.finished:
            return None
        if self.expected is None:
            return Verdict(answer=trace.text)
        from ..tasks import answer_error, extract_answer

        reason = answer_error(trace.text, self.expected)
        return Verdict(
            answer=extract_answer(trace.text) or trace.text,
            expected=self.expected,
            correct=reason is None,
            reason=reason,
        )

    def in_words(self) -> str:
        """Both finished panes as a sentence: "A needed 5 fewer forward passes than B, and only A is right"."""
        if self.a is None or self.b is None:
            return ""
        fewer = self.b.nfe - self.a.nfe
        cost = f"A needed {abs(fewer)} {'fewer' if fewer > 0 else 'more'} forward passes than B"
        cost = cost if fewer else "A and B needed as many forward passes"
        a, b = self.verdict(self.a), self.verdict(self.b)
        if a is None or b is None:
            return cost
        if a.correct is None or b.correct is None:
            return cost + (", and got the same answer" if a.answer == b.answer else ", with different answers")
        if a.correct == b.correct:
            return f"{cost}, and both are {'right' if a.correct else 'wrong'}"
        return f"{cost}, and only {'A' if a.correct else 'B'} is right"

    # ---- export / import ------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "version": VERSION,
            "labels": list(self.labels),
            "expected": self.expected,
            "a": None if self.a is None else asdict(self.a),
            "b": None if self.b is None else asdict(self.b),
        }

    def save(self, directory: str | os.PathLike) -> Path:
        path = Path(directory) / f"trace-{self.run_id}.json"
        path.write_text(json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False), encoding="utf-8")
        return path


def load_comparison(path: str | os.PathLike) -> Comparison:
    """Read an exported comparison or a single trace, checking size before reading.

    Raises:
        TraceError: too large, not JSON, or not a valid trace / comparison (the message says why).
    """
    size = os.path.getsize(path)
    if size > MAX_UPLOAD_BYTES:
        raise TraceError(f"the file is {size / 1e6:.1f} MB; the limit for a trace is {MAX_UPLOAD_BYTES / 1e6:.0f} MB")
    data = parse_json(Path(path).read_bytes())
    if isinstance(data, dict) and data.get("format") == FORMAT:
        if data.get("version") != VERSION:
            raise TraceError(
                f"unsupported comparison version {short_repr(data.get('version'))}; this app reads {VERSION}"
            )
        if not isinstance(data.get("a"), dict):
            raise TraceError("not a comparison: pane 'a' must hold a trace")
        a = _trace(data["a"], "a")
        b = _trace(data["b"], "b") if data.get("b") is not None else None
        labels = data.get("labels")
        labels = (
            tuple(str(x)[:MAX_LABEL_CHARS] for x in labels)
            if isinstance(labels, list) and len(labels) == 2
            else ("A", "B")
        )
        return Comparison(new_run_id(), a, b, labels, _expected(data.get("expected")), finished=True, source="upload")
    if not isinstance(data, dict) or not {"version", "steps"} <= data.keys():
        raise TraceError(
            "this JSON file is not a dllm-viz trace (no 'format', 'version' or 'steps' field); "
            "load a file saved with ⬇ Trace (JSON) or Trace.save"
        )
    trace = Trace.from_dict(data)
    label = "A · " + str(trace.strategy.get("name", "trace"))[:MAX_LABEL_CHARS]
    return Comparison(new_run_id(), trace, None, (label, "B"), finished=True, source="upload")


def _expected(value: object) -> str | None:
    """The known answer of an uploaded comparison: a number, a solution ending in ``#### N``, or a
    free problem's chain such as ``"5 - ? + ?"`` (see ``Problem.expected``)."""
    from ..tasks import check_answer

    if value is None:
        return None
    if not isinstance(value, (str, int, float)) or isinstance(value, bool) or len(str(value)) > 1000:
        raise TraceError("expected must be the known answer as a number or text")
    try:
        check_answer("", str(value))
    except ValueError:
        raise TraceError(
            f"expected ({short_repr(value)}) is not an answer this app can check (a number, text "
            "ending in '#### N', or a chain like '5 - ? + ?')"
        ) from None
    return str(value)


def _trace(data: object, pane: str) -> Trace:
    try:
        return Trace.from_dict(data)
    except TraceError as err:
        raise TraceError(f"pane {pane}: {err}") from None
