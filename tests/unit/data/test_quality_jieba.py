"""`zh_words = "jieba"`: Chinese words from jieba with FineWeb-2's Mandarin thresholds."""

from __future__ import annotations

import json
import sys

import pytest

from llmtrain.data.prepare import Document
from llmtrain.data.prepare.config import PrepareConfig
from llmtrain.data.prepare.quality import GopherQuality, quality_steps
from llmtrain.data.prepare.textstats import words
from llmtrain.errors import ConfigError

from .conftest import SHARED_DATA, needs_corpus

pytest.importorskip("jieba")  # the zh extra, part of dev

ZH = "我们在北京大学学习自然语言处理，这是一门有趣的课程。"


def test_jieba_words_are_segmented_words_not_characters():
    assert words(ZH, "jieba")[:4] == ["我们", "在", "北京大学", "学习"]
    assert len(words(ZH)) == len(ZH)  # "chars": one token per character
    assert "，" in words(ZH, "jieba") and " " not in words("北京 大学", "jieba")


def test_jieba_mode_uses_fineweb2_stop_words():
    # "由" and "而" are FineWeb-2 Mandarin stop words (jieba tokens), not per-character ones
    text = "北京大学举办语言学会议由各地学者参加讨论中国文化研究成果丰富而深远。" * 4
    chars, segmented = GopherQuality(), GopherQuality("jieba")
    assert list(chars([Document(text=text, id="0", source="t")])) == []
    assert chars.stats["removed_too_few_stop_words"] == 1
    assert len(list(segmented([Document(text=text, id="0", source="t")]))) == 1
    assert segmented.thresholds["jieba"].max_mean_word_length == 5


def test_web_chain_with_jieba_keeps_a_clean_paragraph_and_drops_a_list():
    para = (
        "北京大学创办于一八九八年，是中国近代第一所国立综合性大学。\n"
        "学校在人文、社会科学和自然科学等领域都有很强的研究力量。\n"
        "他的老师曾在这里讲授语言学，并出版了多部被广泛引用的著作。\n"
        "每年秋天，来自全国各地的新生在校园里开始他们的学习生活。\n"
        "图书馆收藏了大量古籍善本，也为研究者提供了丰富的电子资源。\n"
        "校园中的湖泊和古建筑吸引了许多游客前来参观和拍照留念。\n"
    )
    keywords = "\n".join(["北京 大学 语言"] * 40)
    docs = (Document(text=t, id=str(i), source="t") for i, t in enumerate([para, keywords]))
    for step in quality_steps("web", zh_words="jieba"):
        docs = step(docs)
    assert [d.id for d in docs] == ["0"]


def test_missing_jieba_is_a_config_error_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "jieba", None)  # import jieba -> ImportError
    with pytest.raises(ConfigError, match=r"llmtrain\[zh\]"):
        PrepareConfig(zh_words="jieba").validate()
    with pytest.raises(ConfigError, match="chars"):
        PrepareConfig(zh_words="pkuseg").validate()


@pytest.mark.corpus
@needs_corpus
def test_zh_wiki_with_jieba_mostly_survives():
    path = SHARED_DATA / "zh_wiki" / "zh_wiki_contexts.jsonl"
    texts = [json.loads(line)["text"] for line in path.open(encoding="utf-8")][::5]
    docs = (Document(text=t, id=str(i), source="t") for i, t in enumerate(texts))
    for step in quality_steps("web", zh_words="jieba"):
        docs = step(docs)
    # measured 84.6 % on all 3,104 paragraphs (every 5th: a Hans/Hant mix like the whole): FineWeb-2's min_alpha_words_ratio (0.735)
    # counts jieba's punctuation and digit tokens as non-alphabetic words
    assert sum(1 for _ in docs) >= 0.8 * len(texts)
