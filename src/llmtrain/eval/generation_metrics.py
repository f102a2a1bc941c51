"""Generation tasks: {"prompt", "reference"} JSONL → the model's outputs and their BLEU, chrF
(sacrebleu), ROUGE-1/2/L (rouge-score) and exact match.

Chinese (detected from the references, or `lang="zh"`) uses sacrebleu's `zh` tokenizer and
character-level ROUGE (each CJK character a token, Latin words kept whole): rouge-score's
default tokenizer keeps only [a-z0-9] and would see no Chinese at all. Entry points:
`read_generation_task`, `text_metrics` (the outputs come from
`llmtrain.generation.outputs.generate_outputs`). The metric libraries are imported
lazily (`pip install 'llmtrain[eval]'`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llmtrain.errors import ConfigError, DataError
from llmtrain.eval.tasks.readers import iter_jsonl

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af]")
_ZH_TOKEN = re.compile(
    r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af]|[a-z0-9]+"
)
GEN_FIX = 'a generation row is {"prompt": str, "reference": str}'


def read_generation_task(path: str | Path, limit: int | None = None) -> list[dict[str, str]]:
    """The rows of a {"prompt", "reference"} JSONL file; DataError naming file and line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"generation file {path} does not exist; pass a JSONL file")
    rows = []
    for n, row in iter_jsonl(path):
        if limit is not None and len(rows) >= limit:
            break
        for key in ("prompt", "reference"):
            if not isinstance(row.get(key), str):
                raise DataError(f"{path}:{n}: missing or non-string field {key!r}; {GEN_FIX}")
        rows.append({"prompt": row["prompt"], "reference": row["reference"]})
    if not rows:
        raise DataError(f"generation file {path} has no rows; add at least one")
    return rows


def is_chinese(texts: Sequence[str]) -> bool:
    """True when at least 30% of the non-space characters are CJK."""
    chars = sum(len(t) - t.count(" ") for t in texts)
    cjk = sum(len(_CJK.findall(t)) for t in texts)
    return chars > 0 and cjk / chars >= 0.3


class CharLevelTokenizer:
    """rouge-score tokenizer for Chinese: lower-cased, one token per CJK character, Latin
    words and numbers whole, punctuation dropped (as rouge-score drops it for English)."""

    def tokenize(self, text: str) -> list[str]:
        return _ZH_TOKEN.findall(text.lower())


def _libs() -> tuple[Any, Any]:
    try:
        import sacrebleu
        from rouge_score import rouge_scorer
    except ImportError:
        raise ConfigError(
            "generation metrics need sacrebleu and rouge-score: pip install 'llmtrain[eval]'"
        ) from None
    return sacrebleu, rouge_scorer


def text_metrics(
    outputs: Sequence[str], references: Sequence[str], lang: str = "auto"
) -> dict[str, Any]:
    """Corpus BLEU and chrF (sacrebleu, 0-100), mean ROUGE-1/2/L F1 (rouge-score, 0-1) and
    exact match (stripped strings) of `outputs` against one reference each."""
    if len(outputs) != len(references):
        raise ConfigError(f"{len(outputs)} outputs for {len(references)} references")
    if lang not in ("auto", "en", "zh"):
        raise ConfigError(f"lang must be auto, en or zh, got {lang!r}")
    zh = is_chinese(references) if lang == "auto" else lang == "zh"
    sacrebleu, rouge_scorer = _libs()
    refs = [list(references)]
    bleu = sacrebleu.corpus_bleu(list(outputs), refs, tokenize="zh" if zh else "13a")
    chrf = sacrebleu.corpus_chrf(list(outputs), refs)
    scorer = rouge_scorer.RougeScorer(
        ["rouge1", "rouge2", "rougeL"],
        use_stemmer=not zh,
        tokenizer=CharLevelTokenizer() if zh else None,
    )
    sums = {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    for out, ref in zip(outputs, references, strict=True):
        scores = scorer.score(ref, out)
        for key in sums:
            sums[key] += scores[key].fmeasure
    n = max(1, len(outputs))
    exact = sum(o.strip() == r.strip() for o, r in zip(outputs, references, strict=True))
    return {
        "lang": "zh" if zh else "en",
        "n": len(outputs),
        "bleu": bleu.score,
        "chrf": chrf.score,
        **{k: v / n for k, v in sums.items()},
        "exact_match": exact / n,
    }
