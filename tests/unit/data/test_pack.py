"""`encode_documents`: the same ids whatever the group size, and bounded memory on one long
document (a child process, so its peak RSS is its own)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from llmtrain.data.prepare.pack import encode_documents, encoding_pieces
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
from llmtrain.data.prepare.pack import encode_documents, encoding_pieces
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


# One-line texts (a 1 GiB file with no line break is read as 4 MiB documents of one line):
# the cuts each tokenizer declares safe still cut them, and every declared cut keeps the ids.
ONE_LINE_EN = " ".join(
    f"word{i} the river, runs (past) mill's end.  Two  spaces 3.14" for i in range(150)
)
ONE_LINE_ZH = "".join(
    f"河边的老磨坊{i}旁边流过一条河，水很清。它说：“好！”abc,def." for i in range(150)
)


def _foreign(tok, normalizer=None, pre_tokenizer=None):
    """Our BPE model behind another pipeline: a Llama-3 style Split + ByteLevel, or
    Llama-2 style Metaspace normalizers (`▁` prepended to every piece: no safe cut)."""
    from tokenizers import Tokenizer as HF

    from llmtrain.tokenizer.bpe import BPETokenizer

    backend = HF.from_str(tok.backend.to_str())
    backend.normalizer, backend.pre_tokenizer = normalizer, pre_tokenizer
    return BPETokenizer(backend, {"pad_id": 0, "unk_id": 1, "bos_id": 2, "eos_id": 3})


@pytest.fixture(scope="module")
def tokenizers_under_test():
    from tokenizers import Regex, normalizers
    from tokenizers import pre_tokenizers as pt

    texts = ["".join(LINE.format(i=i) for i in range(100)), ONE_LINE_EN, ONE_LINE_ZH]
    kinds = ["bpe", "unigram", "wordpiece", "sentencepiece", "sentencepiece-bpe"]
    toks = {k: train_tokenizer(k, texts, 700) for k in kinds}
    tiktoken = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")  # fmt: skip
    split = pt.Split(Regex(tiktoken), "isolated")
    toks["llama3-style"] = _foreign(toks["bpe"], None, pt.Sequence(
        [split, pt.ByteLevel(add_prefix_space=False, use_regex=False)]))  # fmt: skip
    prepend = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    toks["llama2-style"] = _foreign(toks["bpe"], prepend, None)
    return toks


EXPECTED_CUTS = {
    "bpe": ("line", "space", "punct"),
    "wordpiece": ("line", "space", "punct"),
    "unigram": ("line", "space"),  # Metaspace: punctuation can sit inside a piece
    "sentencepiece": ("line", "space"),
    "sentencepiece-bpe": ("line", "space"),
    "llama3-style": ("line", "space"),
    "llama2-style": (),
}


@pytest.mark.parametrize("name", list(EXPECTED_CUTS))
def test_declared_cuts_keep_the_ids_of_one_line_texts(tokenizers_under_test, name):
    tok = tokenizers_under_test[name]
    assert tok.safe_cuts == EXPECTED_CUTS[name]
    for text in (ONE_LINE_EN, ONE_LINE_ZH, "".join(LINE.format(i=i) for i in range(40))):
        whole = tok.encode(text)
        for cut in tok.safe_cuts:  # each declared cut alone, cut as often as it can be
            pieces = encoding_pieces(text, 20, (cut,))
            assert "".join(pieces) == text
            assert sum((tok.encode(p) for p in pieces), []) == whole, (cut, text[:30])
        (ids,) = encode_documents(tok, [text], group_chars=64, piece_chars=50)
        assert ids.tolist() == whole
    if "space" in tok.safe_cuts:  # an English line with no line break is cut
        assert len(encoding_pieces(ONE_LINE_EN, 50, tok.safe_cuts)) > 50
    if "punct" in tok.safe_cuts:  # and a Chinese one with no space either
        assert len(encoding_pieces(ONE_LINE_ZH, 50, tok.safe_cuts)) > 50
