"""Readers for compressed files, CSV, Parquet, Arrow (HF save_to_disk), HTML and WARC: text and
ids come out, bad files are named with the fix or skipped and recorded, and a file cut short
keeps what was read before the cut."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import random
from pathlib import Path

import pytest

from llmtrain.data.prepare import Problems, Reader, plan_inputs
from llmtrain.errors import DataError

from .conftest import SHARED_DATA, needs_corpus

PAGE = """<html><head><title>T</title></head><body>
<nav><a href="/">Home</a> | <a href="/about">About</a> | <a href="/login">Login</a></nav>
<article><h1>Tea in Hangzhou</h1>
<p>Longjing tea has been grown in the hills west of Hangzhou for more than a thousand years,
and the leaves are still roasted by hand in iron woks during the spring harvest.</p>
<p>Visitors walk up from the lake through the tea terraces, and many of the family farms
serve the new tea in glass cups so that the leaves can be seen unfolding in the water.</p>
</article><footer>Copyright 2024 Example. All rights reserved. Privacy policy.</footer>
</body></html>"""


def read(inputs, text_field="text", skip_bad=False):
    problems = Problems(skip_bad)
    reader = Reader(plan_inputs(inputs), text_field, problems)
    return list(reader), reader, problems


def test_bz2_and_zstd_jsonl_and_text(tmp_path):
    import zstandard

    line = json.dumps({"text": "压缩", "id": "z1"}, ensure_ascii=False).encode() + b"\n"
    (tmp_path / "a.jsonl.bz2").write_bytes(bz2.compress(line))
    (tmp_path / "b.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(line * 2))
    (tmp_path / "c.txt.zst").write_bytes(zstandard.ZstdCompressor().compress("纯文本".encode()))
    docs, reader, _ = read([tmp_path])
    assert [d.text for d in docs] == ["压缩", "压缩", "压缩", "纯文本"]
    assert [d.id for d in docs[:3]] == ["z1"] * 3
    assert reader.stats["files_read"] == 3


def test_truncated_gzip_keeps_lines_before_the_cut(tmp_path):
    rng = random.Random(0)
    rows = b"".join(
        json.dumps({"text": f"line {i} " + " ".join(str(rng.random()) for _ in range(20))}).encode()
        + b"\n"
        for i in range(2000)
    )
    data = gzip.compress(rows)
    (tmp_path / "cut.jsonl.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"cut\.jsonl\.gz: unreadable .*Re-download"):
        read([tmp_path / "cut.jsonl.gz"])
    docs, _, problems = read([tmp_path / "cut.jsonl.gz"], skip_bad=True)
    assert 0 < len(docs) < 2000 and docs[0].text.startswith("line 0 ")
    assert problems.counts == {"corrupt_file": 1}


def test_csv_column_ids_and_missing_column(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text('id,label,review\n7,1,"好, 很好"\n8,0,"multi\nline"\n9,1,\n', encoding="utf-8")
    docs, _, _ = read([path], text_field="review")
    # the empty cell is an empty document (counted as removed: empty), not dropped unseen
    assert [(d.id, d.text) for d in docs] == [("7", "好, 很好"), ("8", "multi\nline"), ("9", "")]
    with pytest.raises(DataError, match=r"no column 'text' \(columns: 'id', 'label', 'review'\)"):
        read([path])
    tsv = tmp_path / "t.tsv"
    tsv.write_text("text\tx\nhello\t1\n", encoding="utf-8")
    assert [d.text for d in read([tsv])[0]] == ["hello"]


def test_parquet_and_hf_arrow_dataset(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"content": ["一", "two", None], "id": [1, 2, 3]})
    pq.write_table(table, tmp_path / "p.parquet")
    docs, _, _ = read([tmp_path / "p.parquet"], text_field="content")
    assert [(d.id, d.text) for d in docs] == [("1", "一"), ("2", "two"), ("3", "")]  # null: empty
    ds = tmp_path / "hf" / "train"
    ds.mkdir(parents=True)
    with pa.ipc.new_stream(ds / "data-00000-of-00001.arrow", table.schema) as w:
        w.write_table(table)
    (ds / "dataset_info.json").write_text("{\n}")
    (ds / "state.json").write_text('{\n"_data_files": []\n}')
    plan = plan_inputs([tmp_path / "hf"])
    assert [p.name for p in plan.files] == ["data-00000-of-00001.arrow"]
    docs, _, _ = read([tmp_path / "hf"], text_field="content")
    assert [d.text for d in docs] == ["一", "two", ""]
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match=r"bad\.parquet: not a readable \.parquet table"):
        read([tmp_path / "bad.parquet"])


def test_html_boilerplate_removed(tmp_path):
    (tmp_path / "p.html").write_text(PAGE, encoding="utf-8")
    docs, _, _ = read([tmp_path / "p.html"])
    assert len(docs) == 1
    assert "Longjing tea" in docs[0].text and "iron woks" in docs[0].text
    assert "Login" not in docs[0].text and "All rights reserved" not in docs[0].text


def test_warc_responses_extracted(tmp_path):
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    path = tmp_path / "a.warc.gz"
    with open(path, "wb") as f:
        writer = WARCWriter(f, gzip=True)
        for uri, ctype, body in [
            ("https://ex.org/tea", "text/html; charset=utf-8", PAGE.encode()),
            ("https://ex.org/logo.png", "image/png", b"\x89PNG...."),
        ]:
            headers = StatusAndHeaders("200 OK", [("Content-Type", ctype)], protocol="HTTP/1.0")
            rec = writer.create_warc_record(uri, "response", payload=io.BytesIO(body), http_headers=headers)  # fmt: skip
            writer.write_record(rec)
    docs, _, _ = read([path])
    assert [d.id for d in docs] == ["https://ex.org/tea"]
    assert "Longjing tea" in docs[0].text
    (tmp_path / "junk.warc").write_bytes(b"this is not a warc\n" * 10)
    docs, _, problems = read([tmp_path / "junk.warc"], skip_bad=True)
    assert docs == [] and problems.counts == {"unreadable_file": 1}


@pytest.mark.corpus
@needs_corpus
def test_real_warc_and_csv():
    docs, _, _ = read([SHARED_DATA / "en_web"])
    warc = [d for d in docs if ".warc" in d.source]
    assert len(warc) >= 30 and all(d.id.startswith("http") for d in warc)
    assert not any("<div" in d.text for d in warc)
    csv_docs, _, _ = read([SHARED_DATA / "sentiment" / "ChnSentiCorp_htl_all.csv"], "review")
    assert len(csv_docs) > 7000 and any("酒店" in d.text for d in csv_docs)


def test_unsupported_is_still_named(tmp_path):
    (tmp_path / "x.pdf").write_bytes(b"%PDF")
    with pytest.raises(DataError, match=r"unsupported type '\.pdf'.*\.parquet.*\.zst"):
        plan_inputs([Path(tmp_path / "x.pdf")])
