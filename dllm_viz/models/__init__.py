"""Native implementations of the dLLMs the project supports, loading their official checkpoints.

``NATIVE_MODELS`` maps a ``config.json`` ``model_type`` (lower-cased) to (config class, model
class); :func:`dllm_viz.backends.load_backend` uses them instead of the checkpoint's own code.
"""

from .cache import PrefixKVCache
from .dream import DreamConfig, DreamForMaskedDiffusion
from .llada import LLaDAConfig, LLaDAForMaskedDiffusion

# (config class, model class) of one native model.
NativeClasses = tuple[
    type[LLaDAConfig] | type[DreamConfig], type[LLaDAForMaskedDiffusion] | type[DreamForMaskedDiffusion]
]

NATIVE_MODELS: dict[str, NativeClasses] = {
    "llada": (LLaDAConfig, LLaDAForMaskedDiffusion),
    "dream": (DreamConfig, DreamForMaskedDiffusion),
}

__all__ = [
    "NATIVE_MODELS",
    "NativeClasses",
    "DreamConfig",
    "DreamForMaskedDiffusion",
    "LLaDAConfig",
    "LLaDAForMaskedDiffusion",
    "PrefixKVCache",
]
