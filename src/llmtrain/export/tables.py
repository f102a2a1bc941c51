"""The mapping tables, re-exported: they live in `llmtrain.models.hf_tables`, `hf_encoders`
and `hf_interop` (plain tensors, no `transformers`), so that training can import through them
(`train --init-from`) without depending on the export layer."""

from llmtrain.models.hf_interop import TARGETS, check_target, from_hf, pick_target, to_hf
from llmtrain.models.hf_tables import llama_from_hf, llama_to_hf

__all__ = [
    "TARGETS",
    "check_target",
    "from_hf",
    "llama_from_hf",
    "llama_to_hf",
    "pick_target",
    "to_hf",
]
