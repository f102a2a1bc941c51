"""Training objectives, separate from models: each builds its batch and computes its loss."""

from llmtrain.objectives.clm import IGNORE_INDEX, clm_loss

__all__ = ["IGNORE_INDEX", "clm_loss"]
