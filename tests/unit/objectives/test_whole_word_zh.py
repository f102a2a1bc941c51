"""Chinese whole-word masking (`objective.whole_word = "jieba"`): in packed windows cut at
arbitrary points, the tokens of a multi-character Chinese word are always masked together
(with the tokenizer rule alone they are not), the masking rate stays about 15 %, the masks
are reproducible, and the config names the valid choices."""

from __future__ import annotations

import pytest
import torch

from llmtrain.config.core import config_from_dict
from llmtrain.errors import ConfigError
from llmtrain.objectives import IGNORE_INDEX, ObjectiveConfig, build_objective
from llmtrain.tokenizer import EOS_ID, train_tokenizer

pytest.importorskip("jieba")

SENTENCES = [
    "中华人民共和国成立于一九四九年。",
    "自然语言处理是人工智能的重要方向。",
    "北京是中华人民共和国的首都。",
    "他们在图书馆里学习自然语言处理。",
    "研究人员训练了一个很大的语言模型。",
]
WORD = "中华人民共和国"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tok = train_tokenizer("char", SENTENCES, vocab_size=0)
    path = tmp_path_factory.mktemp("tok")
    tok.save(path)
    g = torch.Generator().manual_seed(0)
    stream = []  # documents packed with EOS separators, as prepared shards are
    for i in torch.randint(0, len(SENTENCES), (600,), generator=g).tolist():
        stream += tok.encode(SENTENCES[i]) + [EOS_ID]
    T = 48
    starts = torch.randint(0, len(stream) - T, (64,), generator=g).tolist()  # any cut point
    x = torch.tensor([stream[s : s + T] for s in starts])
    return tok, path, x


def masked(tok, path, x, whole_word, step):
    o = build_objective("mlm", ObjectiveConfig(whole_word=whole_word), tok.vocab_size, 48, 1, path)
    return o.make_batch((x, x), step=step, micro=0).targets != IGNORE_INDEX  # (B, T)


def word_masks(tok, x, sel) -> list[list[bool]]:
    """The selection of each whole occurrence of WORD inside a window."""
    word = tok.encode(WORD)
    out = []
    for b in range(x.size(0)):
        row = x[b].tolist()
        for t in range(len(row) - len(word) + 1):
            if row[t : t + len(word)] == word:
                out.append(sel[b, t : t + len(word)].tolist())
    return out


def test_a_chinese_word_is_masked_whole(setup):
    tok, path, x = setup
    mixed_jieba = mixed_chars = 0
    for step in range(12):
        for m in word_masks(tok, x, masked(tok, path, x, "jieba", step)):
            mixed_jieba += len(set(m)) > 1
        for m in word_masks(tok, x, masked(tok, path, x, True, step)):
            mixed_chars += len(set(m)) > 1
    assert mixed_jieba == 0
    assert mixed_chars > 20  # the tokenizer rule alone masks single characters


def test_masking_rate_stays_15_percent(setup):
    tok, path, x = setup
    maskable = (x >= 4).sum() * 12
    picked = sum(int(masked(tok, path, x, "jieba", s).sum()) for s in range(12))
    assert 0.13 < picked / maskable < 0.17


def test_masks_are_reproducible(setup):
    tok, path, x = setup
    assert torch.equal(masked(tok, path, x, "jieba", 3), masked(tok, path, x, "jieba", 3))


def test_config_names_the_choices():
    assert config_from_dict(ObjectiveConfig, {"whole_word": "jieba"}).whole_word == "jieba"
    assert config_from_dict(ObjectiveConfig, {"whole_word": True}).whole_word is True
    with pytest.raises(ConfigError, match="'tokenizer' | 'jieba'"):
        config_from_dict(ObjectiveConfig, {"whole_word": "ltp"})
