"""Export to other ecosystems: `export_hf` writes a verified Hugging Face directory through
the per-architecture mapping tables in `tables` (which also serve import)."""

from llmtrain import callable_module
from llmtrain.export.hf import export_hf
from llmtrain.export.tables import TARGETS, pick_target, to_hf

callable_module(__name__)  # `llmtrain.export(...)` is the API's `export` (`llmtrain.api`)
__all__ = ["TARGETS", "export_hf", "pick_target", "to_hf"]
