"""transformers-backed dLLM adapters.

Facts behind the adapters (shared/reference/hub-models.md):

* LLaDA (``GSAI-ML/LLaDA-8B-Instruct``): ``AutoModel`` with remote code, mask id 126336,
  EOS 126081, EoT 126348, no logit shift.
* Dream (``Dream-org/Dream-v0-Instruct-7B``): ``AutoModel`` with remote code, mask 151666,
  AR-initialised, so position i is predicted by the logits at i − 1 (shift right by one).
* Both break under transformers 5.x; the project pins ``transformers<5``.

Ids are read from the tokenizer/config, never hard-coded in the engine.
"""

from __future__ import annotations

import inspect
import logging
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeGuard, cast, runtime_checkable

import torch

from ..assets import BUILTIN_MODEL_DIR

if TYPE_CHECKING:
    from torch import nn
    from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

    from ..models import NativeClasses
    from ..models.cache import PrefixKVCache

logger = logging.getLogger(__name__)

BUILTIN_MODEL = str(BUILTIN_MODEL_DIR)

# Hub ids whose remote code we have read and allow without an explicit opt-in.
TRUSTED_REMOTE_CODE = frozenset(
    {
        "GSAI-ML/LLaDA-8B-Instruct",
        "GSAI-ML/LLaDA-8B-Base",
        "Dream-org/Dream-v0-Instruct-7B",
        "Dream-org/Dream-v0-Base-7B",
    }
)

KNOWN_MODELS = {
    "built-in tiny dLLM": BUILTIN_MODEL,
    "LLaDA-8B-Instruct": "GSAI-ML/LLaDA-8B-Instruct",
    "Dream-v0-Instruct-7B": "Dream-org/Dream-v0-Instruct-7B",
}


END_OF_TURN_TOKENS = ("<|eot_id|>", "<|im_end|>")


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message names the model and the reason."""


class UnsupportedConfig(ModelLoadError):
    """A LLaDA/Dream configuration the native classes do not implement (its own code may)."""


@runtime_checkable
class DLLM(Protocol):
    """What the engine needs from a diffusion LM."""

    name: str
    mask_id: int
    eos_id: int
    pad_id: int
    stop_ids: frozenset[int]
    device: torch.device
    max_length: int

    @property
    def tokenizer(self) -> object: ...  # read-only here, so any tokenizer type satisfies it

    def encode_prompt(self, prompt: str) -> list[int]: ...

    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor: ...

    def decode(self, ids: Sequence[int]) -> str: ...

    def token_strings(self, ids: Sequence[int]) -> list[str]: ...


@runtime_checkable
class KVCacheDLLM(DLLM, Protocol):
    """A :class:`DLLM` that can also decode with the prefix KV cache (``supports_kv_cache`` true).

    ``logit_shift`` is 1 when position i is scored by the logits at i − 1 (Dream), else 0; the
    cache needs it to recompute the position before a block. With ``kv_cache``, ``logits`` runs
    only the window ``input_ids[:, kv_cache.start:]`` and returns its (B, T - start, V) logits.
    """

    logit_shift: int
    supports_kv_cache: bool

    def logits(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, kv_cache: PrefixKVCache | None = None
    ) -> torch.Tensor: ...


def has_kv_cache(backend: DLLM) -> TypeGuard[KVCacheDLLM]:
    """True when ``backend`` says it supports the prefix KV cache (``supports_kv_cache``)."""
    return bool(getattr(backend, "supports_kv_cache", False))


def mask_token_id(tokenizer: PreTrainedTokenizerBase, config: PretrainedConfig, name: str) -> int:
    """The [MASK] id: the tokenizer's mask token, else the model config's ``mask_token_id``.

    LLaDA-8B's hub tokenizer defines no mask token; only its ``config.json`` carries
    ``mask_token_id`` (126336), so a backend that asked the tokenizer alone could not load it.
    When both name one and they differ, the tokenizer wins (some config classes carry a default
    ``mask_token_id`` that a custom tokenizer never used) and a warning says so.
    """
    from_tokenizer = tokenizer.mask_token_id
    from_config = getattr(config, "mask_token_id", None)
    if from_tokenizer is not None and from_config is not None and int(from_tokenizer) != int(from_config):
        logger.warning(
            "model %r: tokenizer mask id %s differs from config mask_token_id %s; using the tokenizer's",
            name,
            from_tokenizer,
            from_config,
        )
    mask = from_tokenizer if from_tokenizer is not None else from_config
    if mask is None:
        raise ModelLoadError(
            f"model {name!r}: neither its tokenizer (no mask token) nor its config (no mask_token_id) names a "
            "[MASK] token, so it cannot run masked diffusion"
        )
    return int(mask)


def default_device_dtype() -> tuple[torch.device, torch.dtype]:
    """cuda + bf16 when a GPU is present, else cpu + fp32 (bf16 is slower on CPUs)."""
    if torch.cuda.is_available():
        return torch.device("cuda"), torch.bfloat16
    return torch.device("cpu"), torch.float32


class MaskedLMBackend:
    """Any bidirectional masked LM with a mask token, e.g. the built-in tiny model or ModernBERT.

    Prompts go through the tokenizer's chat template when it has one (instruct models and
    the built-in model), otherwise they are tokenised as plain text without special tokens.
    """

    auto_class = "AutoModelForMaskedLM"
    logit_shift = 0

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, name: str) -> None:
        self.model = model.eval().requires_grad_(False)
        # The native classes take a 2-D padding mask and a prefix KV cache (dllm_viz.models); the
        # built-in ModernBERT gets the cache through a forward pass over its own modules.
        self.native = hasattr(model, "forward") and "kv_cache" in inspect.signature(model.forward).parameters
        self._window_logits: (
            Callable[[nn.Module, torch.Tensor, torch.Tensor | None, PrefixKVCache], torch.Tensor] | None
        ) = None
        if not self.native:
            from ..models import modernbert

            if modernbert.supports_cache(model):
                self._window_logits = modernbert.window_logits
        self.supports_kv_cache = self.native or self._window_logits is not None
        self.tokenizer = tokenizer
        self.name = name
        self.mask_id = mask_token_id(tokenizer, model.config, name)
        eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
        self.eos_id = int(eos) if eos is not None else self.mask_id
        self.pad_id = int(tokenizer.pad_token_id) if tokenizer.pad_token_id is not None else self.eos_id
        # End-of-turn markers end an instruct model's answer too (LLaDA's EoT, Dream's im_end).
        vocab = tokenizer.get_vocab()
        self.stop_ids = frozenset({self.eos_id} | {vocab[t] for t in END_OF_TURN_TOKENS if t in vocab})
        self.device = next(model.parameters()).device
        cfg_len = getattr(model.config, "max_position_embeddings", None)
        tok_len = getattr(tokenizer, "model_max_length", None)
        lengths = [n for n in (cfg_len, tok_len) if isinstance(n, int) and 0 < n < 10**7]
        self.max_length = min(lengths) if lengths else 4096

    def encode_prompt(self, prompt: str) -> list[int]:
        if getattr(self.tokenizer, "chat_template", None):
            text = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
            )
        else:
            text = prompt
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    @torch.inference_mode()
    def logits(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, kv_cache: PrefixKVCache | None = None
    ) -> torch.Tensor:
        """(B, T, V) logits where position i scores the token at position i.

        With ``kv_cache`` (a planned :class:`~dllm_viz.models.cache.PrefixKVCache`), only the window
        ``input_ids[:, kv_cache.start:]`` runs and the result is (B, T - start, V) for positions
        ``start…T-1`` (after a logit shift, its first entry is a placeholder the engine never reads).
        """
        if attention_mask is not None and bool(attention_mask.all()):
            attention_mask = None  # lets SDPA take its fast unmasked path
        if kv_cache is not None and self.native:
            out = self.model(
                input_ids=input_ids[:, kv_cache.start :], attention_mask=attention_mask, kv_cache=kv_cache
            ).logits
        elif kv_cache is not None:
            if self._window_logits is None:
                raise ValueError(f"model {self.name!r} has no KV cache (supports_kv_cache is false)")
            out = self._window_logits(self.model, input_ids[:, kv_cache.start :], attention_mask, kv_cache)
        else:
            out = self._forward(input_ids, attention_mask)
        if self.logit_shift:
            out = torch.cat([out[:, :1], out[:, :-1]], dim=1)
        return out

    def _forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """The model's raw (B, T, V) logits; ``attention_mask`` is None or an integer (B, T) padding mask."""
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode([int(i) for i in ids], skip_special_tokens=True)

    def token_strings(self, ids: Sequence[int]) -> list[str]:
        """Readable text per token id (for the token grid)."""
        return [self.tokenizer.decode([int(i)]) for i in ids]


class LLaDABackend(MaskedLMBackend):
    """LLaDA-8B (``model_type`` "llada"): remote-code ``AutoModel``, no logit shift."""

    auto_class = "AutoModel"


class DreamBackend(MaskedLMBackend):
    """Dream-7B (``model_type`` "Dream"): AR-initialised, logits shifted right by one.

    Dream's attention hands its mask straight to ``scaled_dot_product_attention``, which refuses
    an integer (B, T) padding mask ("Expected attn_mask dtype to be bool or float ..."). Padded
    batches therefore go in as a boolean (B, 1, 1, T) key mask with positions counted from each
    row's first real token, as Dream's ``diffusion_generate`` does (it builds the (B, 1, T, T)
    query-and-key form, whose all-False rows at padding queries give NaN there; the key-only
    form is identical at every real position and finite at the padding).
    """

    auto_class = "AutoModel"
    logit_shift = 1

    def _forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        if attention_mask is None or self.native:  # the native class takes the 2-D mask itself
            return self.model(input_ids=input_ids, attention_mask=attention_mask).logits
        keep = attention_mask.bool()  # (B, T)
        position_ids = (keep.long().cumsum(-1) - 1).clamp_min(0)
        return self.model(input_ids=input_ids, attention_mask=keep[:, None, None, :], position_ids=position_ids).logits


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
    local_only = is_local if local_files_only is None else local_files_only
    trusted = trust_remote_code or model in TRUSTED_REMOTE_CODE

    model_type = _model_type(model, local_only)
    native = None if model_code == "remote" else _native_classes(model_type)
    if model_code == "native" and native is None:
        raise ModelLoadError(
            f"model {model!r} has model_type {model_type!r}, which has no native class "
            "(native: llada, Dream); use model_code='auto'"
        )
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
    logger.info(
        "loaded %s (%s, %s code) on %s as %s",
        model,
        backend_cls.__name__,
        "native" if native else "transformers",
        device,
        dtype,
    )
    # PreTrainedModel.to is wrapped with functools.wraps, whose typeshed type does not bind self;
    # typed as nn.Module.to it is the same call, and it returns the model itself.
    net = cast("PreTrainedModel", cast("nn.Module", net).to(device))
    return backend_cls(net, tokenizer, name=model)


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
