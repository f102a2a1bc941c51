"""The GPT-2 weight mapping under its first name (the adapter is `hf.families.gpt2`)."""

from llmtrain.models.hf.families.gpt2 import HF_ACTIVATION, to_hf_gpt2_state_dict

__all__ = ["HF_ACTIVATION", "to_hf_gpt2_state_dict"]
