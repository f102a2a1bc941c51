"""`SplitRule`: when the per-document hash split is used and when the contiguous one;
`contiguous_at`: a corpus cut into pieces is cut where the whole text would be."""

from __future__ import annotations

from llmtrain.data.prepare.split import SplitRule, contiguous_at, contiguous_cut

HIGH, LOW = 2**63, 1  # scores above / below any small val_fraction


def rule(*docs: tuple[int, int, str], fraction: float = 0.1) -> SplitRule:
    r = SplitRule(fraction)
    for score, chars, unit in docs:
        r.observe(score, chars, unit)
    return r


def test_one_document_or_the_pieces_of_one_file_split_contiguously():
    assert rule((HIGH, 100, "")).contiguous()
    pieces = rule((HIGH, 100, "book.txt"), (LOW, 100, "book.txt"), (HIGH + 1, 50, "book.txt"))
    assert pieces.contiguous() and pieces.val_share() == 0.4  # the hash split: 40% to val
    assert not rule((HIGH, 100, "a.txt"), *[(HIGH + i, 100, "") for i in range(1, 30)]).contiguous()


def test_forced_val_document_never_takes_far_more_than_the_fraction():
    two = rule((HIGH + 5, 1000, "a.txt"), (HIGH + 9, 1000, "b.txt"))  # none below 0.1
    assert two.is_val(0, HIGH + 5) and two.val_share() == 0.5 and two.contiguous()
    three = rule((HIGH + 5, 900, "a.txt"), (HIGH + 9, 900, "b.txt"), (HIGH + 1, 900, "c.txt"))
    assert three.val_share() == 1 / 3 and three.contiguous()
    small_forced = rule((HIGH + 5, 10_000, ""), (HIGH + 1, 150, ""))  # 1.5% forced to val
    assert small_forced.val_share() < 0.02 and not small_forced.contiguous()
    many = rule(*[(LOW if i % 10 == 0 else HIGH + i, 100, "") for i in range(100)])
    assert many.val_share() == 0.1 and not many.contiguous()


def test_rule_state_round_trips():
    r = rule((HIGH + 5, 1000, "a.txt"), (LOW, 10, "a.txt"))
    again = SplitRule.from_state(r.state())
    assert again.state() == r.state() and again.contiguous() == r.contiguous()


def test_pieces_are_cut_where_the_whole_text_is():
    text = "".join(f"line {i:03d} 第{i}行\n" for i in range(400))  # 13 characters a line
    whole = contiguous_cut(text, 0.1)
    for sizes in ([len(text)], [3000, 1000, len(text) - 4000], [1300] * 3 + [len(text) - 3900]):
        pieces, at = [], 0
        for size in sizes:
            pieces.append(text[at : at + size])
            at += size
        j, cut = contiguous_at(pieces, len(text), 0.1)
        assert sum(map(len, pieces[:j])) + cut == whole, sizes
    assert contiguous_at(["ab", "c"], 3, 0.1) == (1, 0)  # val: the whole last document
    assert contiguous_at(["x" * 10], 10, 0.5) == (0, 5)
