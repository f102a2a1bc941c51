"""`encode_documents`: the same ids whatever the group size, and bounded memory on one long
document (a child process, so its peak RSS is its own)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from llmtrain.data.prepare.pack import encode_documents
from llmtrain.tokenizer import train_tokenizer

LINE = "Line {i}: the river runs past the old mill,  河边的老磨坊旁边流过一条河。\n\n\tword\n"


@pytest.mark.parametrize("kind", ["bpe", "char", "byte"])
def test_ids_do_not_depend_on_the_group_size(kind):
    long = "".join(LINE.format(i=i) for i in range(120))  # ~7k characters, many pieces
    texts = [long, "", "中文", long[:333], "x"]
    tok = train_tokenizer(kind, [long], 300)
    whole = [tok.encode(t) for t in texts]
    for group in (1, 7, 150, 1000, 1 << 20):
        got = encode_documents(tok, texts, group_chars=group, piece_chars=100)
        assert [ids.tolist() for ids in got] == whole, group
        assert {ids.dtype for ids in got} == {encode_documents(tok, ["ab"])[0].dtype}


_CHILD = """
import resource, sys
from llmtrain.data.prepare.pack import encode_documents
from llmtrain.tokenizer import train_tokenizer
text = "".join({line!r}.format(i=i) for i in range(60_000))  # one 5 MiB document
tok = train_tokenizer({kind!r}, [text[:100_000]], 300)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
(ids,) = encode_documents(tok, [text])
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(grown // 1024, ids.nbytes >> 20)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss in KiB is Linux's")
@pytest.mark.parametrize(("kind", "limit_mib"), [("bpe", 220), ("char", 105)])
def test_one_long_document_encodes_in_bounded_memory(kind, limit_mib):
    """Encoding the whole document at once grew the peak by 345 MiB (BPE) / 133 MiB (char)
    here; in 1 MiB groups by ~140 / ~80 MiB (for char mostly the int64 ids, 31 MiB, twice)."""
    code = textwrap.dedent(_CHILD).format(line=LINE, kind=kind)
    env = {**os.environ, "RAYON_NUM_THREADS": "2", "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120, check=True)  # fmt: skip
    grown_mib, ids_mib = map(int, res.stdout.split())
    assert grown_mib < limit_mib, f"peak RSS grew {grown_mib} MiB (ids: {ids_mib} MiB)"
