"""`llmtrain plan`: a run config from a budget — one dial (depth) derives the shape, the
measured speed of this machine turns the budget into tokens and steps, published scaling fits
give batch and LR, and a memory estimate picks the micro-batch."""

from llmtrain import callable_module
from llmtrain.plan.memory import MemoryEstimate, estimate_memory, fit_micro_batch
from llmtrain.plan.planner import Budget, Plan, make_plan

__all__ = ["Budget", "MemoryEstimate", "Plan", "estimate_memory", "fit_micro_batch", "make_plan"]

callable_module(__name__)  # `lt.plan(...)` stays the API function once this package is imported
