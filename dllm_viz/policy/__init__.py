"""The learned unmasking policy: model, config, safe checkpoints and its action distribution."""

from .config import PolicyConfig
from .model import DiTConfidencePolicy

__all__ = ["DiTConfidencePolicy", "PolicyConfig"]
