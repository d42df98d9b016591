"""Loading a dLLM backend from a folder or Hub id: the native LLaDA/Dream classes or transformers.

:func:`load_backend` checks the name and options, reads ``model_type`` from config.json (as JSON,
no remote code), then loads the project's own class where there is one (:mod:`dllm_viz.models`)
and transformers' Auto classes otherwise; remote code only for trusted models. Every failure is a
:class:`~dllm_viz.backends.hf.ModelLoadError` naming the model and the reason.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, cast

import torch

from .hf import (
    BUILTIN_MODEL,
    TRUSTED_REMOTE_CODE,
    DreamBackend,
    LLaDABackend,
    MaskedLMBackend,
    ModelLoadError,
    UnsupportedConfig,
    default_device_dtype,
)

if TYPE_CHECKING:
    from torch import nn
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from ..models import NativeClasses

logger = logging.getLogger(__name__)

_BACKENDS_BY_MODEL_TYPE = {"llada": LLaDABackend, "dream": DreamBackend}


MODEL_CODES = ("auto", "native", "remote")


def load_backend(
    model: str = BUILTIN_MODEL,
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    trust_remote_code: bool = False,
    local_files_only: bool | None = None,
    model_code: str = "auto",
) -> MaskedLMBackend:
    """Load a dLLM from a local folder or a Hub id.

    LLaDA and Dream (``model_type`` "llada" / "Dream" in ``config.json``) load through the
    project's own classes (:mod:`dllm_viz.models`) from their official safetensors, with no
    remote code; any other model through transformers' Auto classes.

    Args:
        model: folder or Hub id (default: the built-in tiny model in ``assets/tiny-dllm``).
        device, dtype: default cuda+bf16 when available, else cpu+fp32.
        trust_remote_code: needed for remote-code models outside :data:`TRUSTED_REMOTE_CODE`.
        local_files_only: default True for local folders; Hub ids honour ``HF_HUB_OFFLINE``.
        model_code: ``"auto"`` (native class when there is one, else transformers; a LLaDA/Dream
            configuration the native class does not implement falls back to the checkpoint's own
            code when that is trusted), ``"native"`` (fail unless the native class loads it) or
            ``"remote"`` (the checkpoint's own modelling code even for LLaDA/Dream, e.g. to compare
            against it; needs trust as above).

    Raises:
        ModelLoadError: offline, unknown id, missing files, untrusted remote code, unsupported
            configuration, wrong transformers version. The message names the model and the reason.

    Example:
        >>> backend = load_backend()  # doctest: +SKIP
        >>> backend.decode(backend.encode_prompt("Tom has 3 apples."))  # doctest: +SKIP
    """
    device, dtype, local_only = _checked_options(model, device, dtype, local_files_only, model_code)
    trusted = trust_remote_code or model in TRUSTED_REMOTE_CODE
    model_type = _model_type(model, local_only)
    native = None if model_code == "remote" else _native_classes(model_type)
    if model_code == "native" and native is None:
        raise ModelLoadError(f"model {model!r} has model_type {model_type!r}, which has no native class "
                             "(native: llada, Dream); use model_code='auto'")  # fmt: skip
    backend_cls = _BACKENDS_BY_MODEL_TYPE.get(model_type.lower(), MaskedLMBackend)
    if native is not None:
        try:
            net, tokenizer = _load_native(model, native, model_type, dtype, device, local_only)
        except UnsupportedConfig as err:
            if model_code == "native" or not trusted:
                raise
            # A configuration the native class does not implement: its own code is the fallback.
            logger.warning("%s; loading it with its own modelling code instead", err)
            native = None
    if native is None:
        net, tokenizer = _load_with_transformers(model, backend_cls, dtype, local_only, trusted)
    code = "native" if native else "transformers"
    logger.info("loaded %s (%s, %s code) on %s as %s", model, backend_cls.__name__, code, device, dtype)
    # PreTrainedModel.to is wrapped with functools.wraps, whose typeshed type does not bind self;
    # typed as nn.Module.to it is the same call, and it returns the model itself.
    net = cast("PreTrainedModel", cast("nn.Module", net).to(device))
    return backend_cls(net, tokenizer, name=model)


def _checked_options(
    model: str,
    device: str | torch.device | None,
    dtype: torch.dtype | None,
    local_files_only: bool | None,
    model_code: str,
) -> tuple[torch.device, torch.dtype, bool]:
    """(device, dtype, local files only) for ``model``, after checking the name and ``model_code``."""
    if model_code not in MODEL_CODES:
        raise ValueError(f"model_code ({model_code!r}) must be one of {', '.join(MODEL_CODES)}")
    default_device, default_dtype = default_device_dtype()
    device = torch.device(device) if device is not None else default_device
    dtype = dtype or (default_dtype if device.type == "cuda" else torch.float32)
    is_local = Path(model).is_dir()
    if not is_local and (model.startswith((".", "/")) or model.count("/") != 1):
        raise ModelLoadError(f"model {model!r}: no such folder, and it is not a Hub id of the form 'owner/name'")
    if is_local and not (Path(model) / "config.json").is_file():
        raise ModelLoadError(f"model {model!r} could not be loaded: the folder has no config.json")
    return device, dtype, is_local if local_files_only is None else local_files_only


def _unreachable(model: str, err: OSError) -> ModelLoadError:
    reason = "the Hugging Face Hub is unreachable (offline?) and it is not in the local cache"
    if "is not a local folder and is not a valid model identifier" in str(err):
        reason = "no such model on the Hub (or it is private/gated and you are not logged in)"
    return ModelLoadError(f"model {model!r} could not be loaded: {reason} ({type(err).__name__})")


def _model_type(model: str, local_only: bool) -> str:
    """``model_type`` from config.json, read as JSON (no config class, no remote code)."""
    from transformers import PretrainedConfig

    try:
        config, _ = PretrainedConfig.get_config_dict(model, local_files_only=local_only)
    except OSError as err:
        raise _unreachable(model, err) from err
    except ValueError as err:
        raise ModelLoadError(f"model {model!r}: {err}") from err
    return str(config.get("model_type", ""))


def _native_classes(model_type: str) -> NativeClasses | None:
    from ..models import NATIVE_MODELS

    return NATIVE_MODELS.get(model_type.lower())


def _load_native(
    model: str, classes: NativeClasses, model_type: str, dtype: torch.dtype, device: torch.device, local_only: bool
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The project's own model class, loaded straight onto ``device`` shard by shard after a check
    that it fits there (:mod:`dllm_viz.models.loading`), and a tokenizer that needs no remote code."""
    from ..models import loading

    config_cls, model_cls = classes
    try:
        config = config_cls.from_pretrained(model, local_files_only=local_only)
        try:
            config.check_supported()
        except ValueError as err:
            raise UnsupportedConfig(f"model {model!r} could not be loaded natively: {err}") from err
        skeleton = loading.empty_model(model_cls, config, dtype)
        # Before any weight is downloaded or read: an 8B model on a 16 GB card fails here, by name.
        loading.check_fits(model, loading.weight_bytes(skeleton), dtype, device)
        net = loading.load_into(skeleton, loading.resolve_checkpoint(model, local_only), device)
        tokenizer = _native_tokenizer(model, model_type, local_only)
    except loading.InsufficientMemory as err:
        raise ModelLoadError(str(err)) from err
    except (OSError, ValueError) as err:  # config.json was readable (see _model_type): a file is missing or bad
        raise ModelLoadError(f"model {model!r} could not be loaded: {err}") from err
    return net, tokenizer


def _native_tokenizer(model: str, model_type: str, local_only: bool) -> PreTrainedTokenizerBase:
    """LLaDA's hub tokenizer is a plain fast tokenizer; Dream's names its own class
    (``DreamTokenizer``, Qwen2's byte-level BPE), so without remote code it loads as Qwen2's."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast, Qwen2TokenizerFast
    from transformers.utils import logging as transformers_logging

    # transformers warns that it does not know the model type, or that the class differs from the
    # one tokenizer_config.json names; both are expected on this path.
    verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()
    try:
        try:
            with warnings.catch_warnings():  # transformers 5 reads the config generically and warns on rope_scaling
                warnings.simplefilter("ignore", FutureWarning)
                return AutoTokenizer.from_pretrained(model, local_files_only=local_only, trust_remote_code=False)
        except ValueError as err:
            if "trust_remote_code" not in str(err) and "does not exist or is not currently imported" not in str(err):
                raise
        fallback = Qwen2TokenizerFast if model_type.lower() == "dream" else PreTrainedTokenizerFast
        return fallback.from_pretrained(model, local_files_only=local_only)
    finally:
        transformers_logging.set_verbosity(verbosity)


def _load_with_transformers(
    model: str, backend_cls: type[MaskedLMBackend], dtype: torch.dtype, local_only: bool, trusted: bool
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    import transformers
    from transformers import AutoConfig, AutoTokenizer

    kwargs = dict(local_files_only=local_only, trust_remote_code=trusted)
    try:
        config = AutoConfig.from_pretrained(model, **kwargs)
    except ValueError as err:
        if "trust_remote_code" in str(err):
            raise ModelLoadError(
                f"model {model!r} ships its own modelling code and is not on the allow-list "
                f"({', '.join(sorted(TRUSTED_REMOTE_CODE))}); pass trust_remote_code=True "
                "(the CLIs and app.py: --trust-remote-code) only if you have read that code"
            ) from err
        raise ModelLoadError(f"model {model!r}: {err}") from err
    except OSError as err:
        raise _unreachable(model, err) from err
    auto = getattr(transformers, backend_cls.auto_class)
    try:
        tokenizer = AutoTokenizer.from_pretrained(model, **kwargs)
        net = auto.from_pretrained(model, config=config, dtype=dtype, **kwargs)
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"model {model!r} could not be loaded: {err}") from err
    except (AttributeError, KeyError) as err:
        raise ModelLoadError(
            f"model {model!r} failed inside its modelling code ({type(err).__name__}: {err}); the LLaDA and "
            f"Dream remote code needs transformers>=4.57,<5 and this environment has {transformers.__version__} "
            "(the native classes, model_code='auto', do not)"
        ) from err
    return net, tokenizer
