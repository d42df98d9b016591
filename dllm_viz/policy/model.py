"""The DiT confidence policy π_φ(c, m, t) → unmask logits b (paper §2; apple/ml-rl-dllm ``dit_confidence``).

A one-block, DiT-style transformer over generation positions. The token stream is the dLLM's
per-position confidence; mask state and time enter only through adaLN conditioning. About
331k parameters, so it costs nothing next to the dLLM it schedules.

Example:
    >>> import torch
    >>> policy = DiTConfidencePolicy(PolicyConfig())
    >>> sum(p.numel() for p in policy.parameters())
    331265
    >>> conf, masked, t = torch.rand(2, 16), torch.ones(2, 16, dtype=torch.bool), torch.zeros(2)
    >>> policy(conf, masked, t).shape
    torch.Size([2, 16])
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import PyTorchModelHubMixin, hf_hub_download
from huggingface_hub.errors import EntryNotFoundError
from torch import nn

from .checkpoint import CONFIG_NAME, WEIGHTS_NAME, check_policy_dir, load_safetensors_state
from .config import PolicyConfig
from .layers import DiTBlock, rope_tables, timestep_embedding

HEADER_SLACK_BYTES = 1024 * 1024
logger = logging.getLogger(__name__)


class DiTConfidencePolicy(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="dllm-viz",
    tags=["dllm-viz", "unmasking-policy", "masked-diffusion"],
):
    """Per-position unmask logits from confidences, mask indicator and time.

    Forward pass (d = ``hidden_size``):
        cond = Emb_mask[m] + MLP_t(sincos(t))        (B, L, d), MLP_t = Linear-SiLU-Linear
        x    = Linear(p → d)(c)                      (B, L, d)
        x    = DiTBlock(x, cond) × num_blocks        bidirectional, RoPE, adaLN
        b    = Linear(d → 1)(LayerNorm(x))           (B, L)

    Smart init zeroes every adaLN projection and sets the output bias to ``smart_init``.
    All other weights keep PyTorch's default init. The module runs in float32; inputs are
    cast to its dtype.

    Save/load goes through ``PyTorchModelHubMixin`` (``save_pretrained``, ``from_pretrained``,
    ``push_to_hub``) as ``model.safetensors`` + ``config.json`` (without config.json the
    default config is assumed, and strict loading catches a mismatch). Loading never unpickles: a
    directory holding only a pickle checkpoint, a non-safetensors file and a file larger
    than the config can need all raise ``ValueError``.
    """

    def __init__(self, config: PolicyConfig | dict | None = None) -> None:
        super().__init__()
        if config is None:
            config = PolicyConfig()
        elif isinstance(config, dict):  # from_pretrained hands config.json over as a dict
            config = PolicyConfig.from_dict(config)
        elif not isinstance(config, PolicyConfig):
            raise TypeError(f"`config` must be a PolicyConfig or dict, got {type(config).__name__}")
        self.config = config
        self._hub_mixin_config = config  # what save_pretrained writes as config.json
        d = config.hidden_size
        self.conf_proj = nn.Linear(config.input_size, d)
        self.mask_embed = nn.Embedding(2, d)
        self.time_mlp = nn.Sequential(nn.Linear(config.time_embed_dim, d), nn.SiLU(), nn.Linear(d, d))
        self.blocks = nn.ModuleList(DiTBlock(d, config.num_heads, config.ffn_size) for _ in range(config.num_blocks))
        self.final_norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, 1)
        self._smart_init()

    def _smart_init(self) -> None:
        for module in self.modules():  # the blocks, typed (iterating the ModuleList yields plain Modules)
            if isinstance(module, DiTBlock):
                nn.init.zeros_(module.ada_ln.weight)
                nn.init.zeros_(module.ada_ln.bias)
        if self.config.smart_init is not None:
            nn.init.constant_(self.head.bias, self.config.smart_init)

    def forward(self, confidence: torch.Tensor, masked: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        """Unmask logits for every generation position.

        Args:
            confidence: (B, L) max-prob, or (B, L, n) per-position inputs, n = ``config.input_size``
                (the top-p probabilities, then the entropy when ``config.entropy_input``), for all
                generation positions, committed ones included.
            masked: (B, L) bool/int, 1 where the position is still masked (whole buffer, not
                only the current block: the policy is full-context).
            time: (B,) float, NFE used so far / L (rises from 0).

        Returns:
            (B, L) float32 logits b; the unmask probability is ``sigmoid(b / τ_π)``.
        """
        if confidence.dim() == 2:
            confidence = confidence.unsqueeze(-1)
        size = self.config.input_size
        if confidence.dim() != 3 or confidence.shape[-1] != size:
            raise ValueError(
                f"`confidence` has shape {tuple(confidence.shape)}; expected "
                f"{'(B, L) or ' if size == 1 else ''}(B, L, {size}) for top_p={self.config.top_p}"
                f"{' plus the entropy' if self.config.entropy_input else ''}"
            )
        batch, length, _ = confidence.shape
        if tuple(masked.shape) != (batch, length) or tuple(time.shape) != (batch,):
            raise ValueError(
                f"`masked` {tuple(masked.shape)} must be ({batch}, {length}) and `time` "
                f"{tuple(time.shape)} must be ({batch},)"
            )
        dtype = self.head.weight.dtype
        t_feat = timestep_embedding(time, self.config.time_embed_dim, self.config.time_period)
        cond = self.mask_embed(masked.long()) + self.time_mlp(t_feat.to(dtype))[:, None, :]
        x = self.conf_proj(confidence.to(dtype))
        cos, sin = rope_tables(length, self.config.hidden_size // self.config.num_heads, x.device)
        for block in self.blocks:
            x = block(x, cond, cos.to(dtype), sin.to(dtype))
        return self.head(self.final_norm(x)).squeeze(-1)

    def weight_budget_bytes(self) -> int:
        """Largest checkpoint file this config can need: fp64 worst case plus header room."""
        return 8 * sum(p.numel() for p in self.parameters()) + HEADER_SLACK_BYTES

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any) -> DiTConfidencePolicy:
        """Load from a local directory or a hub repo id; refuses pickles (see class docstring)."""
        source = str(pretrained_model_name_or_path)
        if os.path.isdir(source):
            check_policy_dir(source)
        elif os.path.isabs(source) or source.startswith((".", "~")) or os.path.exists(source):
            raise FileNotFoundError(f"policy directory {source!r} does not exist (or is a file)")
        return super().from_pretrained(source, **kwargs)

    @classmethod
    def _from_pretrained(
        cls,
        *,
        model_id: str,
        revision: str | None,
        cache_dir: str | Path | None,
        force_download: bool,
        local_files_only: bool,
        token: str | bool | None,
        map_location: str = "cpu",
        strict: bool = True,
        proxies: dict | None = None,  # passed by huggingface_hub < 1.0 only
        resume_download: bool | None = None,  # passed by huggingface_hub < 1.0 only, ignored
        **model_kwargs: Any,
    ) -> DiTConfidencePolicy:
        """Build from config, then load checked safetensors weights (never a pickle fallback)."""
        assumed = "config" not in model_kwargs
        if assumed:  # weights uploaded without config.json: try the released architecture
            logger.info("no %s for policy %r; assuming the default PolicyConfig", CONFIG_NAME, model_id)
            model_kwargs["config"] = PolicyConfig()
        config = model_kwargs["config"]
        config = PolicyConfig.from_dict(config) if isinstance(config, dict) else config  # bounds checked here
        if not isinstance(config, PolicyConfig):
            raise TypeError(f"policy config must be a JSON object, got {type(config).__name__}")
        budget = 8 * config.num_parameters() + HEADER_SLACK_BYTES  # = weight_budget_bytes, before building
        if os.path.isdir(model_id):
            weights = os.path.join(model_id, WEIGHTS_NAME)
        else:
            extra: dict[str, Any] = {"proxies": proxies} if proxies is not None else {}
            try:
                weights = hf_hub_download(
                    repo_id=model_id,
                    filename=WEIGHTS_NAME,
                    revision=revision,
                    cache_dir=cache_dir,
                    force_download=force_download,
                    token=token,
                    local_files_only=local_files_only,
                    **extra,
                )
            except EntryNotFoundError as err:  # the mixin would fall back to a pickle here
                raise ValueError(
                    f"hub repo {model_id!r} has no {WEIGHTS_NAME}; pickle checkpoints are refused"
                ) from err
        state = load_safetensors_state(weights, max_bytes=budget)
        model = cls(**{**model_kwargs, "config": config})
        try:
            model.load_state_dict(state, strict=strict)
        except RuntimeError as err:
            hint = f" (no {CONFIG_NAME}, so the default config was assumed)" if assumed else ""
            raise ValueError(f"weights in {weights!r} do not fit {model.config}{hint}: {err}") from err
        return model.to(map_location).eval()
