"""Task readers: each published format read as lm-eval builds its prompts, auto-detection,
C-Eval rows, and one clear error (file, line, fix) for each kind of bad input."""

from __future__ import annotations

import json

import pytest

from llmtrain.errors import DataError
from llmtrain.eval.tasks import load_task


def write(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


ARC = {
    "id": "q1",
    "question": {
        "stem": "Which is a liquid?",
        "choices": [{"text": "ice", "label": "1"}, {"text": "water", "label": "2"}],
    },
    "answerKey": "2",
}


def test_arc_reads_numeric_labels_and_lm_eval_prompt(tmp_path):
    task = load_task(write(tmp_path / "arc.jsonl", [ARC]))
    assert task.format == "arc" and task.name == "arc"
    item = task.items[0]
    assert item.query == "Question: Which is a liquid?\nAnswer:"
    assert item.choices == ("ice", "water") and item.gold == 1 and item.delimiter == " "


def test_piqa_reads_labels_file_from_a_folder(tmp_path):
    rows = [{"goal": f"g{i}", "sol1": "a", "sol2": "b"} for i in range(3)]
    write(tmp_path / "valid.jsonl", rows)
    (tmp_path / "valid-labels.lst").write_text("1\n0\n1\n")
    task = load_task(tmp_path)
    assert task.format == "piqa" and task.name == tmp_path.name
    assert [it.gold for it in task.items] == [1, 0, 1]
    assert load_task(tmp_path / "valid.jsonl", "piqa", limit=2).items[1].gold == 0
    (tmp_path / "valid-labels.lst").write_text("1\n0\n")
    with pytest.raises(DataError, match="valid.jsonl:3: no label for this row"):
        load_task(tmp_path)
    (tmp_path / "valid-labels.lst").write_text("1\n0\n1\n0\n")
    with pytest.raises(DataError, match="3 rows but 4 labels"):
        load_task(tmp_path)
    (tmp_path / "valid-labels.lst").unlink()
    with pytest.raises(DataError, match="missing field 'label'.*labels.lst"):
        load_task(tmp_path)


def test_hellaswag_builds_the_lm_eval_context(tmp_path):
    row = {
        "activity_label": "Baking",
        "ctx_a": "A man mixes flour.",
        "ctx_b": "he",
        "ctx": "unused",
        "endings": ["bakes [title] bread.", "sings.", "runs.", "sleeps."],
        "label": "0",
    }
    item = load_task(write(tmp_path / "hs.jsonl", [row])).items[0]
    assert item.query == "Baking: A man mixes flour. He"
    assert item.choices[0] == "bakes. bread." and item.gold == 0


def test_plain_mc_and_ceval_rows_in_chinese(tmp_path):
    mc = {"query": "北京是中国的", "choices": ["首都", "河流"], "gold": 0}
    task = load_task(write(tmp_path / "zh.jsonl", [mc]))
    assert task.format == "mc" and task.items[0].delimiter == ""
    ceval = {
        "question": "一加一等于几？",
        "A": "一",
        "B": "二",
        "C": "三",
        "D": "四",
        "answer": "B",
    }
    item = load_task(write(tmp_path / "ceval.jsonl", [ceval])).items[0]
    assert item.query == "一加一等于几？\n答案：" and item.choices == ("一", "二", "三", "四")
    assert item.gold == 1
    assert load_task(tmp_path / "ceval.jsonl").chance == 0.25


GOOD = {"query": "q", "choices": ["a", "b"], "gold": 0}


@pytest.mark.parametrize(
    "rows, fmt, message",
    [
        ([GOOD, {"query": "q", "choices": ["a", "b"]}], "auto", "missing field 'gold'"),
        ([GOOD, {**GOOD, "gold": 2}], "auto", "gold index 2 is out of range for 2 choices"),
        ([GOOD, {**GOOD, "choices": ["a", " "]}], "auto", "choice 1 is empty"),
        ([GOOD, {**GOOD, "choices": ["a"]}], "auto", "a question needs at least two"),
        ([{"text": "hello", "label": 1}], "auto", "unknown task format (fields: text, label)"),
        ([{"goal": "g", "sol1": "a", "sol2": "b", "label": 0}, {"goal": "g"}], "piqa", "'sol1'"),
        ([ARC, {**ARC, "answerKey": "E"}], "arc", "answerKey 'E' is not one of the labels"),
        ([GOOD, {"question": "q", "A": "x", "B": "y", "answer": "C"}], "mc", "answer 'C' is not"),
    ],
)
def test_bad_rows_get_one_line_with_file_and_line(tmp_path, rows, fmt, message):
    path = write(tmp_path / "t.jsonl", rows)
    with pytest.raises(DataError) as e:
        load_task(path, fmt)
    text = str(e.value)
    assert message in text and "\n" not in text
    assert text.startswith(f"{path}:{len(rows)}: ")


def test_bad_files(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_task(tmp_path / "missing.jsonl")
    (tmp_path / "t.jsonl").write_text('{"query": "q", "choices": ["a", "b"], "gold": 0}\n{oops\n')
    with pytest.raises(DataError, match=r"t.jsonl:2: not valid JSON"):
        load_task(tmp_path / "t.jsonl")
    with pytest.raises(DataError, match="unknown task format 'csv'"):
        load_task(tmp_path / "t.jsonl", "csv")
    (tmp_path / "e.jsonl").write_text("\n")
    with pytest.raises(DataError, match="has no rows"):
        load_task(tmp_path / "e.jsonl")


def test_hellaswag_matches_lm_evals_own_processing(tmp_path):
    utils = pytest.importorskip("lm_eval.tasks.hellaswag.utils")
    datasets = pytest.importorskip("datasets")
    row = {
        "activity_label": "Making a cake",
        "ctx_a": "A woman [header] stirs  batter.",
        "ctx_b": "she",
        "ctx": "unused",
        "endings": ["pours it [title] into a pan.", " bakes it. ", "x [step] y", "eats it."],
        "label": 2,
    }
    theirs = utils.process_docs(datasets.Dataset.from_list([row]))[0]
    item = load_task(write(tmp_path / "hs.jsonl", [row])).items[0]
    assert (item.query, list(item.choices), item.gold) == (
        theirs["query"],
        theirs["choices"],
        theirs["gold"],
    )
