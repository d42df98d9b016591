"""The one boundary where library errors become user-facing ``gr.Error`` messages.

Gradio renders a toast's message as HTML, and our messages echo values from users' files and
requests (a trace's ``version``, a model name, a policy path). So every message leaves through
:func:`public_message`: the server's own paths cut to their last part (a user's own text is
quoted as typed), length capped, HTML escaped.
"""

from __future__ import annotations

import html
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import gradio as gr
import torch

from ..backends import ModelLoadError
from .budget import Busy

logger = logging.getLogger(__name__)

# Errors whose message is written for people (argument, value, what is allowed).
USER_ERRORS = (ValueError, TypeError, ModelLoadError, FileNotFoundError, Busy)
MAX_MESSAGE_CHARS = 400  # a toast is a sentence or two; longer echoes are cut
# An absolute path ("/tmp/x/model.safetensors"), not the tail of a relative one ("assets/x", "../x").
_ABSOLUTE_PATH = re.compile(r"(?<![\w.~/-])(?:/[^/\s'\"<>()\[\]{},;:]+)+/?")
_PSEUDO_ROOTS = ("/proc", "/sys", "/dev")  # the server's own view of itself


def server_roots() -> list[str]:
    """Folders whose paths are the server's business: the package or checkout, the working
    folder, Python's prefixes, home, temp, caches, and the folders the operator configured."""
    roots = {str(Path(__file__).resolve().parents[2]), os.getcwd(), sys.prefix, sys.base_prefix}
    roots |= {str(Path.home()), tempfile.gettempdir(), *_PSEUDO_ROOTS}
    for name in ("GRADIO_TEMP_DIR", "DLLM_VIZ_EXPORT_DIR", "HF_HOME", "DLLM_VIZ_MODEL"):
        roots.add(os.environ.get(name, ""))
    roots |= set(os.environ.get("DLLM_VIZ_ALLOW_MODEL_DIRS", "").split(os.pathsep))
    return sorted({r.rstrip("/") for r in roots if r.startswith("/") and r.rstrip("/")}, key=len, reverse=True)


def _strip_server_path(match: re.Match) -> str:
    path = match.group(0)
    bare = path.rstrip("/")
    if any(bare == root or bare.startswith(root + "/") for root in server_roots()):
        return bare.rsplit("/", 1)[-1]
    return path


def shown(value: object, limit: int = 60) -> str:
    """A user's value for an error message: its repr, cut to ``limit`` characters (escaping
    happens once, in :func:`public_message`)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def public_message(text: object) -> str:
    """What a browser may see of a message: server paths → last part, at most ``MAX_MESSAGE_CHARS``,
    lone surrogates replaced, HTML escaped."""
    text = _ABSOLUTE_PATH.sub(_strip_server_path, str(text))
    text = text.encode("utf-8", "replace").decode("utf-8")
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - 1] + "…"
    return html.escape(text, quote=False)  # text inside the toast, never an attribute


@contextmanager
def user_errors(action: str) -> Iterator[None]:
    """Turn expected failures into ``gr.Error(f"{action}: {reason}")`` (made safe by
    :func:`public_message`); log anything else and show a short generic message (tracebacks
    never reach the browser)."""
    try:
        yield
    except gr.Error:
        raise
    except USER_ERRORS as err:
        raise gr.Error(public_message(f"{action}: {err}"), duration=12) from None
    except RecursionError:
        raise gr.Error(public_message(f"{action}: the input is nested too deeply"), duration=12) from None
    except torch.cuda.OutOfMemoryError:
        raise gr.Error(f"{action}: out of GPU memory; try a shorter generation", duration=12) from None
    except Exception:
        logger.exception("unexpected error while trying to %s", action)
        raise gr.Error(
            public_message(f"{action}: unexpected internal error (details are in the server log)"), duration=12
        ) from None
