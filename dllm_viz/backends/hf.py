"""transformers-backed dLLM adapters.

Facts behind the adapters (loading them: :mod:`dllm_viz.backends.loading`):

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
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol, TypeGuard, runtime_checkable

import torch

from ..assets import BUILTIN_MODEL_DIR

if TYPE_CHECKING:
    from torch import nn
    from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

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
