"""Export to other ecosystems: `export_hf` writes a verified Hugging Face directory through
the per-architecture mapping tables in `tables` (which also serve import)."""

from llmtrain.export.hf import export_hf
from llmtrain.export.tables import TARGETS, pick_target, to_hf

__all__ = ["TARGETS", "export_hf", "pick_target", "to_hf"]
