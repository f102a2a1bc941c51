"""The tokenizer of an exported Hugging Face directory, and its check.

`save_tokenizer` writes any llmtrain tokenizer (through `tokenizer.hf_form.hf_backend`) as a
`PreTrainedTokenizerFast`: pad/unk/bos/eos by name, then the objective's ids appended after
the vocabulary (`llmtrain.objectives.base`): MASK (`mask_token`) for the encoders, MASK and
the T5 sentinels `<extra_id_i>` (`extra_special_tokens`) for T5. `check_tokenizer` reloads the
directory with `AutoTokenizer` and compares ids with ours on English, Chinese and awkward
text (whitespace runs, digits, emoji, markup), failing on any difference.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmtrain.errors import ExportError
from llmtrain.models.hf import get_target
from llmtrain.tokenizer.hf_form import hf_backend, special_names

MASK = "<|mask|>"
PROBES = (
    "The quick brown fox jumps over the lazy dog. It barked twice, then slept.",
    "语言模型从大量文本中学习，预测下一个词。北京是中华人民共和国的首都。",
    "Mixed 中英文 text: 模型 reads 2024 年的 data.\n\nNew paragraph",
    "  leading, trailing  and   inner\twhitespace\n",
    "digits 1234567890 and 3.14159, emoji 🙂🚀, accents café naïve",
    "markup <b>bold</b> & [brackets] {braces} | pipes ▁ ~tilde~",
)


def require_transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise ExportError("export needs `transformers`: pip install 'llmtrain[hf]'") from None
    return transformers


def extra_tokens(target: str, n_extra: int) -> tuple[str | None, list[str]]:
    """(mask token, sentinel tokens) naming the `n_extra` ids after the tokenizer's
    vocabulary: MASK first for the targets that name it (`Target.special`: the encoders and
    T5), then T5's sentinels."""
    special = get_target(target).special
    if n_extra <= 0 or not special:
        return None, []
    sentinels = [f"<extra_id_{i}>" for i in range(n_extra - 1)] if "sentinels" in special else []
    return MASK, sentinels


def save_tokenizer(tokenizer: Any, out: Path, vocab_size: int, target: str) -> Any:
    """Write `tokenizer` into `out` for a model of `vocab_size` ids exported as `target`."""
    tf = require_transformers()
    backend = hf_backend(tokenizer)
    V = backend.get_vocab_size(with_added_tokens=True)
    if tokenizer.vocab_size != V:
        raise ExportError(
            f"the {tokenizer.kind} tokenizer's Hugging Face form has {V} ids, ours "
            f"{tokenizer.vocab_size}; pass --no-tokenizer to export the weights only"
        )
    mask, sentinels = extra_tokens(target, vocab_size - V)
    named = ([mask] if mask else []) + sentinels
    backend.add_special_tokens(named)
    got = [backend.token_to_id(t) for t in named]
    if got != list(range(V, V + len(named))):
        raise ExportError(f"the tokenizer already holds one of {named[:2]}…; cannot name them")
    kwargs = {f"{role}_token": text for role, text in special_names(tokenizer, backend).items()}
    if mask:
        kwargs["mask_token"] = mask
    if sentinels:
        kwargs["extra_special_tokens"] = sentinels
    fast = tf.PreTrainedTokenizerFast(
        tokenizer_object=backend,
        # char, byte and SentencePiece read a special token's text as text; so must HF
        split_special_tokens=not hasattr(tokenizer, "backend"),
        **kwargs,
    )
    fast.save_pretrained(out)
    return fast


def check_tokenizer(out: Path, tokenizer: Any) -> int:
    """Reload `out` with AutoTokenizer; ExportError naming the first probe text whose ids
    differ from ours. Returns the number of texts compared."""
    hf = require_transformers().AutoTokenizer.from_pretrained(out)
    for text in PROBES:
        theirs = hf(text, add_special_tokens=False)["input_ids"]
        ours = tokenizer.encode(text)
        if theirs != ours:
            raise ExportError(
                f"the exported {tokenizer.kind} tokenizer encodes {text!r} differently from "
                f"ours ({theirs[:12]}… vs {ours[:12]}…); pass --no-tokenizer to export the "
                "weights only, and report this"
            )
    return len(PROBES)
