"""`prepare` draws one progress bar per step on a terminal, and none under --quiet."""

from __future__ import annotations

from llmtrain.data.prepare import PrepareConfig, prepare_corpus

from .test_prepare_pipeline import make_corpus

BARS = ("read + clean", "near-dedup: cluster", "tokenizer: read", "tokenize + pack")


def _run(tmp_path, monkeypatch, capsys, quiet: bool) -> str:
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich treats stderr as a terminal
    monkeypatch.setenv("COLUMNS", "160")
    raw = make_corpus(tmp_path)
    cfg = PrepareConfig(tokenizer="bpe", vocab_size=300, workers=1, near_dedup=True)
    prepare_corpus([raw], tmp_path / ("q" if quiet else "loud"), cfg, quiet=quiet)
    return capsys.readouterr().err


def test_progress_bars_per_step_with_rate_and_eta(tmp_path, monkeypatch, capsys):
    err = _run(tmp_path, monkeypatch, capsys, quiet=False)
    for bar in BARS:
        assert bar in err, f"no {bar!r} bar in {err[-500:]!r}"
    assert err.count("eta") >= len(BARS)  # the ETA column (the rate needs two samples)


def test_quiet_draws_no_progress(tmp_path, monkeypatch, capsys):
    err = _run(tmp_path, monkeypatch, capsys, quiet=True)
    assert not any(bar in err for bar in BARS)
