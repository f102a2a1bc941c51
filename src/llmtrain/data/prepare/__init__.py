"""The offline corpus pipeline: files → Documents → normalise → filter → dedup → split →
tokenizer → packed shards. Entry point: `prepare_corpus(inputs, out_dir, PrepareConfig(...))`;
the steps (`Reader`, `Normalise`, `MinLength`, `ExactDedup`) each count what they removed."""

from llmtrain.data.prepare.config import PrepareConfig
from llmtrain.data.prepare.dedup import ExactDedup
from llmtrain.data.prepare.documents import Document, Problems, Step
from llmtrain.data.prepare.normalise import MinLength, Normalise, normalise_text
from llmtrain.data.prepare.pipeline import prepare_corpus
from llmtrain.data.prepare.readers import BUILTIN_PREFIX, Reader, plan_inputs

__all__ = [
    "BUILTIN_PREFIX",
    "Document",
    "ExactDedup",
    "MinLength",
    "Normalise",
    "PrepareConfig",
    "Problems",
    "Reader",
    "Step",
    "normalise_text",
    "plan_inputs",
    "prepare_corpus",
]
