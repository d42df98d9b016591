"""Backends: the environment's physics. Tokens in, per-position logits out.

``DLLM`` is the protocol the engine relies on; ``load_backend`` picks the right adapter for a
local folder or Hub id (the built-in tiny model, LLaDA, Dream, or any bidirectional masked LM).
"""

from .hf import (
    BUILTIN_MODEL,
    DLLM,
    KNOWN_MODELS,
    TRUSTED_REMOTE_CODE,
    DreamBackend,
    KVCacheDLLM,
    LLaDABackend,
    MaskedLMBackend,
    ModelLoadError,
)
from .loading import load_backend

__all__ = [
    "BUILTIN_MODEL",
    "DLLM",
    "KVCacheDLLM",
    "KNOWN_MODELS",
    "TRUSTED_REMOTE_CODE",
    "DreamBackend",
    "LLaDABackend",
    "MaskedLMBackend",
    "ModelLoadError",
    "load_backend",
]
