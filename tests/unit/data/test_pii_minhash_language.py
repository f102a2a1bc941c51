"""PII placeholders with checksums, MinHash near-duplicate detection (English words and
Chinese characters) and language tagging."""

from __future__ import annotations

import random

import numpy as np

from llmtrain.data.prepare import Document, language
from llmtrain.data.prepare.language import LanguageFilter
from llmtrain.data.prepare.minhash import NearDedup, shingles, signatures, word_hashes
from llmtrain.data.prepare.pii import RedactPII, cn_id_valid, luhn_valid, redact


def test_pii_types_and_placeholders():
    text = (
        "Mail zhang.san@example.com.cn or call +1 (415) 555-0132; 手机 13812345678 或 "
        "+86 138-1234-5678. Server 192.168.1.20, v6 2001:db8::8a2e:370:7334. "
        "Card 4111 1111 1111 1111, ID 11010519491231002X."
    )
    out, counts = redact(text)
    assert counts == {"email": 1, "phone": 3, "ipv4": 1, "ipv6": 1, "credit_card": 1, "cn_id": 1}
    for ph in ("<EMAIL>", "<PHONE>", "<IP_ADDRESS>", "<CREDIT_CARD>", "<ID_NUMBER>"):
        assert ph in out
    assert "555-0132" not in out and "1381234" not in out


def test_pii_checksums_and_lookalikes_left_alone():
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert cn_id_valid("11010519491231002X") and not cn_id_valid("110105194912310021")
    text = (
        "In 1999 we sold 12,000 units; version 3.10.2 at 12:30:45 on 2024-01-15. "
        "Card 4111 1111 1111 1112, ID 110105194912310021, std::vector and a::b, pi 3.14159."
    )
    assert redact(text) == (text, {})


def test_pii_step_counts_per_type():
    step = RedactPII()
    docs = [
        Document(text=t, id=str(i), source="t") for i, t in enumerate(["a@b.io x@y.org", "none"])
    ]
    out = list(step(docs))
    assert [d.text for d in out] == ["<EMAIL> <EMAIL>", "none"]
    assert step.stats["replaced_email"] == 2 and step.stats["documents_changed"] == 1


def test_word_hashes_ignore_case_and_punctuation():
    a, b = word_hashes("The Mill, the RIVER!"), word_hashes("the mill the river")
    np.testing.assert_array_equal(a, b)
    assert a[0] == a[2] and len(set(a.tolist())) == 3


def test_signature_similarity_tracks_jaccard():
    rng = random.Random(0)
    vocab = [f"w{i}" for i in range(5000)]
    base = [rng.choice(vocab) for _ in range(600)]
    near = list(base)
    for i in rng.sample(range(600), 6):  # 1 % of the words changed
        near[i] = "changed"
    other = [rng.choice(vocab) for _ in range(600)]
    sigs = signatures([shingles(" ".join(x), "latin") for x in (base, near, other)] + [np.empty(0, np.uint64)])  # fmt: skip
    assert (sigs[0] == sigs[1]).mean() > 0.8 and (sigs[0] == sigs[2]).mean() < 0.05
    assert (sigs[3] == 0xFFFFFFFF).all()


def _near_dedup(texts: list[str], tmp_path) -> np.ndarray:
    step = NearDedup(tmp_path / "nd", batch=3)
    list(step(Document(text=t, id=str(i), source="t") for i, t in enumerate(texts)))
    mask = step.finish()
    assert step.stats["removed_near_duplicate"] == mask.sum()
    assert any((tmp_path / "nd").iterdir())  # kept until close(): a crash can cluster again
    step.close()
    assert not any((tmp_path / "nd").iterdir())  # band files removed
    return mask


def test_near_dedup_clusters_keep_first(tmp_path):
    rng = random.Random(1)
    vocab = [f"w{i}" for i in range(5000)]
    docs = [" ".join(rng.choice(vocab) for _ in range(400)) for _ in range(6)]
    copy = docs[1].split()
    copy[10] = "edited"
    texts = [*docs, " ".join(copy), docs[1] + " tail words appended here"]
    mask = _near_dedup(texts, tmp_path)
    assert mask.tolist() == [False] * 6 + [True, True]


def test_near_dedup_chinese_characters(tmp_path):
    rng = random.Random(2)
    chars = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]
    docs = ["".join(rng.choice(chars) for _ in range(500)) + "。" for _ in range(4)]
    edited = docs[2][:100] + "改" + docs[2][101:]
    assert len(docs[2].split()) == 1  # no spaces: word shingles would see one word
    mask = _near_dedup([*docs, edited], tmp_path)
    assert mask.tolist() == [False, False, False, False, True]


def test_language_tags_and_keeps():
    step = LanguageFilter(["zh"])
    texts = [
        "这是一个用来测试语言识别的中文句子，内容很普通。",
        "This is an ordinary English sentence about rivers.",
    ]
    out = list(step(Document(text=t, id=str(i), source="t") for i, t in enumerate(texts)))
    assert [d.metadata["language"] for d in out] == ["zh"]
    assert step.stats["language_en"] == 1 and step.stats["removed_language_en_not_kept"] == 1


def test_chinese_varieties_count_as_zh_and_removals_are_counted_per_label(monkeypatch):
    # py3langid labels ~3 % of plain Mandarin Wikipedia paragraphs wuu or yue
    labels = {"a": "wuu", "b": "yue", "c": "zh", "d": "fr", "e": "fr", "f": "de"}
    monkeypatch.setattr(language, "detect_language", lambda text: labels[text])
    step = LanguageFilter(["en", "zh"])
    out = list(step(Document(text=t, id=t, source="t") for t in labels))
    assert [d.text for d in out] == ["a", "b", "c"]
    assert [d.metadata["language"] for d in out] == ["zh"] * 3
    assert out[0].metadata["language_detected"] == "wuu"
    assert step.stats["language_zh"] == 3 and step.stats["relabelled_wuu_as_zh"] == 1
    assert step.stats["removed_language_fr_not_kept"] == 2
    assert step.stats["removed_language_de_not_kept"] == 1
    raw = LanguageFilter(["zh"], aliases={})  # configurable: no aliases keeps raw labels
    assert [d.text for d in raw(Document(text=t, id=t, source="t") for t in labels)] == ["c"]


def test_language_model_released_after_cleaning_and_reloaded_on_use():
    import py3langid.langid as langid

    from llmtrain.data.prepare.language import detect_language, release_language_model

    assert detect_language("This is an ordinary English sentence about rivers.") == "en"
    assert langid.IDENTIFIER is not None  # ~60 MiB resident while cleaning
    release_language_model()
    assert langid.IDENTIFIER is None
    assert detect_language("这是一个用来测试语言识别的中文句子，内容很普通。") == "zh"
