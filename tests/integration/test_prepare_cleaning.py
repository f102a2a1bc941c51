"""`llmtrain prepare` with the opt-in cleaning steps end to end: mixed formats in one folder,
--quality web, --pii, --near-dedup and --languages; curated text untouched when they are off."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from llmtrain.cli.main import main
from llmtrain.data.prepare import PrepareConfig, normalise_text, prepare_corpus
from llmtrain.errors import ConfigError

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
PROSE = (
    "The river runs past the old mill and the children of the village walk along it to school "
    "every morning. In the spring the water is high and cold, and the miller has to open the "
    "gates before the wheel is flooded. Nobody remembers when the mill was built, but the "
    "stones of its walls are older than the church and the bridge. In summer the old men sit "
    "in the shade and tell stories about floods. The young ones work in the fields until dark."
)
CODE = 'def f(x):\n    """Return x."""\n    return {"x": x}  # a dict, a brace\n'


def _report(out: Path) -> dict:
    report = json.loads((out / "report.json").read_text())
    return {s["name"]: s for s in report["steps"]}


def test_cleaning_flags_end_to_end(tmp_path):
    import zstandard

    raw = tmp_path / "raw"
    raw.mkdir()
    rng = random.Random(0)
    vocab = [f"{a}{b}" for a in ("mill", "river", "stone", "field", "bridge", "wood") for b in ("wood", "side", "gate", "ford", "land", "wick", "ton", "by")]  # fmt: skip
    vocab += ["the", "and", "of", "to", "with"]

    def story() -> str:
        return " ".join(
            " ".join(rng.choice(vocab) for _ in range(12)).capitalize() + "." for _ in range(10)
        )

    rows = [{"text": story()} for _ in range(8)]
    words = rows[3]["text"].split()
    rows.append({"text": " ".join(["Changed", *words[1:]])})  # near duplicate of row 3
    rows.append({"text": "buy cheap pills, cheap pills, cheap pills"})  # spam
    rows.append({"text": story() + " Write to miller@example.org or call 13812345678."})
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    (raw / "a.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(data))
    (raw / "b.csv").write_text("text\n" + json.dumps("Second file. " + PROSE) + "\n")
    out = tmp_path / "data"
    rc = main(["prepare", str(raw), "--out", str(out), "--tokenizer", "char", "--quality", "web",
               "--pii", "--near-dedup", "--languages", "en", "--quality-set", "gopher_quality.min_words=20"])  # fmt: skip
    assert rc == 0
    steps = _report(out)
    assert steps["near_dedup"]["removed_near_duplicate"] == 1
    rep = steps["gopher_repetition"]
    assert {k: v for k, v in rep.items() if not k.startswith("bytes")} == {"name": "gopher_repetition", "documents_in": 12, "documents_out": 11, "removed_top_2_gram": 1}  # fmt: skip
    assert rep["bytes_in"] > rep["bytes_out"] > 0
    assert steps["pii"]["replaced_email"] == 1 and steps["pii"]["replaced_phone"] == 1
    assert steps["language"]["language_en"] == 12
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stats"]["near_duplicates_removed"] == 1
    assert manifest["stats"]["quality_removed"] == 1 and manifest["stats"]["pii_replaced"] == 2
    assert manifest["stats"]["documents_kept"] == 10
    assert not (out / ".prepare_near_dedup.tmp").exists()


def test_curated_text_untouched_when_quality_off(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "code.py.txt").write_text(CODE)
    (raw / "short.txt").write_text("To be, or not to be.")
    m = prepare_corpus(
        [raw], tmp_path / "d", PrepareConfig(tokenizer="char", workers=1), quiet=True
    )
    assert m["stats"]["documents_kept"] == 2 and m["stats"]["quality_removed"] == 0
    chars = sum(m["splits"][s]["bytes"] for s in ("train", "val"))
    assert chars == len(CODE.encode()) + len(b"To be, or not to be.")
    web = PrepareConfig(tokenizer="char", workers=1, quality="web")
    with pytest.raises(Exception, match="corpus is empty.*curly_bracket|corpus is empty"):
        prepare_corpus([raw], tmp_path / "w", web, quiet=True)


def test_bad_quality_settings_are_config_errors():
    with pytest.raises(ConfigError, match="'quality' = 'strict' is not valid"):
        PrepareConfig(quality="strict").validate()
    with pytest.raises(ConfigError, match="no active filter"):
        PrepareConfig(quality_set=["c4.min_sentences=1"]).validate()
    with pytest.raises(ConfigError, match="'english' is not an ISO 639-1 code"):
        PrepareConfig(languages=["english"]).validate()


@pytest.mark.corpus
@pytest.mark.skipif(not SHARED.is_dir(), reason=f"real corpora not found at {SHARED}")
def test_shakespeare_untouched_with_quality_off(tmp_path):
    path = SHARED / "tinyshakespeare.txt"
    cfg = PrepareConfig(tokenizer="char", workers=1, pii=True, near_dedup=True)
    m = prepare_corpus([path], tmp_path / "d", cfg, quiet=True)
    text = normalise_text(path.read_text(encoding="utf-8"))
    assert sum(m["splits"][s]["bytes"] for s in ("train", "val")) == len(text.encode())
    assert m["stats"]["pii_replaced"] == 0 and m["stats"]["near_duplicates_removed"] == 0
