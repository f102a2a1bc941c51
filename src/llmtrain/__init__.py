"""llmtrain: from a folder of raw text to a trained, evaluated, exported language model.

The package is a library; `llmtrain.cli` and `scripts/` are thin shells over it. Its API,
with the CLI's names (`llmtrain.api`, imported on first use so `import llmtrain` is fast):

    import llmtrain as lt
    data = lt.prepare(["my_texts/"], out="data/mine", tokenizer="bpe", vocab_size=8192)
    run = lt.train(data, out="runs/mine", preset="gpt2-mini", max_steps=500)
    print(lt.evaluate(run))
    print(lt.generate(run, "Once upon a time", max_new_tokens=50))
    cfg = lt.plan(data, minutes=10).config  # a run config from a budget
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from llmtrain.api import Data, Run, evaluate, export, generate, load, plan, prepare, train

__all__ = ["Data", "Run", "evaluate", "export", "generate", "load", "plan", "prepare", "train"]


class _CallableModule(types.ModuleType):
    """A subpackage named like an API function (`llmtrain.train`, `llmtrain.export`):
    importing it makes it the package's attribute, so calling it calls the function."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from llmtrain import api

        return getattr(api, self.__name__.rsplit(".", 1)[1])(*args, **kwargs)


def callable_module(name: str) -> None:
    """Make subpackage `name` (e.g. "llmtrain.train") call the API function of its name."""
    sys.modules[name].__class__ = _CallableModule


def __getattr__(name: str) -> Any:
    if name in __all__:
        from llmtrain import api

        return getattr(api, name)
    raise AttributeError(f"module 'llmtrain' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*__all__, "__version__"])
