"""The mapping tables, re-exported: they live in the adapter table `llmtrain.models.hf`
(plain tensors, no `transformers`), so that training can import through them
(`train --init-from`) without depending on the export layer."""

from llmtrain.models.hf.families.llama import llama_from_hf, llama_to_hf
from llmtrain.models.hf_interop import TARGETS, check_target, from_hf, pick_target, to_hf

__all__ = [
    "TARGETS",
    "check_target",
    "from_hf",
    "llama_from_hf",
    "llama_to_hf",
    "pick_target",
    "to_hf",
]
