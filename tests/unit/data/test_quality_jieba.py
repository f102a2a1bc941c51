"""`zh_words = "jieba"`: Chinese words from jieba with FineWeb-2's Mandarin thresholds, the
alphabetic-word ratio measured over characters (keeps Wikipedia, drops keyword lists)."""

from __future__ import annotations

import random
import sys

import pytest

from llmtrain.data.prepare import Document
from llmtrain.data.prepare.config import PrepareConfig
from llmtrain.data.prepare.quality import GopherQuality, quality_steps, set_threshold
from llmtrain.data.prepare.textstats import words
from llmtrain.errors import ConfigError

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


# Written after a Chinese Wikipedia paragraph: glosses in brackets, enumerations, numbers.
WIKI = (
    "雅芳河（River Avon），又译埃文河、艾芬河，源于英格兰格洛斯特郡（Gloucestershire），流经威尔特郡"
    "（Wiltshire）、萨默塞特郡（Somerset），在布里斯托（Bristol）注入塞文河口。雅芳河长120公里（75英哩），"
    "流域面积2,220平方公里，是格洛斯特郡与萨默塞特郡的传统分界线。沿岸城镇有马姆斯伯里（Malmesbury）、"
    "奇彭纳姆（Chippenham）、梅尔克舍姆（Melksham）、巴斯（Bath）和凯恩舍姆（Keynsham），1724年至1727年间"
    "修建了6座船闸。"
)
# a shop's product keywords, sampled into keyword-stuffed "sentences"
GOODS = (
    "手机", "手机壳", "钢化膜", "充电器", "数据线", "耳机", "音箱", "鼠标", "键盘", "显示器", "路由器", "硬盘", "内存", "相机", "镜头",
    "支架", "电池", "台灯", "插座", "空调", "冰箱", "风扇", "电视", "平板", "手表", "手环", "背包", "雨伞", "水杯", "拖鞋",
)  # fmt: skip


def _removed(step, text: str) -> dict[str, int]:
    list(step([Document(text=text, id="0", source="t")]))
    return {k: v for k, v in step.stats.items() if k.startswith("removed_")}


def test_alphabetic_ratio_counts_characters_not_jieba_punctuation_tokens():
    # FineWeb-2's ratio over jieba tokens (0.735) drops the paragraph: each of its ，、（） and
    # numbers is a token as long as a word, so only ~60 % of the tokens hold a letter
    fineweb2 = GopherQuality("jieba")
    set_threshold([fineweb2], "gopher_quality.jieba.alpha_ratio_in_chars=false")
    set_threshold([fineweb2], "gopher_quality.jieba.min_alpha_words_ratio=0.735")
    assert _removed(fineweb2, WIKI) == {"removed_too_few_alphabetic_words": 1}
    assert _removed(GopherQuality("jieba"), WIKI) == {}  # over characters: 91 % letters
    # a keyword list punctuated into "sentences" is still dropped by that rule in both modes
    rng = random.Random(0)
    keywords = "".join("，".join(rng.sample(GOODS, 8)) + "。" for _ in range(10))
    for zh_words in ("chars", "jieba"):
        assert _removed(GopherQuality(zh_words), keywords) == {
            "removed_too_few_alphabetic_words": 1
        }
