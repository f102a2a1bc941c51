"""The HTML report: self-contained, every metric charted, data embedded safely."""

import json
import re

from llmtrain.monitor.report import chart_specs, render_html, report_data
from tests.unit.monitor import streams


def _embedded(page: str) -> dict:
    m = re.search(r'<script id="report-data" type="application/json">(.*?)</script>', page, re.S)
    return json.loads(m.group(1))


def test_every_metric_gets_a_chart_and_runs_overlay():
    a, b = streams.healthy(0), streams.broken_divergence()
    a.train[5]["grad_norm/blocks.0"] = 0.3
    a.train[5]["custom_metric"] = 1.0
    data = report_data([a, b])
    keys = {k for c in data["charts"] for k in c["keys"]}
    train_keys = {k for r in a.train + b.train for k in r} - {"step", "tokens", "elapsed_sec"}
    assert train_keys - {"memory_limit_gb"} <= keys
    assert {"val_loss", "val_bpb", "val_ppl"} <= keys
    assert data["charts"][0]["keys"] == ["loss", "val_loss"]
    assert [r["name"] for r in data["runs"]] == ["healthy0", "healthy0"]
    assert any(f["rule"] == "divergence" for f in data["runs"][1]["findings"])


def test_page_is_self_contained_and_escapes_its_data():
    run = streams.healthy(0)
    run.config["note"] = "</script><script>alert(1)</script>"
    run.train[3]["loss"] = float("nan")
    page = render_html([run])
    assert "<script src" not in page and "<link" not in page and "@import" not in page
    assert re.findall(r"https?://(?!www\.w3\.org/2000/svg)", page) == []
    data = _embedded(page)
    assert data["runs"][0]["config"]["note"] == "</script><script>alert(1)</script>"
    assert data["runs"][0]["series"]["train"]["loss"][3] is None  # NaN -> a gap


def test_chart_specs_skip_empty_metrics():
    cols = [{"train": {"loss": [1.0, None], "mfu": [None, None]}, "eval": {}}]
    assert [c["keys"] for c in chart_specs(cols)] == [["loss"]]


def _classifier_run(tmp_path, final: bool):
    run = streams.healthy(0)
    run.run_dir = tmp_path
    per_class = {"负面": {"precision": 0.8, "recall": 0.75, "f1": 0.77, "support": 4},
                 "正面": {"precision": 0.9, "recall": 0.92, "f1": 0.91, "support": 8}}  # fmt: skip
    run.evals.append({"step": 40, "val_accuracy": 0.875, "val_macro_f1": 0.84,
                      "val_per_class": per_class, "val_confusion": [[3, 1], [1, 7]]})  # fmt: skip
    (tmp_path / "labels.json").write_text(json.dumps({"labels": ["负面", "正面"]}))
    if final:
        test = {"accuracy": 0.9, "macro_f1": 0.88, "roc_auc": 0.95, "per_class": per_class,
                "confusion": [[30, 5], [5, 60]], "loss": 0.3}  # fmt: skip
        (tmp_path / "finetune.json").write_text(json.dumps({"metrics": {"test": test}}))
    return run


def test_classifier_scores_come_from_the_final_report_or_the_last_eval(tmp_path):
    running = report_data([_classifier_run(tmp_path, final=False)])["runs"][0]["classifier"]
    assert running["labels"] == ["负面", "正面"]
    assert running["splits"]["val (step 40)"]["confusion"] == [[3, 1], [1, 7]]
    done = report_data([_classifier_run(tmp_path, final=True)])["runs"][0]["classifier"]
    assert list(done["splits"]) == ["test"] and done["splits"]["test"]["roc_auc"] == 0.95
    assert "loss" not in done["splits"]["test"]
    assert report_data([streams.healthy(0)])["runs"][0]["classifier"] is None  # not a classifier
    page = render_html([_classifier_run(tmp_path, final=True)])
    assert '<section id="classifier">' in page
    assert _embedded(page)["runs"][0]["classifier"]["labels"] == ["负面", "正面"]
