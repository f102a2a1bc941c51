"""Training: `RunConfig` and its loader, presets, precision, and the `Trainer` loop."""

from llmtrain import callable_module

callable_module(__name__)  # `llmtrain.train(...)` is the API's `train` (`llmtrain.api`)
