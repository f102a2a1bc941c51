"""`EvalConfig`, the run config's `eval` section: benchmark tasks scored during training.

`eval.tasks` lists multiple-choice task files (any format `llmtrain.eval.tasks` reads); every
`train.eval_every` steps the trainer scores the first `eval.max_items` items of each and logs
`task_<name>/acc`, `/acc_norm`, `/chance` and the mean chance-centred `task_centered`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from llmtrain.config.core import ConfigSection
from llmtrain.errors import ConfigError
from llmtrain.eval.tasks import FORMATS


@dataclass
class EvalConfig(ConfigSection):
    _prefix = "eval"

    tasks: list[str] = field(default_factory=list)  # task files scored at every eval (decoders)
    format: str = "auto"  # auto | arc | piqa | hellaswag | mc
    max_items: int = 200  # items per task per eval: the cap keeps evals cheap
    shots: int = 0  # few-shot examples per question (seeded choice)
    batch_size: int = 32  # (context, choice) rows per forward

    def validate(self) -> None:
        if self.format not in FORMATS:
            raise ConfigError(
                f"eval.format must be one of {', '.join(FORMATS)}, got {self.format!r}"
            )
        for name in ("max_items", "batch_size"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"eval.{name} must be positive, got {getattr(self, name)}")
        if self.shots < 0:
            raise ConfigError(f"eval.shots must be >= 0, got {self.shots}")
