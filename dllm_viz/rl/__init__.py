"""GRPO for unmasking policies: rewards, group advantages, the clipped step-level loss,
expert steering, stored rollout steps and the optimiser (paper §1.5–1.7)."""

from .config import GRPOConfig
from .grpo import GRPOLossOutput, expert_mixture_log_prob, group_advantages, grpo_loss, should_skip_update
from .optim import build_optimizer, warmup_cosine
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
    "multiplicative_reward",
    "replay_log_probs",
    "should_skip_update",
    "warmup_cosine",
]
