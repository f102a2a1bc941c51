"""llmtrain: from a folder of raw text to a trained, evaluated, exported language model.

The package is a library; `llmtrain.cli` and `scripts/` are thin shells over it.
"""

__version__ = "0.1.0"
