"""Generation metrics equal the libraries' own numbers for the same strings (sacrebleu,
rouge-score), English and Chinese; Chinese gets the zh BLEU tokenizer and character ROUGE;
greedy outputs are reproducible and cut at the stop string."""

from __future__ import annotations

import json

import pytest
import torch

from llmtrain.errors import DataError
from llmtrain.eval.generation_metrics import (
    is_chinese,
    read_generation_task,
    text_metrics,
)
from llmtrain.generation.outputs import generate_outputs
from llmtrain.models import ModelConfig, build_model
from llmtrain.tokenizer import ByteTokenizer

sacrebleu = pytest.importorskip("sacrebleu")
rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")

EN_OUT = ["the cat sat on the mat", "a dog barked loudly at night", "hello world"]
EN_REF = ["the cat is on the mat", "the dog barked at night", "hello world"]
ZH_OUT = ["我爱北京天安门", "今天天气很好", "语言模型"]
ZH_REF = ["我爱北京", "今天天气不错", "语言模型"]


def test_english_matches_the_libraries():
    res = text_metrics(EN_OUT, EN_REF)
    assert res["lang"] == "en" and res["n"] == 3
    assert res["bleu"] == pytest.approx(sacrebleu.corpus_bleu(EN_OUT, [EN_REF]).score)
    assert res["chrf"] == pytest.approx(sacrebleu.corpus_chrf(EN_OUT, [EN_REF]).score)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    for key in ("rouge1", "rouge2", "rougeL"):
        want = sum(scorer.score(r, o)[key].fmeasure for o, r in zip(EN_OUT, EN_REF)) / 3
        assert res[key] == pytest.approx(want)
    assert res["exact_match"] == pytest.approx(1 / 3)


def test_chinese_uses_zh_bleu_and_character_rouge():
    assert is_chinese(ZH_REF) and not is_chinese(EN_REF)
    res = text_metrics(ZH_OUT, ZH_REF)
    assert res["lang"] == "zh"
    zh_bleu = sacrebleu.corpus_bleu(ZH_OUT, [ZH_REF], tokenize="zh").score
    assert res["bleu"] == pytest.approx(zh_bleu) and zh_bleu > 0
    assert sacrebleu.corpus_bleu(ZH_OUT, [ZH_REF], tokenize="13a").score < zh_bleu
    # character ROUGE-1 by hand: 我爱北京天安门 vs 我爱北京 -> P 4/7, R 4/4; 今天天气很好 vs
    # 今天天气不错 -> 4/6 both; identical -> 1
    f = [2 * (4 / 7) / (4 / 7 + 1), 4 / 6, 1.0]
    assert res["rouge1"] == pytest.approx(sum(f) / 3)
    # rouge-score's default tokenizer keeps [a-z0-9] only: it sees no Chinese at all
    default = rouge_scorer.RougeScorer(["rouge1"]).score(ZH_REF[0], ZH_OUT[0])["rouge1"]
    assert default.fmeasure == 0.0
    assert res["exact_match"] == pytest.approx(1 / 3)


def test_generation_file_errors(tmp_path):
    p = tmp_path / "g.jsonl"
    p.write_text(json.dumps({"prompt": "a", "reference": "b"}) + "\n" + json.dumps({"prompt": "a"}))
    with pytest.raises(DataError, match=r"g.jsonl:2: missing or non-string field 'reference'"):
        read_generation_task(p)
    assert read_generation_task(p, limit=1) == [{"prompt": "a", "reference": "b"}]


def test_greedy_outputs_are_reproducible_and_cut_at_stop():
    tok = ByteTokenizer()
    torch.manual_seed(0)
    model = build_model(
        ModelConfig(n_layer=1, n_head=2, n_embd=16, block_size=32, vocab_size=tok.vocab_size)
    )
    a = generate_outputs(model, tok, ["ab", "语言"], max_new_tokens=20, quiet=True)
    assert a == generate_outputs(model, tok, ["ab", "语言"], max_new_tokens=20, quiet=True)
    assert all("\n" not in o for o in a)
    full = generate_outputs(model, tok, ["ab"], max_new_tokens=20, stop=None, quiet=True)[0]
    assert full.startswith(a[0])
    sampled = [
        generate_outputs(model, tok, ["ab"] * 2, max_new_tokens=12, temperature=1.0, quiet=True)
        for _ in range(2)
    ]
    assert sampled[0] == sampled[1]  # seeded per prompt: reproducible
    assert sampled[0][0] != sampled[0][1]  # and each prompt its own seed
