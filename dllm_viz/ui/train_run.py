"""A Train-tab run: :class:`~dllm_viz.rl.trainer.GRPOTrainer` on the app's model in a
:class:`~.budget.BackgroundJob`, watched batch by batch through a trainer callback.

The job holds one compute slot; one run trains at a time per server (:class:`~.train_queue.TrainQueue`), the
rest wait with their position; a session's runs share a time cap (``TRAIN_CAP_S``). Stop (or a
client's cancel) stops the job at its next forward pass, so the CPU is free within a step; the
policy is kept up to the last finished batch (a checkpoint is saved after every batch) and
published to the pickers and as a download. No Gradio here.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..backends import DLLM
from ..engine import EngineConfig, generate
from ..rl.card import training_curves, write_card
from ..rl.rollout import evaluation_mode
from ..rl.trainer import GRPOTrainer, heldout_problems
from ..strategies import Strategy
from ..strategies.learned import DiTConfidencePolicy, LearnedPolicy
from ..tasks import Problem
from ..tasks.wordproblems import validation_set
from ..trace import Trace, TraceBuilder
from ..views import heatmap_figure, render_grid, stats_html
from . import picker, runtime
from .budget import BackgroundJob, CancellableBackend, Cancelled, Signal
from .files import content_folder, digest_of, file_digest
from .session import new_run_id
from .train_queue import QUEUE
from .train_settings import TrainSettings

logger = logging.getLogger(__name__)

TRAIN_CAP_S = float(os.environ.get("DLLM_VIZ_TRAIN_CAP_S", "900"))  # training seconds per session
MAX_SNAPSHOTS = 24  # probe decodes kept per run (pre-rendered: a few KB each)
MAX_RUN_FOLDERS = 8  # run folders (checkpoints, metrics) kept on disk, least recently active first out
# A run folder active this recently may be another server process's training (each batch touches
# it; the folders live under the shared temp folder): never pruned, whatever the count.
RUN_IDLE_S = 600.0
CARD_HARDWARE = "the app's server"  # the card's training machine
CURVES_PAGE = "training_curves.html"
POLL_S = 0.25  # how often a waiting or watching handler yields: a cancel lands within one poll


@dataclass
class Snapshot:
    """The probe problem decoded by the policy after ``batch`` batches (0: untrained), pre-rendered."""

    batch: int
    grid: str
    stats: str
    heatmap: object  # a plotly figure of the policy's unmask probabilities, step × position
    nfe: int
    correct: bool | None


@dataclass
class TrainRun:
    """One session's training, as the Train tab and ``/train`` follow it.

    Attributes:
        rows: metrics.jsonl rows so far (one per batch, at most ``MAX_BATCHES``).
        snapshots: probe decodes, at most ``MAX_SNAPSHOTS``.
        heuristic: the probe decoded by the chosen heuristic, rendered (grid, stats).
        baseline: validation metrics of the untrained policy (what the curve starts from).
        used_s: training seconds of this session (all its runs) against ``TRAIN_CAP_S``.
        status: ``"queued"``, ``"training"``, ``"stopped"``, ``"capped"``, ``"done"`` or ``"failed"``.
        policy: the picker name of the published policy (``trained-<digest>``), once there is one.
        export: the published folder (weights, config, card, metrics) and its zip.
        folder: where the trainer writes (metrics, checkpoints); made when the run first trains.
    """

    settings: TrainSettings
    model: str
    run_id: str = field(default_factory=new_run_id)
    folder: Path | None = None
    rows: list[dict] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)
    heuristic: tuple[str, str] | None = None
    baseline: dict | None = None
    used_s: float = 0.0
    status: str = "queued"
    message: str = ""
    policy: str | None = None
    export: tuple[Path, Path] | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def selected(self) -> int | None:
        """The batch checkpoint-best comes from: the first best validation reward."""
        held = [r for r in self.rows if "heldout_reward" in r]
        return max(held, key=lambda r: r["heldout_reward"])["iteration"] if held else None

    @property
    def left_s(self) -> float:
        return max(0.0, TRAIN_CAP_S - self.used_s)


def _runs_root() -> Path:
    root = Path(tempfile.gettempdir()) / "dllm-viz-training"
    root.mkdir(parents=True, exist_ok=True)
    return root


_FOLDERS_LOCK = threading.Lock()  # held while run folders are made, pruned or claimed
_IN_USE: set[Path] = set()  # run folders this process's jobs are training in or publishing from


def _prune_run_folders() -> None:
    """Remove the least recently active run folders beyond ``MAX_RUN_FOLDERS - 1``, except those in
    use here and those active in the last ``RUN_IDLE_S`` (call with ``_FOLDERS_LOCK`` held)."""
    entries = []
    for entry in _runs_root().iterdir():
        try:
            entries.append((entry.stat().st_mtime, entry))
        except OSError:  # removed meanwhile by another server process
            pass
    entries.sort(reverse=True)
    cutoff = time.time() - RUN_IDLE_S
    for mtime, entry in entries[MAX_RUN_FOLDERS - 1 :]:
        if entry not in _IN_USE and mtime < cutoff:
            shutil.rmtree(entry, ignore_errors=True)


@contextmanager
def _claimed(run: TrainRun) -> Iterator[bool]:
    """Hold ``run``'s folder while its job trains and publishes: no prune removes it meanwhile.

    Yields whether the run resumes. A run with no finished batch to continue from (new, stopped
    before its first batch ended, or its folder pruned while idle) gets a fresh folder, and its
    old one goes. On release the folder is touched: its idle time counts from then.
    """
    with _FOLDERS_LOCK:
        resume = resumable(run)
        if not resume:
            if run.folder is not None:
                shutil.rmtree(run.folder.parent, ignore_errors=True)
            _prune_run_folders()
            run.folder, run.rows = Path(tempfile.mkdtemp(prefix="run-", dir=_runs_root())) / "run", []
        assert run.folder is not None  # a resumable run has one
        root = run.folder.parent
        _IN_USE.add(root)
    try:
        yield resume
    finally:
        with _FOLDERS_LOCK:
            _IN_USE.discard(root)
            _touch(root)


def _touch(folder: Path) -> None:
    try:
        os.utime(folder)
    except OSError:  # gone: nothing left to protect
        pass


# ---- the job --------------------------------------------------------------------------------------


class _Stops:
    """The job's stop signal: the handler's cancel (a client gone) or the session's Stop button."""

    def __init__(self, cancel: Signal, stop: threading.Event) -> None:
        self._cancel, self._stop = cancel, stop

    def is_set(self) -> bool:
        return self._cancel.is_set() or self._stop.is_set()


def probe_problem() -> Problem:
    """The fixed problem every snapshot decodes: the first validation problem of the training level."""
    return validation_set(1, 1, 1.0)[0]


def _engine(settings: TrainSettings) -> EngineConfig:
    return EngineConfig(gen_length=settings.gen_length, block_length=settings.block_length, seed=settings.seed)


def _probe(
    backend: DLLM, strategy: Strategy, settings: TrainSettings, pane: str, title: str
) -> tuple[str, str, object, Trace, bool]:
    """Decode the probe with ``strategy``: (grid, stats, heatmap, trace) as Compare renders a pane."""
    problem = probe_problem()
    config = _engine(settings)
    builder = TraceBuilder(backend, problem.question, strategy, config)
    with torch.no_grad():
        for rec in generate(backend, [problem.question], strategy, config):
            builder.add(rec)
    trace = builder.trace(builder.text())
    correct = problem.check(trace.text)
    k = trace.num_steps
    grid = render_grid(trace, k, pane=pane, title=title)
    return grid, stats_html(trace, k, pane=pane), heatmap_figure(trace, k, title=title), trace, correct


def _snapshot(backend: DLLM, policy: DiTConfidencePolicy, run: TrainRun, batch: int) -> None:
    settings = run.settings
    action = "bernoulli"  # the tab trains the paper's action form
    strategy = LearnedPolicy(policy, mode=evaluation_mode(action))
    grid, stats, heat, trace, correct = _probe(backend, strategy, settings, "a", f"policy after {batch} batches")
    run.snapshots.append(Snapshot(batch, grid, stats, heat, trace.nfe, correct))
    if len(run.snapshots) > MAX_SNAPSHOTS:  # keep the first and thin the middle: the story stays whole
        del run.snapshots[1]


def resumable(run: TrainRun) -> bool:
    """Whether ``run`` has a finished batch to continue from and batches left."""
    if run.folder is None or len(run.rows) >= run.settings.batches:
        return False
    return (run.folder / "checkpoint-last" / "trainer_state.json").exists()


def train(cancel: Signal, run: TrainRun) -> TrainRun:
    """The job: train ``run`` (continuing from its last finished batch, if any) to its last batch,
    its time cap or a stop; then publish it. Its folder is held the whole time (:func:`_claimed`)."""
    with _claimed(run) as resume:
        return _train(cancel, run, resume)


def _train(cancel: Signal, run: TrainRun, resume: bool) -> TrainRun:
    backend = CancellableBackend(runtime.get_backend(run.model), _Stops(cancel, run.stop))
    settings = run.settings
    folder = run.folder
    assert folder is not None  # made by _claimed
    started, deadline = time.monotonic(), time.monotonic() + run.left_s

    def on_batch(trainer: GRPOTrainer, row: dict) -> bool:
        run.rows.append(row)
        _touch(folder.parent)  # active: other server processes' prunes leave it
        batch = row["iteration"] + 1
        if batch % settings.probe_every == 0 or batch == settings.batches:
            _snapshot(backend, trainer.policy, run, batch)
        return time.monotonic() > deadline

    config = settings.train_config(str(run.folder), run.model, resume=resume)
    trainer = GRPOTrainer(config, backend=backend, callbacks=[on_batch])
    run.status = "training"
    try:
        if run.heuristic is None:
            grid, stats, *_ = _probe(
                backend, settings.heuristic_spec.build(), settings, "b", picker.pane_title(settings.heuristic_spec)
            )
            run.heuristic = (grid, stats)
        if not run.snapshots:
            _snapshot(backend, trainer.policy, run, 0)
        if run.baseline is None:
            run.baseline = baseline(backend, trainer)
        trainer.train()
        capped = time.monotonic() > deadline and len(run.rows) < settings.batches
        run.status = "capped" if capped else "done"
    except Cancelled:
        run.status = "stopped"
    finally:
        run.used_s += time.monotonic() - started
    if run.rows:
        publish(run)
    return run


def baseline(backend: DLLM, trainer: GRPOTrainer) -> dict:
    """Validation metrics of the policy before training, on the problems that select checkpoints."""
    from ..rl.rollout import heldout_reward

    cfg = trainer.config
    with torch.no_grad():
        return heldout_reward(
            backend,
            trainer.policy,
            heldout_problems(cfg.eval_problems, cfg.levels, cfg.free),
            trainer.grpo,
            trainer.engine,
            seed=trainer.grpo.seed,
        )


def publish(run: TrainRun) -> None:
    """The selected checkpoint as a policy folder (weights, config, card, metrics) named by its
    content, a zip of it, and an entry in the pickers (:func:`~.picker.add_trained`).

    A stopped run before its first validation has no checkpoint-best yet: its last batch is it."""
    assert run.folder is not None  # made by _claimed
    best, last = run.folder / "checkpoint-best", run.folder / "checkpoint-last"
    if not (best / "model.safetensors").exists():
        best.mkdir(exist_ok=True)
        for name in ("model.safetensors", "config.json"):
            shutil.copy(last / name, best / name)
    key = digest_of(file_digest(best / "model.safetensors"), (run.folder / "metrics.jsonl").read_bytes())
    name = f"trained-{key[:10]}"

    def fill(folder: Path) -> None:
        write_card_with_curves(run, folder / name)
        shutil.make_archive(str(folder / name), "zip", folder, name)

    folder = content_folder("trained", key, fill)
    run.export = (folder / name, folder / f"{name}.zip")
    run.policy = name
    picker.add_trained(name, str(folder / name))


def write_card_with_curves(run: TrainRun, dest: Path) -> None:
    """The policy folder at ``dest``: weights, config, metrics and the card with its training curves.

    The curves are the PNG the card embeds (kaleido drives Chromium: seconds of CPU) for a run that
    ended on its own; a stopped run, or a server where kaleido cannot render, gets the same figure
    as an interactive page (plotly.js inside, so it opens offline) that the card links, at once.
    """
    assert run.folder is not None  # made by _claimed
    if run.status != "stopped":
        try:
            write_card(run.folder, dest, None, hardware=CARD_HARDWARE, curves=True)
            return
        except RuntimeError as err:  # no kaleido or no Chromium here: the page instead
            logger.warning("%s; the card links training_curves.html instead", err)
            shutil.rmtree(dest, ignore_errors=True)
    readme = write_card(run.folder, dest, None, hardware=CARD_HARDWARE, curves=False)
    training_curves(run.rows, run.selected).write_html(dest / CURVES_PAGE, include_plotlyjs=True)
    with readme.open("a") as fh:
        fh.write(
            f"\nTraining curves (training rollouts and held-out evaluations per rollout batch; dashed: the "
            f"selected checkpoint): [{CURVES_PAGE}]({CURVES_PAGE}), an interactive page that opens offline.\n"
        )


def follow(run: TrainRun, poll_s: float = POLL_S) -> Iterator[int]:
    """Wait for the server's training turn, then train ``run`` in a background job.

    Yields the queue position while waiting (≥ 1) and 0 while training, every ``poll_s``; closing
    it (a cancel) leaves the queue or stops the job. Raises the job's error, if any.
    """
    if run.left_s <= 0:
        raise ValueError(f"this session has used its {TRAIN_CAP_S / 60:.0f} minutes of training")
    if len(run.rows) >= run.settings.batches:
        raise ValueError(f"this run has trained all its {run.settings.batches} batches; start a new one")
    run.stop.clear()
    ticket = QUEUE.join()
    try:
        while (position := QUEUE.position(ticket)) > 0:
            if run.stop.is_set():  # Stop while queued: leave the queue
                run.status = "stopped"
                return
            run.status = "queued"
            yield position
            time.sleep(poll_s)
        job = BackgroundJob(train, run, owner=f"training #{run.run_id}")
        try:
            while not job.wait(poll_s):
                yield 0
            job.result()
        finally:
            job.cancel()
            job.wait(1.0)  # the job stops at its next forward pass; the next in line starts after
    except Cancelled:  # cancelled before the job began
        run.status = "stopped"
    except GeneratorExit:  # the client cancelled or went away
        run.status = "stopped"
        raise
    except BaseException:
        run.status = "failed"
        raise
    finally:
        QUEUE.leave(ticket)
