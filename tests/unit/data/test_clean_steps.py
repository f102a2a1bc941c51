"""Normalisation, the length filter, exact dedup and the train/val split."""

from __future__ import annotations

import numpy as np

from llmtrain.data.prepare import Document, ExactDedup, MinLength, Normalise, normalise_text
from llmtrain.data.prepare.split import assign_val, contiguous_cut, split_score


def docs(*texts: str) -> list[Document]:
    return [Document(text=t, id=str(i), source="t") for i, t in enumerate(texts)]


def test_normalise_text_rules():
    raw = "e\u0301cole  \r\nline2\rline3\t\x00\x07bell\u2028x\ufeff \n\ttab kept"
    assert normalise_text(raw) == "\u00e9cole\nline2\nline3\tbell\nx\n\ttab kept"


def test_normalise_counts_changes():
    step = Normalise()
    out = list(step(docs("a\r\nb", "plain", "x\x00y", "e\u0301")))
    assert [d.text for d in out] == ["a\nb", "plain", "xy", "\u00e9"]
    assert step.stats["changed_line_endings"] == 1
    assert step.stats["control_chars_removed"] == 1
    assert step.stats["changed_nfc"] == 1


def test_min_length_counts_reasons():
    step = MinLength(min_chars=3)
    out = list(step(docs("", " \n\t", "ab", "abc", "中文字")))
    assert [d.text for d in out] == ["abc", "中文字"]
    assert step.stats["removed_empty"] == 2 and step.stats["removed_too_short"] == 1


def test_exact_dedup_keeps_first():
    step = ExactDedup()
    out = list(step(docs("a", "b", "a", "中", "中", "a")))
    assert [d.id for d in out] == ["0", "1", "3"]
    assert step.report() == {
        "bytes_in": 10, "bytes_out": 5, "documents_in": 6, "documents_out": 3,
        "removed_exact_duplicate": 3,
    }  # fmt: skip
    assert [e["id"] for e in step.examples["exact_duplicate"]] == ["2", "4", "5"]


def test_split_score_deterministic_and_seeded():
    assert split_score("中文", 1) == split_score("中文", 1)
    assert split_score("中文", 1) != split_score("中文", 2)


def test_assign_val_fraction_and_guarantees():
    scores = np.array([split_score(f"doc {i}", 1337) for i in range(2000)], dtype=np.uint64)
    is_val = assign_val(scores, 0.1)
    assert 0.08 < is_val.mean() < 0.12
    np.testing.assert_array_equal(is_val, assign_val(scores, 0.1))
    two = np.array([2**63 + 5, 2**63 + 9], dtype=np.uint64)  # both above any small fraction
    assert assign_val(two, 0.01).tolist() == [True, False]
    low = np.array([1, 2], dtype=np.uint64)  # both below the fraction
    assert assign_val(low, 0.5).tolist() == [True, False]


def test_contiguous_cut_at_line_boundary():
    text = "".join(f"line {i:03d}\n" for i in range(100))  # 9 chars a line
    cut = contiguous_cut(text, 0.1)
    assert text[cut - 1] == "\n" and abs(cut - 0.9 * len(text)) <= 9
    assert contiguous_cut("x" * 1000, 0.1) == 900  # no newline: exact position (nanoGPT)


def test_normalise_repairs_mojibake_in_english_and_chinese():
    texts = ["Café — naïve, München und Köln", "中文维基百科是一个自由的百科全书。"]
    broken = [texts[0].encode("utf-8").decode("cp1252")]
    broken += [t.encode("utf-8").decode("latin-1") for t in texts]
    step = Normalise()
    out = [d.text for d in step(docs(*broken, *texts))]
    assert out == [texts[0], *texts, *texts]  # repaired; clean text untouched
    assert step.stats["fixed_mojibake"] == 3


def test_normalise_can_keep_mojibake():
    broken = "doesnâ€™t"
    assert normalise_text(broken) == "doesn’t"
    assert normalise_text(broken, fix_encoding=False) == broken
