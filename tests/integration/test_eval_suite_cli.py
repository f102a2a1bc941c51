"""`llmtrain eval RUN --tasks/--generate/--text/--all-checkpoints` end to end on a tiny char
run: one JSON line per task and a summary, outputs saved, each kind of bad input one line
with file and line (exit 2), encoders refused; and agreement with lm-evaluation-harness on
the exported run (per-choice log-likelihoods within 1e-4, the same accuracies)."""

from __future__ import annotations

import json

import pytest

from llmtrain.cli.main import main

from .conftest import tiny_overrides

MC = [
    {"query": "the model reads", "choices": [" text", " loss"], "gold": 0, "delimiter": ""},
    {"query": "语言模型从大量", "choices": ["文本", "耐心", "数据和"], "gold": 0},
    {"query": "when the loss goes", "choices": [" down", " up", " token"], "gold": 0},
    {"query": "训练需要", "choices": ["数据", "河流"], "gold": 0},
]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


@pytest.fixture(scope="module")
def run(char_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("evalsuite") / "run"
    argv = ["train", "--out", str(out), "--quiet"]
    for s in tiny_overrides(char_data, 20, **{"train.keep_last": 0}):
        argv += ["--set", s]
    assert main(argv) == 0
    return out


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_tasks_generate_text(run, tmp_path, capsys):
    capsys.readouterr()
    task = write_jsonl(tmp_path / "mixed.jsonl", MC)
    arc_row = {
        "question": {
            "stem": "what does the model read?",
            "choices": [{"text": "text", "label": "A"}, {"text": "rivers", "label": "B"}],
        },
        "answerKey": "A",
    }
    arc = write_jsonl(tmp_path / "arc.jsonl", [arc_row] * 3)
    gen = write_jsonl(
        tmp_path / "gen.jsonl",
        [
            {"prompt": "the model", "reference": "reads text"},
            {"prompt": "语言模型", "reference": "从大量文本中学习"},
        ],
    )
    txt = tmp_path / "t.txt"
    txt.write_text("the model reads text. 语言模型从大量文本中学习。\n" * 5, encoding="utf-8")
    out = tmp_path / "scores"
    argv = [
        "eval",
        str(run),
        "--tasks",
        f"{task},{arc}",
        "--shots",
        "1",
        "--generate",
        str(gen),
        "--text",
        str(txt),
        "--stride",
        "8",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    rows = json_lines(capsys.readouterr().out)
    tasks = [r for r in rows if "task" in r]
    assert [t["task"] for t in tasks] == ["mixed", "arc"]
    for t in tasks:
        assert {"n", "acc", "acc_norm", "acc_bytes", "chance", "centered"} <= set(t)
        assert t["shots"] == 1
    assert tasks[0]["n"] == 4 and tasks[0]["chance"] == pytest.approx(
        (1 / 2 + 1 / 3 + 1 / 3 + 1 / 2) / 4
    )
    summary = next(r for r in rows if r.get("summary"))
    assert summary["tasks"] == ["mixed", "arc"]
    gen_row = next(r for r in rows if "generate" in r)
    assert gen_row["n"] == 2 and {"bleu", "chrf", "rouge1", "rougeL", "exact_match"} <= set(gen_row)
    ppl = next(r for r in rows if "bpb" in r)
    assert ppl["bytes"] == len(txt.read_bytes()) and ppl["stride"] == 8
    saved = sorted(p.name for p in out.iterdir())
    assert saved == [
        "arc.items.jsonl",
        "gen.generations.jsonl",
        "mixed.items.jsonl",
        "scores.jsonl",
    ]
    outputs = [
        json.loads(x) for x in (out / "gen.generations.jsonl").read_text("utf-8").splitlines()
    ]
    assert [o["prompt"] for o in outputs] == ["the model", "语言模型"] and "output" in outputs[0]


@pytest.mark.parametrize(
    "rows, fmt, message",
    [
        ([MC[0], {"query": "q", "choices": ["a", "b"]}], "auto", ":2: missing field 'gold'"),
        ([MC[0], {"query": "q", "choices": ["a", "b"], "gold": 5}], "auto", ":2: gold index 5"),
        ([{"query": "q", "choices": ["a", ""], "gold": 0}], "auto", ":1: choice 1 is empty"),
        ([{"sentence": "q", "label": 1}], "auto", ":1: unknown task format"),
        ([MC[0]], "hellaswag", ":1: missing field 'ctx'"),
    ],
)
def test_bad_task_files_get_one_line(run, tmp_path, capsys, rows, fmt, message):
    task = write_jsonl(tmp_path / "bad.jsonl", rows)
    assert main(["eval", str(run), "--tasks", str(task), "--format", fmt]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and str(task) + message in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (run / "eval" / "scores.jsonl").exists()


def test_all_checkpoints_curve(run, tmp_path, capsys):
    task = write_jsonl(tmp_path / "mixed.jsonl", MC)
    out = tmp_path / "curve"
    assert (
        main(["eval", str(run), "--tasks", str(task), "--all-checkpoints", "--out", str(out)]) == 0
    )
    rows = json_lines(capsys.readouterr().out)
    assert [r["step"] for r in rows] == [10, 20]
    assert (out / "checkpoints_acc.png").stat().st_size > 1000
    assert len((out / "checkpoints.jsonl").read_text().splitlines()) == 2


def test_encoder_run_is_refused(char_data, tmp_path, capsys):
    out = tmp_path / "bert"
    extra = {"model.architecture": '"encoder"', "train.objective": '"mlm"'}
    argv = ["train", "--out", str(out), "--quiet"]
    for s in tiny_overrides(char_data, 2, **extra):
        argv += ["--set", s]
    assert main(argv) == 0
    task = write_jsonl(tmp_path / "t.jsonl", MC)
    capsys.readouterr()
    assert main(["eval", str(out), "--tasks", str(task)]) == 2
    assert "not scored" in capsys.readouterr().err


def test_agreement_with_lm_evaluation_harness(run, tmp_path, capsys):
    pytest.importorskip("lm_eval")
    from llmtrain.checkpoint.inference import load_trained
    from llmtrain.eval.harness import compare, harness_scores
    from llmtrain.eval.multiple_choice import score_task
    from llmtrain.eval.tasks import load_task

    hf = tmp_path / "hf"
    assert main(["export", str(run), "--out", str(hf)]) == 0
    loaded = load_trained(run)
    trailing = {"query": "when the loss goes ", "choices": ["down", "up"], "gold": 0}
    task = load_task(write_jsonl(tmp_path / "agree.jsonl", [*MC, trailing]))  # EN + ZH
    ours = score_task(loaded.model, loaded.tokenizer, task, quiet=True)
    res = compare(ours, harness_scores(hf, task))
    assert res["n"] == 5 and res["max_abs_ll_diff"] <= 1e-4, res
    assert res["same_accuracy"], res


def test_tasks_during_training_reach_metrics_and_report(char_data, tmp_path, capsys):
    task = write_jsonl(tmp_path / "mixed.jsonl", MC)
    out = tmp_path / "run"
    extra = {"eval.tasks": json.dumps([str(task)]), "eval.max_items": 3}
    argv = ["train", "--out", str(out), "--quiet"]
    for s in tiny_overrides(char_data, 20, **extra):
        argv += ["--set", s]
    assert main(argv) == 0
    recs = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in recs if "task_mixed/acc" in r]
    assert [r["step"] for r in evals] == [10, 20]
    assert evals[0]["task_mixed/chance"] == pytest.approx(
        (1 / 2 + 1 / 3 + 1 / 3) / 3
    )  # capped at 3
    assert {"task_mixed/acc_norm", "task_centered", "val_loss"} <= set(evals[0])
    from rich.console import Console

    from llmtrain.monitor.dashboard import render_run
    from llmtrain.monitor.runs import load_run

    console = Console(record=True, width=120)
    console.print(render_run(load_run(out), []))
    shown = console.export_text()
    assert "mixed acc" in shown and "chance 0.3889" in shown
    report = tmp_path / "report.html"
    assert main(["monitor", str(out), "--report", str(report)]) == 0
    assert "Task mixed: accuracy vs chance" in report.read_text(encoding="utf-8")


def test_bad_eval_tasks_stop_training_before_it_starts(char_data, tmp_path, capsys):
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"query": "q", "choices": ["a", "b"], "gold": 3}])
    argv = ["train", "--out", str(tmp_path / "run"), "--quiet"]
    for s in tiny_overrides(char_data, 2, **{"eval.tasks": json.dumps([str(bad)])}):
        argv += ["--set", s]
    assert main(argv) == 2
    assert f"{bad}:1: gold index 3 is out of range" in capsys.readouterr().err
    assert not (tmp_path / "run" / "checkpoints").exists()
    enc = {"eval.tasks": json.dumps([str(bad)]), "model.architecture": '"encoder"'}
    argv = ["train", "--out", str(tmp_path / "enc"), "--quiet"]
    for s in tiny_overrides(char_data, 2, **{**enc, "train.objective": '"mlm"'}):
        argv += ["--set", s]
    assert main(argv) == 2
    assert "eval.tasks scores choices by causal log-likelihood" in capsys.readouterr().err


def test_one_task_still_gets_a_summary_and_all_checkpoints_refuses_generate(run, tmp_path, capsys):
    task = write_jsonl(tmp_path / "mixed.jsonl", MC)
    out = tmp_path / "one"
    assert main(["eval", str(run), "--tasks", str(task), "--limit", "2", "--out", str(out)]) == 0
    rows = json_lines(capsys.readouterr().out)
    assert rows[0]["n"] == 2 and rows[-1]["summary"] and rows[-1]["tasks"] == ["mixed"]
    saved = [json.loads(x) for x in (out / "scores.jsonl").read_text().splitlines()]
    assert saved == rows
    argv = ["eval", str(run), "--tasks", str(task), "--all-checkpoints", "--text", str(task)]
    assert main(argv) == 2
    assert "--all-checkpoints scores --tasks only" in capsys.readouterr().err
