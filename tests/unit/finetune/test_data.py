"""Labelled files: every format, broken rows and missing columns as one clear error, skipped
rows reported by line, label maps, the stratified split, oversampling."""

import json

import numpy as np
import pytest

from llmtrain.errors import DataError
from llmtrain.finetune.datasets import ClassificationData, Oversampled, parse_rows
from llmtrain.finetune.labels import LabelMap, balanced_weights, stratified_split
from llmtrain.finetune.tables import read_rows, require_field
from llmtrain.tokenizer import ByteTokenizer


def test_every_format_reads_the_same_rows(tmp_path):
    rows = [{"text": "很好 great", "label": 1}, {"text": 'bad, "really"', "label": 0}]
    (tmp_path / "a.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8"
    )
    (tmp_path / "a.csv").write_text('text,label\n很好 great,1\n"bad, ""really""",0\n', "utf-8")
    (tmp_path / "a.tsv").write_text('text\tlabel\n很好 great\t1\nbad, "really"\t0\n', "utf-8")
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "a.parquet")
    for name in ("a.jsonl", "a.csv", "a.tsv", "a.parquet"):
        ex = parse_rows(read_rows(tmp_path / name), "text", "", "label", LabelMap(["0", "1"]))
        assert ex.texts == ["很好 great", 'bad, "really"'] and ex.labels == [1, 0], name


def test_broken_csv_row_names_file_and_line(tmp_path):
    p = tmp_path / "broken.csv"
    p.write_text("label,review\n1,fine\n0,too,many,commas\n1,ok\n", "utf-8")
    with pytest.raises(
        DataError, match=r"broken.csv:3: broken row: 4 fields where the header has 2"
    ):
        read_rows(p)


def test_missing_label_column_names_the_columns_and_the_flag(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("label,review\n1,fine\n", "utf-8")
    rows = read_rows(p)
    with pytest.raises(
        DataError,
        match=r"d.csv: no column 'sentiment' \(columns: label, review\); pass --label-field",
    ):
        require_field(p, rows, "sentiment", "--label-field")


def test_bad_json_line(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text('{"text": "a", "label": 1}\n{"text": "b", label: 0}\n', "utf-8")
    with pytest.raises(DataError, match=r"d.jsonl:2: invalid JSON"):
        read_rows(p)


def test_skipped_rows_are_counted_with_their_lines(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("text,label\nok,a\n,a\nfine,\nsure,zz\n好,b\n", "utf-8")
    ex = parse_rows(read_rows(p), "text", "", "label", LabelMap(["a", "b"]))
    assert ex.texts == ["ok", "好"] and ex.lines == [2, 6]
    assert ex.skipped.to_dict() == {
        "empty text": [3],
        "empty label": [4],
        "unknown label (known: a, b)": [5],
    }
    assert "skipped 3 rows" in ex.skipped.describe(str(p))


def test_label_map_orders_integers_numerically():
    assert LabelMap.from_values([10, 2, "1", 2.0]).names == ["1", "2", "10"]
    assert LabelMap.from_values(["正面", "负面"]).names == ["正面", "负面"]


def test_stratified_split_is_seeded_and_keeps_class_shares():
    labels = [0] * 200 + [1] * 100
    rest, val = stratified_split(labels, [0.2], seed=0)
    assert sorted(rest + val) == list(range(300))
    assert sum(labels[i] for i in val) == 20 and len(val) == 60
    assert stratified_split(labels, [0.2], seed=0)[1] == val
    assert stratified_split(labels, [0.2], seed=1)[1] != val
    assert balanced_weights([200, 100]) == [0.75, 1.5]


def test_padded_batches_and_oversampling():
    tok = ByteTokenizer()
    rows = read_rows_from([("a", "x"), ("长一点的文本", "y"), ("b", "x"), ("c", "x")])
    ex = parse_rows(rows, "text", "", "label", LabelMap(["x", "y"]))
    data = ClassificationData(tok, ex, max_length=8)
    b = data.batch([0, 1])
    assert b["ids"].shape == (2, 8) and b["lengths"].tolist() == [3, 8] and data.truncated == 1
    assert b["ids"][0, 3:].tolist() == [tok.pad_id] * 5
    over = Oversampled(data, [0, 1, 0, 0], seed=0)
    seen = np.array([int(over.batch([i])["labels"][0]) for i in range(len(over))])
    assert len(over) == 6 and (seen == 1).sum() == 3


def read_rows_from(pairs):
    from llmtrain.finetune.tables import Row

    return [Row(i + 2, {"text": t, "label": y}) for i, (t, y) in enumerate(pairs)]
