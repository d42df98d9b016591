"""The learned unmasking strategy: a trained :class:`~dllm_viz.policy.DiTConfidencePolicy` as a
:class:`~dllm_viz.strategies.base.Strategy` (Jazbec, Olausson et al., arXiv 2512.09106).

Each step the policy reads the dLLM's confidences at every generation position, the mask
state of the whole buffer (full context) and the time t = NFE used / L, and outputs one
Bernoulli probability per position; only eligible positions (masked, current block) can be
unmasked. Unlike the heuristics it also returns the probabilities and the step's
log-likelihood, which GRPO needs (paper §1.3).

Example:
    >>> from dllm_viz.policy import DiTConfidencePolicy
    >>> strategy = LearnedPolicy(DiTConfidencePolicy(), mode="bernoulli-argmax", temperature=0.5)
    >>> strategy.params()["mode"]
    'bernoulli-argmax'
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch

from ..features import Features
from ..policy.config import PolicyConfig
from ..policy.model import DiTConfidencePolicy
from ..policy.sampling import (
    argmax_fallback,
    bernoulli_log_prob,
    dpls_log_prob,
    plus_one_log_prob,
    sample_bernoulli,
    sample_dpls,
    sample_plus_one,
    unmask_probs,
)
from .base import Decision, DecodeState
from .schema import param

SAMPLING_MODES = ("auto", "bernoulli", "bernoulli-argmax", "bernoulli-plus-one", "dpls")
SOURCE_KEY = "policy_source"  # where a trace records the folder, shipped name or hub id a policy came from


@dataclass(frozen=True)
class LearnedPolicyConfig:
    """How the policy's output becomes an action (paper §1.3, §1.4, §1.8).

    Attributes:
        mode: ``"auto"`` (the test-time form of the action the policy was trained with:
            ``bernoulli-argmax`` or ``bernoulli-plus-one``; resolved when the strategy is built),
            ``"bernoulli"`` (training: independent draws, an empty step is allowed and
            still costs an NFE), ``"bernoulli-argmax"`` (evaluation: as bernoulli, but a row
            that unmasks nothing unmasks its most probable eligible position),
            ``"bernoulli-plus-one"`` (independent draws plus exactly one more position drawn from
            ``softmax(b/τ_π)`` over the rest: "every certain token and one uncertain one", in
            training and evaluation alike; :func:`~dllm_viz.policy.sampling.sample_plus_one`) or
            ``"dpls"`` (Dynamic Plackett–Luce, appendix E; always unmasks ≥ 1).
        temperature: policy temperature τ_π, s = σ(b/τ_π). Training uses 1; the paper
            evaluates with 0.5 for semi-AR (BL = 32) and 1.0 for full diffusion.
        beta: probability scaling β, u ~ Ber(min(1, β·s)) (paper v4, Fig. 6), a test-time
            knob for a smoother speed/accuracy trade-off. Bernoulli modes only.
        dpls_stop_logit: utility of DPLS's STOP item (code default 0.0).
    """

    mode: str = field(
        default="auto",
        metadata=param(
            "how probabilities become commits (auto: as the policy was trained)", choices=SAMPLING_MODES, advanced=True
        ),
    )
    temperature: float = field(
        default=1.0,
        metadata=param(
            "policy temperature; the paper: 0.5 semi-AR, 1.0 full diffusion", low=0.05, high=5, symbol="τ_π"
        ),
    )
    beta: float = field(
        default=1.0,
        metadata=param("scales the unmask probabilities: larger commits more per step", low=0.05, high=10, symbol="β"),
    )
    dpls_stop_logit: float = field(default=0.0, metadata=param("utility of DPLS's STOP item", advanced=True))

    def __post_init__(self) -> None:
        if self.mode not in SAMPLING_MODES:
            raise ValueError(f"unknown sampling mode {self.mode!r}; known: {', '.join(SAMPLING_MODES)}")
        for name in ("temperature", "beta"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not (value > 0 and math.isfinite(value)):
                raise ValueError(f"`{name}` ({value!r}) must be a finite number > 0")
        if self.mode == "dpls" and self.beta != 1.0:
            raise ValueError(f"`beta` ({self.beta}) only applies to Bernoulli modes; use 1.0 with dpls")
        if not math.isfinite(self.dpls_stop_logit):
            raise ValueError(f"`dpls_stop_logit` ({self.dpls_stop_logit!r}) must be finite")


@dataclass
class LearnedDecision(Decision):
    """A :class:`Decision` plus what is needed to re-score it.

    Attributes:
        pick_order: (B, L) int64 DPLS pick order (0 = forced pick, −1 = not picked), or None
            for Bernoulli modes, whose likelihood does not depend on an order.
    """

    pick_order: torch.Tensor | None = None


def policy_inputs(state: DecodeState, config: PolicyConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The policy's inputs from a decode state: (confidence (B, L, n), masked (B, L), time (B,)),
    n = ``config.input_size``.

    ``masked`` covers the whole generation buffer, not only the current block: the released
    policies are full-context (``policy_full_context: true``).
    """
    return policy_inputs_from(state.features, state.masked, state.nfe, state.gen_length, config)


def policy_inputs_from(
    features: Features, masked: torch.Tensor, nfe_used: torch.Tensor, gen_length: int, config: PolicyConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`policy_inputs` from its parts, so GRPO rebuilds them from stored steps the same way:
    the time input is the NFE used before the step / L."""
    return confidence_input(features, config), masked, nfe_used.float() / gen_length


def confidence_input(features: Features, config: PolicyConfig) -> torch.Tensor:
    """(B, L, n): the max-prob for ``top_p`` 1, else the ``top_p`` largest probabilities from
    ``topk_probs``; then the entropy in nats when ``config.entropy_input``."""
    probs = _top_probs(features, config.top_p)
    if not config.entropy_input:
        return probs
    return torch.cat([probs, features.entropy.unsqueeze(-1).to(probs.dtype)], dim=-1)


def _top_probs(features: Features, top_p: int) -> torch.Tensor:
    if top_p == 1:
        return features.confidence.unsqueeze(-1)
    available = features.topk_probs.shape[-1]
    if top_p > available:
        raise ValueError(
            f"policy needs top_p={top_p} probabilities per position but features keep only "
            f"{available}; raise EngineConfig.top_k to at least {top_p}"
        )
    return features.topk_probs[..., :top_p]


class LearnedPolicy:
    """Strategy wrapper around a policy network; stateless between steps.

    Args:
        policy: the network (kept in eval mode; decisions run without gradients).
        config: sampling settings; keyword overrides (``mode=...``) build one instead.
        source: the folder or hub id it was loaded from; recorded in :meth:`params` (as ``path``)
            so a trace can rebuild it.
    """

    name = "learned"
    caption = "a small trained network reads every position's confidence and decides which to unmask"

    def __init__(
        self,
        policy: DiTConfidencePolicy,
        config: LearnedPolicyConfig | None = None,
        source: str | os.PathLike | None = None,
        **overrides: Any,
    ) -> None:
        if config is not None and overrides:
            raise ValueError(f"pass either `config` or keyword overrides {sorted(overrides)}, not both")
        self.policy = policy
        config = config if config is not None else LearnedPolicyConfig(**overrides)
        if config.mode == "auto":
            trained = getattr(policy.config, "action", "bernoulli")
            config = replace(config, mode="bernoulli-argmax" if trained == "bernoulli" else trained)
        self.config = config
        self.source = None if source is None else str(source)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, **overrides: Any) -> LearnedPolicy:
        """Load a saved policy (safetensors only) and wrap it; overrides go to the config."""
        return cls(DiTConfidencePolicy.from_pretrained(path), source=path, **overrides)

    def validate(self, gen_length: int, block_length: int) -> None:
        """Nothing to check: the policy fits any L and BL (RoPE, no learned positions; the
        :class:`~dllm_viz.engine.EngineConfig` checks them), and whether the features keep
        ``top_p`` probabilities is checked at the first step."""

    def params(self) -> dict:
        # not "path": gradio_client takes any dict with a "path" for a file and fetches it
        where = {SOURCE_KEY: str(self.source)} if self.source is not None else {}
        return {**asdict(self.config), **where, "policy": self.policy.config.to_dict()}

    def decide(self, state: DecodeState) -> LearnedDecision:
        """Sample this step's action on the eligible positions of every row."""
        cfg, device = self.config, state.eligible.device
        conf, masked, time = policy_inputs(state, self.policy.config)
        param_device = next(self.policy.parameters()).device
        with torch.no_grad():
            logits = self.policy(conf.to(param_device), masked.to(param_device), time.to(param_device))
        logits = logits.float().to(device)  # (B, L)
        eligible = state.eligible
        if cfg.mode == "dpls":
            order = sample_dpls(logits, eligible, cfg.dpls_stop_logit, cfg.temperature, state.generator)
            z = (logits / cfg.temperature).masked_fill(~eligible, float("-inf"))
            probs = torch.where(eligible, torch.softmax(z, 1), torch.zeros_like(z)).nan_to_num(0.0)
            log_prob = dpls_log_prob(logits, order, eligible, cfg.dpls_stop_logit, cfg.temperature)
            return LearnedDecision(unmask=order >= 0, probs=probs, log_prob=log_prob, pick_order=order)
        probs = unmask_probs(logits, cfg.temperature, cfg.beta)
        probs = torch.where(eligible, probs, torch.zeros_like(probs))  # (B, L), 0 off-block
        if cfg.mode == "bernoulli-plus-one":
            scores = logits / cfg.temperature
            unmask = sample_plus_one(probs, scores, eligible, state.generator)
            return LearnedDecision(
                unmask=unmask, probs=probs, log_prob=plus_one_log_prob(probs, scores, unmask, eligible)
            )
        unmask = sample_bernoulli(probs, eligible, state.generator)
        if cfg.mode == "bernoulli-argmax":
            # log_prob stays the Bernoulli likelihood of what is committed (fallback is eval-only).
            unmask = argmax_fallback(unmask, probs, eligible)
        return LearnedDecision(unmask=unmask, probs=probs, log_prob=bernoulli_log_prob(probs, unmask, eligible))


def load_policy_network(source: str | os.PathLike, device: torch.device | str = "cpu") -> DiTConfidencePolicy:
    """A policy network from a folder or hub id (safetensors only, checked), on ``device`` in eval
    mode: what a caller that caches networks (the app, per device) hands to ``StrategySpec.build``."""
    return DiTConfidencePolicy.from_pretrained(str(source)).to(device).eval()


def policy_config_bytes(path: str | os.PathLike | None = None) -> bytes:
    """The config.json of a policy assembled from uploaded files: ``path``'s bytes once
    :func:`~dllm_viz.policy.checkpoint.read_policy_config` accepts them (size first, then JSON, keys
    and bounds, before anything is built), or without one the default architecture's, which the
    released policies use.

    Raises:
        ValueError / TypeError: what is wrong with the file.
    """
    import json

    from ..policy.checkpoint import read_policy_config

    if path is None:
        return json.dumps(PolicyConfig().to_dict()).encode()
    read_policy_config(path)
    with open(path, "rb") as handle:
        return handle.read()


POLICY_TEMPERATURE = "policy_temperature"  # τ_π's public name: `temperature` alone is the token temperature


def policy_temperature_as_field(params: Mapping[str, object], caller: str) -> dict[str, object]:
    """A learned policy's parameters as a caller names them → as :class:`LearnedPolicyConfig` does.

    Callers (the API, the app's endpoints, CLIs) name τ_π ``policy_temperature``, since
    ``temperature`` also names the token temperature (:class:`~dllm_viz.engine.EngineConfig`). The
    config field, and so a trace's ``strategy`` header, keeps the name ``temperature``. A caller's
    ``temperature`` still means τ_π, with a :class:`DeprecationWarning`.
    """
    if POLICY_TEMPERATURE in params:
        if "temperature" in params:
            raise ValueError(f"{caller}: give `{POLICY_TEMPERATURE}` (τ_π) or its old name `temperature`, not both")
        # renamed in place: the order of the parameters shows in pane titles
        return {("temperature" if k == POLICY_TEMPERATURE else k): v for k, v in params.items()}
    out = dict(params)
    if "temperature" in out:
        warnings.warn(
            f"{caller}: a policy's `temperature` is now called `{POLICY_TEMPERATURE}` (τ_π); "
            "`temperature` alone means the token temperature",
            DeprecationWarning,
            stacklevel=3,
        )
    return out
