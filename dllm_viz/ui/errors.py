"""The one boundary where library errors become user-facing ``gr.Error`` messages."""

from __future__ import annotations

import logging
from contextlib import contextmanager

import gradio as gr
import torch

from ..backends import ModelLoadError

logger = logging.getLogger(__name__)

# Errors whose message is written for people (argument, value, what is allowed).
USER_ERRORS = (ValueError, TypeError, ModelLoadError, FileNotFoundError)


@contextmanager
def user_errors(action: str):
    """Turn expected failures into ``gr.Error(f"{action}: {reason}")``; log anything else and show
    a short generic message (tracebacks never reach the browser)."""
    try:
        yield
    except gr.Error:
        raise
    except USER_ERRORS as err:
        raise gr.Error(f"{action}: {err}", duration=12) from None
    except torch.cuda.OutOfMemoryError:
        raise gr.Error(f"{action}: out of GPU memory; try a shorter generation", duration=12) from None
    except Exception:
        logger.exception("unexpected error while trying to %s", action)
        raise gr.Error(f"{action}: unexpected internal error (details are in the server log)", duration=12) from None
