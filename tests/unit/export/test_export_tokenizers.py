"""Every tokenizer kind exports: `AutoTokenizer.from_pretrained(DIR)` gives our ids on English
and Chinese text (including characters the tokenizer never saw), the specials keep their
roles, MASK is the encoders' `mask_token` and T5's sentinels follow it; a SentencePiece model
no `tokenizers` pipeline reproduces is refused with the reason."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from llmtrain.errors import ExportError
from llmtrain.export import export_hf
from llmtrain.tokenizer import TOKENIZER_KINDS, SentencePieceTokenizer, train_tokenizer
from llmtrain.tokenizer.spm import training_lines

from .test_export_hf import BERT, CASES, randomised, tiny

transformers = pytest.importorskip("transformers")

KINDS = tuple(k for k in TOKENIZER_KINDS if k != "sentencepiece")  # (= -unigram)
TRAIN = [
    "The quick brown fox jumps over the lazy dog. It barked twice, then slept.\n" * 3,
    "Language models learn to predict the next token from a large corpus of text.\n" * 3,
    "自然语言处理是人工智能的一个重要方向。大模型在海量文本上预训练。\n" * 3,
    "北京是中华人民共和国的首都，也是全国的政治和文化中心。\n" * 3,
    "Mixed 中英文 with digits 2024 and  two spaces.\n" * 3,
] * 8
TEXTS = [
    "The lazy dog jumps over the quick fox.",
    "语言模型在海量文本上学习。",
    "Unseen words: zephyr quixotic, 未见过的汉字：鑫淼犇！",
    "mixed 模型 text  with\ttabs\nand newlines 🙂 3.14",
    "literal <|endoftext|> text",
]
SIZE = {"bpe": 400, "wordpiece": 600, "unigram": 400}  # SentencePiece: its minimum, 276+


@pytest.fixture(scope="module", params=KINDS)
def tok(request):
    return train_tokenizer(request.param, TRAIN, vocab_size=SIZE.get(request.param, 400))


def export_with(tok, tmp_path, cfg: dict):
    model = randomised(tiny(**cfg))
    res = export_hf(model, tmp_path, tokenizer=tok)
    assert res["tokenizer_texts_checked"] >= 5
    return transformers.AutoTokenizer.from_pretrained(tmp_path)


def test_encoder_tokenizer_gives_our_ids(tok, tmp_path):
    V = tok.vocab_size
    roberta = {**BERT, "type_vocab_size": 0, "hf_target": "roberta", "vocab_size": V + 1}
    hf = export_with(tok, tmp_path, roberta)
    for text in TEXTS:
        if text.startswith("literal") and tok.kind == "sentencepiece":
            continue  # documented: spm spells a special's text out; HF's Unigram/BPE read it
        assert hf(text)["input_ids"] == tok.encode(text), text
        back = hf.decode(tok.encode(text), skip_special_tokens=True)
        # (char decodes UNK as U+FFFD, HF skips it as a special)
        assert back == tok.decode(tok.encode(text)).replace("\ufffd", ""), text
    roles = (hf.pad_token_id, hf.unk_token_id, hf.bos_token_id, hf.eos_token_id)
    assert roles == (tok.pad_id, tok.unk_id, tok.bos_id, tok.eos_id)
    assert hf.mask_token == "<|mask|>" and hf.mask_token_id == V and len(hf) == V + 1


def test_t5_tokenizer_names_mask_and_sentinels(tok, tmp_path):
    V = tok.vocab_size
    hf = export_with(tok, tmp_path, {**CASES["t5_v1_1"], "vocab_size": V + 1 + 5})
    assert hf("语言模型 model")["input_ids"] == tok.encode("语言模型 model")
    assert hf.mask_token_id == V
    sentinels = [f"<extra_id_{i}>" for i in range(5)]
    assert hf.extra_special_tokens == sentinels
    assert hf.convert_tokens_to_ids(sentinels) == list(range(V + 1, V + 6))
    assert len(hf) == V + 6


def test_decoder_tokenizer_names_no_objective_ids(tmp_path):
    tok = train_tokenizer("bpe", TRAIN, vocab_size=400)
    hf = export_with(tok, tmp_path, {**CASES["gpt2"], "vocab_size": tok.vocab_size})
    assert hf.mask_token is None and len(hf) == tok.vocab_size
    assert hf.eos_token == "<|endoftext|>"


def _spm(**options) -> SentencePieceTokenizer:
    model = io.BytesIO()
    import sentencepiece as spm

    spm.SentencePieceTrainer.train(
        sentence_iterator=training_lines(TRAIN),
        model_writer=model,
        **{"vocab_size": 400, "byte_fallback": True, "minloglevel": 2, "num_threads": 1},
        **{"pad_id": 0, "unk_id": 1, "bos_id": 2, "eos_id": 3, "hard_vocab_limit": False},
        **options,
    )
    return SentencePieceTokenizer(model.getvalue())


def test_foreign_sentencepiece_normaliser_is_reproduced(tmp_path):
    """spm's defaults (nmt_nfkc, dummy prefix, whitespace squeezing) map onto tokenizers."""
    tok = _spm()
    hf = export_with(tok, tmp_path, {**CASES["gpt2"], "vocab_size": tok.vocab_size})
    for text in [*TEXTS[:4], "  ｆｕｌｌ　width  ①  "]:
        assert hf(text)["input_ids"] == tok.encode(text), text


def test_unreproducible_sentencepiece_is_refused_with_the_reason(tmp_path):
    tok = _spm(treat_whitespace_as_suffix=True)
    model = randomised(tiny(vocab_size=tok.vocab_size))
    with pytest.raises(ExportError, match="treat_whitespace_as_suffix.*--no-tokenizer"):
        export_hf(model, tmp_path, tokenizer=tok)


SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data"


@pytest.mark.corpus
@pytest.mark.skipif(not SHARED.is_dir(), reason=f"real corpora not found at {SHARED}")
@pytest.mark.parametrize("kind", KINDS)
def test_real_chinese_and_english_ids_match(kind, tmp_path):
    """Held-out Chinese Wikipedia paragraphs and WikiText-2 lines: identical ids."""
    zh_file = SHARED / "zh_wiki" / "zh_wiki_contexts.jsonl"
    zh = [json.loads(line)["text"] for line in zh_file.open(encoding="utf-8")][:400]
    en = (SHARED / "wikitext2" / "wiki.test.raw").read_text(encoding="utf-8").split("\n")[:3000]
    tok = train_tokenizer(kind, zh[:250] + en[:2000], vocab_size=6000)
    model = randomised(tiny(**{**BERT, "type_vocab_size": 0}, vocab_size=tok.vocab_size + 1))
    export_hf(model, tmp_path, tokenizer=tok)
    hf = transformers.AutoTokenizer.from_pretrained(tmp_path)
    held = zh[250:] + en[2000:]
    assert [hf(t)["input_ids"] for t in held] == [tok.encode(t) for t in held]
