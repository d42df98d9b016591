"""The one boundary where library errors become user-facing ``gr.Error`` messages.

Gradio renders a toast's message as HTML, and our messages echo values from users' files and
requests (a trace's ``version``, a model name, a policy path). So every message leaves through
:func:`public_message`: server paths cut to their last part, length capped, HTML escaped.
"""

from __future__ import annotations

import html
import logging
import re
from contextlib import contextmanager

import gradio as gr
import torch

from ..backends import ModelLoadError
from .budget import Busy

logger = logging.getLogger(__name__)

# Errors whose message is written for people (argument, value, what is allowed).
USER_ERRORS = (ValueError, TypeError, ModelLoadError, FileNotFoundError, Busy)
MAX_MESSAGE_CHARS = 400  # a toast is a sentence or two; longer echoes are cut
# An absolute path with at least two parts ("/tmp/x/model.safetensors", "/proc/self/cwd").
_SERVER_PATH = re.compile(r"(?:/[^/\s'\"<>()\[\]{},;:]+){2,}/?")


def shown(value, limit: int = 60) -> str:
    """A user's value for an error message: its repr, cut to ``limit`` characters (escaping
    happens once, in :func:`public_message`)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def public_message(text) -> str:
    """What a browser may see of a message: paths → last part, at most ``MAX_MESSAGE_CHARS``,
    lone surrogates replaced, HTML escaped."""
    text = _SERVER_PATH.sub(lambda m: m.group(0).rstrip("/").rsplit("/", 1)[-1], str(text))
    text = text.encode("utf-8", "replace").decode("utf-8")
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - 1] + "…"
    return html.escape(text, quote=False)  # text inside the toast, never an attribute


@contextmanager
def user_errors(action: str):
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
