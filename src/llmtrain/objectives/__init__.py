"""Training objectives, separate from models: each builds its typed `Batch` from a data
source's sample (token windows: `(x, y)`), computes its loss (a sum + a target count) and
declares its metrics and eval report. `build_objective(name, ...)` picks one of `OBJECTIVES`
(clm, prefix_lm, mlm, sop, nsp, span, electra); `check_objective` rejects one the
architecture cannot train."""

from llmtrain.objectives.base import (
    IGNORE_INDEX,
    Batch,
    DataSource,
    Objective,
    Tally,
    resolve_fused_loss,
    token_loss,
)
from llmtrain.objectives.config import (
    OBJECTIVES,
    ObjectiveConfig,
    build_objective,
    check_objective,
    freeze_unused_heads,
)

__all__ = [
    "IGNORE_INDEX",
    "OBJECTIVES",
    "Batch",
    "DataSource",
    "Objective",
    "ObjectiveConfig",
    "Tally",
    "build_objective",
    "check_objective",
    "freeze_unused_heads",
    "resolve_fused_loss",
    "token_loss",
]
