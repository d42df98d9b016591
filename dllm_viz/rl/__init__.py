"""GRPO for unmasking policies: rewards, group advantages, the clipped step-level loss,
expert steering, stored rollout steps, the optimiser and the update step (paper §1.5–1.7).
The trainer itself is :class:`dllm_viz.rl.trainer.GRPOTrainer`."""

from .config import GRPOConfig
from .grpo import (
    GRPOLossOutput,
    build_optimizer,
    expert_mixture_log_prob,
    group_advantages,
    grpo_loss,
    grpo_update,
    should_skip_update,
)
from .rewards import REWARD_FUNCTIONS, additive_reward, get_reward_function, multiplicative_reward
from .steps import PolicySteps, replay_log_probs

__all__ = [
    "GRPOConfig",
    "GRPOLossOutput",
    "PolicySteps",
    "REWARD_FUNCTIONS",
    "additive_reward",
    "build_optimizer",
    "expert_mixture_log_prob",
    "get_reward_function",
    "group_advantages",
    "grpo_loss",
    "grpo_update",
    "multiplicative_reward",
    "replay_log_probs",
    "should_skip_update",
]
