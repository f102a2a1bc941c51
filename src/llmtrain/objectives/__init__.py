"""Training objectives, separate from models: each builds its batch from token windows and
computes its loss (a sum + a target count). `build_objective(name, ...)` picks one of
`OBJECTIVES` (clm, prefix_lm, mlm, sop, nsp, span, electra); `check_objective` rejects one the
architecture cannot train."""

from llmtrain.objectives.base import IGNORE_INDEX, Batch, Objective, token_loss
from llmtrain.objectives.clm import clm_loss
from llmtrain.objectives.config import (
    OBJECTIVES,
    ObjectiveConfig,
    build_objective,
    check_objective,
    freeze_unused_heads,
    metrics_of,
)

__all__ = [
    "IGNORE_INDEX",
    "OBJECTIVES",
    "Batch",
    "Objective",
    "ObjectiveConfig",
    "build_objective",
    "check_objective",
    "clm_loss",
    "freeze_unused_heads",
    "metrics_of",
    "token_loss",
]
