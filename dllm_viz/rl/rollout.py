"""GRPO rollouts: the frozen dLLM as environment, the policy as actor, answers as reward.

One rollout batch = ``prompts_per_batch`` problems × (G policy rollouts + E expert rollouts),
laid out group by group so :func:`~dllm_viz.rl.grpo.group_advantages` sees contiguous groups.
Policy rows decode with Bernoulli sampling and no fallback (paper §1.3: an empty step still
costs an NFE); expert rows (full diffusion only) decode semi-AR with Fast-dLLM thresholding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from ..engine import EngineConfig, StepRecord, decode_generation, generate
from ..strategies import build_strategy
from ..strategies.learned import LearnedPolicy
from ..tasks.answers import check_answer
from ..tasks.problem import Problem
from .config import GRPOConfig
from .rewards import get_reward_function
from .steps import PolicySteps, replay_log_probs

if TYPE_CHECKING:
    from ..backends import DLLM
    from ..policy import DiTConfidencePolicy
    from ..strategies.base import Strategy


@dataclass
class RolloutBatch:
    """A rollout batch ready for the GRPO update (rows grouped: G policy rows then E experts).

    Attributes:
        steps: per-step policy data, (N, T, ...).
        rewards: (N,) float32. correct: (N,) bool. nfe: (N,) int64.
        expert: (N,) bool, rows decoded by the expert (their log-probs use the ES mixture).
        mean_unmask_prob: mean policy probability over eligible positions of policy rows.
        texts: decoded generations (for logging a sample).
    """

    steps: PolicySteps
    rewards: torch.Tensor
    correct: torch.Tensor
    nfe: torch.Tensor
    expert: torch.Tensor
    mean_unmask_prob: float
    texts: list[str]


def _decode(
    backend: DLLM, prompts: list[str], strategy: Strategy, config: EngineConfig
) -> tuple[list[StepRecord], list[str], torch.Tensor]:
    with torch.no_grad():
        records = list(generate(backend, prompts, strategy, config))
    texts = [decode_generation(backend, row) for row in records[-1].tokens.tolist()]
    return records, texts, records[-1].nfe.cpu()


def _unmask_probs(record: StepRecord) -> torch.Tensor:
    if record.probs is None:
        raise ValueError("a policy decode step recorded no unmask probabilities")
    return record.probs


def rollout_strategy(policy: DiTConfidencePolicy, action: str = "bernoulli") -> LearnedPolicy:
    """The policy as it acts in training rollouts: its action form (the paper's independent
    Bernoulli draws by default), τ_π = β = 1."""
    return LearnedPolicy(policy, mode=action)


def evaluation_mode(action: str) -> str:
    """The test-time mode of a policy trained with ``action``: Bernoulli policies get the argmax
    fallback; the plus-one form never has an empty step and acts as it was trained."""
    return "bernoulli-argmax" if action == "bernoulli" else action


def _decode_policy(
    backend: DLLM, strategy: LearnedPolicy, prompts: list[str], engine: EngineConfig, seed: int
) -> tuple[list[StepRecord], list[str], torch.Tensor]:
    """Policy rollouts as the paper defines them: no fallback (an empty step still costs an
    NFE); token sampling as ``engine`` says."""
    config = EngineConfig(
        gen_length=engine.gen_length,
        block_length=engine.block_length,
        temperature=engine.temperature,
        fallback=False,
        seed=seed,
        top_k=engine.top_k,
    )
    return _decode(backend, prompts, strategy, config)


def collect_rollouts(
    backend: DLLM,
    policy: DiTConfidencePolicy,
    problems: Sequence[Problem],
    grpo: GRPOConfig,
    engine: EngineConfig,
    seed: int,
) -> RolloutBatch:
    """Decode every problem G times with the policy (and E times with the experts), score them."""
    G, E, L = grpo.num_generations, grpo.num_experts, engine.gen_length
    prompts = [p.question for p in problems for _ in range(G)]
    strategy = rollout_strategy(policy, grpo.action)
    records, texts, nfe = _decode_policy(backend, strategy, prompts, engine, seed)
    steps = PolicySteps.from_records(records, L, strategy)
    probs = torch.stack([_unmask_probs(r) for r in records])  # (T, N, L)
    eligible = torch.stack([r.eligible & r.active.unsqueeze(1) for r in records])
    mean_prob = float(probs[eligible].mean()) if bool(eligible.any()) else 0.0
    golds = [p.expected for p in problems for _ in range(G)]
    expert = torch.zeros(len(prompts), dtype=torch.bool)

    if E:
        parts, order = [steps], []
        expert_texts, expert_nfe, expert_golds = [], [], []
        for threshold in grpo.es_thresholds:
            cfg = EngineConfig(
                gen_length=L, block_length=grpo.expert_block_length(L), fallback=True, seed=seed, top_k=engine.top_k
            )
            recs, t, n = _decode(
                backend, [p.question for p in problems], build_strategy("threshold", threshold=threshold), cfg
            )
            part = PolicySteps.from_records(recs, L, strategy, expert=True)
            with torch.no_grad():
                part.old_log_prob = replay_log_probs(policy, part).detach()
            parts.append(part)
            expert_texts += t
            expert_nfe.append(n)
            expert_golds += [p.expected for p in problems]
        steps = PolicySteps.cat(parts)
        # Interleave: group k = its G policy rows, then its E expert rows.
        n_prompts = len(problems)
        for k in range(n_prompts):
            order += list(range(k * G, (k + 1) * G))
            order += [G * n_prompts + e * n_prompts + k for e in range(E)]
        index = torch.tensor(order)
        steps = steps.index(index)
        texts = [(texts + expert_texts)[i] for i in order]
        golds = [(golds + expert_golds)[i] for i in order]
        nfe = torch.cat([nfe, *expert_nfe])[index]
        expert = torch.cat([expert, torch.ones(E * n_prompts, dtype=torch.bool)])[index]

    correct = torch.tensor([check_answer(t, g) for t, g in zip(texts, golds, strict=True)])
    reward_fn = get_reward_function(grpo.reward)
    rewards = torch.tensor(
        reward_fn(correct.float().tolist(), nfe.tolist(), gen_length=L, alpha=grpo.alpha), dtype=torch.float32
    )
    return RolloutBatch(steps, rewards, correct, nfe, expert, mean_prob, texts)


def heldout_reward(
    backend: DLLM,
    policy: DiTConfidencePolicy,
    problems: Sequence[Problem],
    grpo: GRPOConfig,
    engine: EngineConfig,
    seed: int = 0,
    temperature: float = 1.0,
    beta: float = 1.0,
) -> dict[str, float]:
    """Mean reward, correctness and NFE of one policy decode per held-out (validation) problem.

    At τ_π = β = 1 decoded exactly like the training rollouts (Bernoulli sampling, no fallback);
    otherwise as the reports decode (:func:`evaluation_mode` at that τ_π and β, with fallback), so
    the checkpoint is chosen for the policy that ships. Always at a fixed seed, so successive
    checkpoints are compared on the same problems and random numbers: the quantity that picks the
    checkpoint to ship (the training reward is measured on the very batches the policy is being
    fitted to).
    """
    prompts = [p.question for p in problems]
    if temperature == 1.0 and beta == 1.0:
        _, texts, nfe = _decode_policy(backend, rollout_strategy(policy, grpo.action), prompts, engine, seed)
    else:
        strategy = LearnedPolicy(policy, mode=evaluation_mode(grpo.action), temperature=temperature, beta=beta)
        config = EngineConfig(
            gen_length=engine.gen_length,
            block_length=engine.block_length,
            temperature=engine.temperature,
            seed=seed,
            top_k=engine.top_k,
        )
        _, texts, nfe = _decode(backend, prompts, strategy, config)
    correct = [p.check(t) for t, p in zip(texts, problems, strict=True)]
    rewards = get_reward_function(grpo.reward)(
        [float(c) for c in correct], nfe.tolist(), gen_length=engine.gen_length, alpha=grpo.alpha
    )
    n = len(problems)
    return {
        "heldout_reward": sum(rewards) / n,
        "heldout_correct": sum(correct) / n,
        "heldout_nfe": float(nfe.float().mean()),
    }
