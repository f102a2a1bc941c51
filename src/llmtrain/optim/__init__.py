"""Optimizers and learning-rate schedules: `OptimConfig`, `build_optimizer(model, cfg, lr)`,
`param_groups(model, weight_decay)` and `lr_at(step, ...)` (a pure function of the step)."""

from llmtrain.optim.config import OptimConfig
from llmtrain.optim.optimizer import build_optimizer, param_groups
from llmtrain.optim.schedule import lr_at

__all__ = ["OptimConfig", "build_optimizer", "lr_at", "param_groups"]
