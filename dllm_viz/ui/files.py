"""Server-side files: exports and uploaded policies, named by content and kept in a bounded folder.

Naming a folder by the hash of what it holds makes a repeated export or a re-uploaded policy
reuse the same folder (and the same cached model), instead of adding one per call; the folder
keeps at most ``MAX_ENTRIES`` entries, the least recently used go first. No Gradio here.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..views import render_gif
from .session import Comparison

FILES_ENV = "DLLM_VIZ_EXPORT_DIR"
MAX_ENTRIES = 32  # exports and policies together; a download is copied to Gradio's cache at once
MAX_AGE_S = 3600
GIF_CELL_BUDGET = 64 * 512  # frames × positions drawn per GIF: 64 frames up to L = 512, fewer beyond

_LOCK = threading.Lock()


def files_dir() -> Path:
    folder = Path(os.environ.get(FILES_ENV) or Path(tempfile.gettempdir()) / "dllm-viz-exports")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _prune(keep: Path) -> None:
    """Drop entries older than ``MAX_AGE_S`` and the least recently used beyond ``MAX_ENTRIES``."""
    entries = []
    for entry in files_dir().iterdir():
        try:
            entries.append((entry.stat().st_mtime, entry))
        except OSError:
            pass
    entries.sort(reverse=True)
    cutoff = time.time() - MAX_AGE_S
    for i, (mtime, entry) in enumerate(entries):
        if entry != keep and (i >= MAX_ENTRIES or mtime < cutoff):
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)


def content_folder(kind: str, digest: str, fill: Callable[[Path], object]) -> Path:
    """The folder ``<kind>-<digest>``, made once by ``fill(folder)`` (written aside, then renamed,
    so a half-written folder is never reused), marked as recently used, with the rest pruned."""
    folder = files_dir() / f"{kind}-{digest}"
    with _LOCK:
        if not folder.is_dir():
            staging = Path(tempfile.mkdtemp(prefix=f".{kind}-", dir=files_dir()))
            try:
                fill(staging)
                staging.rename(folder)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        os.utime(folder)
        _prune(keep=folder)
    return folder


def digest_of(*chunks: bytes) -> str:
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(len(chunk).to_bytes(8, "little"))
        h.update(chunk)
    return h.hexdigest()[:20]


def export_comparison(comp: Comparison) -> tuple[Path, Path]:
    """The comparison's JSON and GIF, written once per distinct content."""
    data = json.dumps(comp.to_dict(), separators=(",", ":"), ensure_ascii=False).encode("utf-8", "replace")
    key = digest_of(data)
    length = max(t.gen_length for t in (comp.a, comp.b) if t is not None)

    def fill(folder: Path) -> None:
        (folder / f"trace-{key[:8]}.json").write_bytes(data)
        render_gif(
            [(comp.labels[0], comp.a), (comp.labels[1], comp.b)],
            folder / f"run-{key[:8]}.gif",
            max_frames=max(2, min(64, GIF_CELL_BUDGET // length)),
            verdicts=[comp.verdict(comp.a), comp.verdict(comp.b)],
        )

    folder = content_folder("run", key, fill)
    return folder / f"trace-{key[:8]}.json", folder / f"run-{key[:8]}.gif"


def file_digest(path: str | os.PathLike) -> bytes:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.digest()
