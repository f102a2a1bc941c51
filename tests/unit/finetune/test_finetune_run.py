"""Fine-tuning runs end to end through the one Trainer: a classifier learns and is scored,
predicted and evaluated from the CLI; LoRA resume is exact; early stopping; SFT learns the
answer format and `generate --chat` stops at the end of the turn; bad input is one line."""

import json

import pytest
import safetensors.torch

from llmtrain.cli.main import main
from llmtrain.finetune.api import finetune

from .conftest import sentiment_rows, write_csv, write_jsonl

FAST = ["train.batch_size=16", "train.lr=3e-3", "train.warmup_steps=0", "train.log_every=5"]


def _steps(n):
    """Stop, evaluate and checkpoint at step `n`."""
    return [f"train.max_steps={n}", f"train.eval_every={n}", f"train.checkpoint_every={n}"]


def _finetune(base, data, out, *sets, task="classify", **kw):
    """A quiet fine-tune of `base` on `data` into `out`, with FAST and then `sets`."""
    return finetune(
        str(base),
        task=task,
        data=str(data),
        out=out,
        show_progress=False,
        say=lambda m: None,
        overrides=[*FAST, *sets],
        **kw,
    )


def test_classifier_learns_and_cli_predicts_and_evaluates(gpt_base, tmp_path, capsys):
    data = write_csv(tmp_path / "train.csv", sentiment_rows(400))
    res = _finetune(
        gpt_base,
        data,
        tmp_path / "run",
        "train.max_steps=80",
        "train.eval_every=40",
        "train.checkpoint_every=40",
        "finetune.test_fraction=0.2",
    )
    test = res["metrics"]["test"]
    assert test["accuracy"] > 0.8 and test["macro_f1"] > 0.8, test
    assert set(test["per_class"]) == {"neg", "pos"} and len(test["confusion"]) == 2
    for f in ("labels.json", "finetune.json", "confusion_test.png", "finetune_report.html"):
        assert (tmp_path / "run" / f).is_file()
    evals = [
        json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    assert any("val_macro_f1" in r and "val_confusion" in r for r in evals)
    rows = sentiment_rows(10, seed=9)
    rows[2]["text"] = ""
    rows[4]["label"] = "meh"
    write_csv(tmp_path / "in.csv", rows)
    capsys.readouterr()
    assert (
        main(
            [
                "predict",
                str(tmp_path / "run"),
                "--input",
                str(tmp_path / "in.csv"),
                "--out",
                str(tmp_path / "p.csv"),
            ]
        )
        == 0
    )
    out = capsys.readouterr()
    assert "skipped 2 rows: 1 with empty text (lines 4); 1 with unknown label" in out.err
    pred = (tmp_path / "p.csv").read_text().splitlines()
    assert pred[0] == "line,text,label,prob_neg,prob_pos" and len(pred) == 9
    assert main(["eval", str(tmp_path / "run")]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert {"accuracy", "macro_f1", "per_class", "confusion"} <= set(ev["test"])
    assert ev["test"]["macro_f1"] == pytest.approx(test["macro_f1"])


def test_lora_resume_is_exact(gpt_base, tmp_path):
    data = write_csv(tmp_path / "train.csv", sentiment_rows(120))
    sets = [
        *FAST,
        'train.lr_schedule="constant"',
        "train.eval_every=3",
        "train.checkpoint_every=3",
        "finetune.head.dropout=0.1",
        "finetune.lora.dropout=0.1",
        "train.keep_last=0",
    ]
    kw = dict(task="classify", data=str(data), lora_rank=4, show_progress=False, say=lambda m: None)
    finetune(str(gpt_base), out=tmp_path / "a", overrides=[*sets, "train.max_steps=6"], **kw)
    finetune(str(gpt_base), out=tmp_path / "b", overrides=[*sets, "train.max_steps=3"], **kw)
    finetune(str(gpt_base), out=tmp_path / "b", overrides=["train.max_steps=6"], resume=True, **kw)
    a = safetensors.torch.load_file(tmp_path / "a/checkpoints/step_000006/model.safetensors")
    b = safetensors.torch.load_file(tmp_path / "b/checkpoints/step_000006/model.safetensors")
    assert any("lora_A" in k for k in a)
    assert all((a[k] == b[k]).all() for k in a)


def test_early_stopping_stops_and_keeps_the_best(gpt_base, tmp_path):
    data = write_csv(tmp_path / "train.csv", sentiment_rows(120))
    res = _finetune(
        gpt_base,
        data,
        tmp_path / "run",
        "train.lr=1e-9",
        "train.min_lr=0",
        "train.max_steps=100",
        "train.eval_every=2",
        "train.checkpoint_every=2",
        "finetune.patience=2",
    )
    assert res["step"] == 6  # evals at 2, 4, 6: no gain after the first
    assert res["best_checkpoint"].endswith("step_000002")


def _qa_rows(n, seed=0):
    import random

    rng = random.Random(seed)
    words = ["cat", "dog", "sun", "tea", "猫", "茶"]
    rows = []
    for _ in range(n):
        w = rng.choice(words)
        rows.append(
            {
                "messages": [
                    {"role": "user", "content": f"repeat {w}"},
                    {"role": "assistant", "content": f"<{w}>"},
                ]
            }
        )
    return rows


@pytest.fixture(scope="module")
def sft_run(gpt_base, tmp_path_factory):
    root = tmp_path_factory.mktemp("sft")
    data = write_jsonl(root / "sft.jsonl", _qa_rows(200))
    res = _finetune(
        gpt_base,
        data,
        root / "sft",
        "train.max_steps=120",
        "train.eval_every=60",
        "train.checkpoint_every=60",
        task="sft",
    )
    return root / "sft", res


def test_sft_learns_the_format_and_chat_stops_at_end_of_turn(sft_run, capsys):
    run, res = sft_run
    assert res["metrics"]["val"]["token_acc"] > 0.9
    report = json.loads((run / "finetune.json").read_text())
    assert report["best_metric"] == "loss"  # SFT keeps the checkpoint of the lowest val loss
    chat = json.loads((run / "chat.json").read_text())
    assert chat["added"] == 2 and "<|im_start|>" in chat["template"]
    capsys.readouterr()
    assert (
        main(["generate", str(run), "--chat", "--prompt", "repeat 猫", "--temperature", "0"]) == 0
    )
    assert capsys.readouterr().out == "<猫>\n"


def test_sft_exports_to_transformers_with_its_chat_template(sft_run, tmp_path, capsys):
    run, _ = sft_run
    assert main(["export", str(run), "--out", str(tmp_path / "hf")]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["max_abs_diff"] <= 1e-4 and res["chat_template"]
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tmp_path / "hf")
    chat = json.loads((run / "chat.json").read_text())
    assert tok.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>"]) == list(
        chat["tokens"].values()
    )
    text = tok.apply_chat_template(
        [{"role": "user", "content": "repeat 猫"}], tokenize=False, add_generation_prompt=True
    )
    assert text == "<|im_start|>user\nrepeat 猫<|im_end|>\n<|im_start|>assistant\n"


def test_merge_lora_gives_the_same_logits(gpt_base, tmp_path, capsys):
    import torch

    from llmtrain.checkpoint.inference import load_trained

    data = write_csv(tmp_path / "train.csv", sentiment_rows(60))
    _finetune(gpt_base, data, tmp_path / "lora", *_steps(4), lora_rank=4)
    assert (
        main(["export", str(tmp_path / "lora"), "--merge-lora", "--out", str(tmp_path / "merged")])
        == 0
    )
    a, b = load_trained(tmp_path / "lora"), load_trained(tmp_path / "merged")
    assert any("lora_" in n for n, _ in a.model.named_parameters())
    assert not any("lora_" in n for n, _ in b.model.named_parameters())
    ids = torch.randint(4, 40, (3, 20))
    lengths = torch.tensor([20, 9, 3])
    with torch.no_grad():
        assert (a.model(ids, lengths) - b.model(ids, lengths)).abs().max() <= 1e-5
    assert (tmp_path / "merged" / "labels.json").is_file()


def test_bad_input_is_one_line(gpt_base, tmp_path, capsys):
    data = write_csv(tmp_path / "train.csv", sentiment_rows(20))

    def cli(task, data, out):
        return ["finetune", "--from", str(gpt_base), "--task", task, "--data", str(data),
                "--out", str(out)]  # fmt: skip

    args = cli("classify", data, tmp_path / "r")
    assert main([*args, "--label-field", "sentiment"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err
        == f"error: {data}: no column 'sentiment' (columns: text, label); pass --label-field with one of them"
    )
    assert main([*args, "--lora-rank", "2", "--set", 'finetune.lora.targets=["c_attn"]']) == 2
    assert "match no nn.Linear layer" in capsys.readouterr().err
    rows = sentiment_rows(30)
    for i, r in enumerate(rows):
        r["label"] = ["neg", "pos", "mixed"][i % 3]
    three = write_csv(tmp_path / "three.csv", rows)
    auc = ["--set", 'finetune.best_metric="roc_auc"']
    assert main([*cli("classify", three, tmp_path / "r3"), *auc]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: finetune.best_metric='roc_auc' is defined for two classes")
    assert "\n" not in err and not (tmp_path / "r3" / "checkpoints").exists()
    sft = write_jsonl(tmp_path / "s.jsonl", _qa_rows(3))
    args = cli("sft", sft, tmp_path / "s")
    assert main([*args, "--set", "finetune.add_chat_tokens=false"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        "has no chat tokens <|im_start|> / <|im_end|>" in err
        and "set finetune.add_chat_tokens=true" in err
    )
    assert "\n" not in err
    assert not (tmp_path / "s" / "checkpoints").exists()


@pytest.mark.parametrize("preset", ["gpt2-tiny", "llama-tiny", "bert-tiny"])
def test_classifier_exports_to_transformers(preset, tmp_path, capsys):
    from .conftest import make_base_run

    base = make_base_run(tmp_path, preset)
    data = write_csv(tmp_path / "train.csv", sentiment_rows(40))
    _finetune(base, data, tmp_path / "run", *_steps(2), lora_rank=2)
    assert main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "hf")]) == 0
    out = capsys.readouterr().out
    res = json.loads(out.strip().splitlines()[-1])
    assert res["max_abs_diff"] <= 1e-4 and res["target"].endswith("ForSequenceClassification")
    assert res["target"].lower().startswith(preset.split("-")[0])  # the family table's class
    cfg = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert cfg["id2label"] == {"0": "neg", "1": "pos"}


def test_finetune_from_a_hugging_face_directory(gpt_base, tmp_path):
    import llmtrain as lt

    lt.export(gpt_base, tmp_path / "hf")  # a local HF GPT-2 directory (+ tokenizer.json)
    data = write_csv(tmp_path / "train.csv", sentiment_rows(40))
    run = lt.finetune(
        tmp_path / "hf",
        task="classify",
        data=data,
        out=tmp_path / "run",
        show_progress=False,
        say=lambda m: None,
        overrides=[*FAST, *_steps(2)],
    )
    assert run.result["step"] == 2 and "val" in run.result["metrics"]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["finetune"]["base"] == str(
        tmp_path / "hf"
    )


def test_tuned_decision_is_saved_and_applied_by_eval_and_predict(gpt_base, tmp_path, capsys):
    """finetune.tune_decision: offsets tuned on val for the best checkpoint; the report's val /
    test metrics, `llmtrain eval` and `llmtrain predict` all apply them."""
    import numpy as np

    data = write_csv(tmp_path / "train.csv", sentiment_rows(300, imbalance=0.8))
    run = tmp_path / "run"
    res = _finetune(
        gpt_base,
        data,
        run,
        *_steps(12),
        "finetune.val_fraction=0.3",
        "finetune.test_fraction=0.2",
        'finetune.tune_decision="macro_f1"',
    )
    d = json.loads((run / "decision.json").read_text())
    assert d["step"] == 12 and d["metric"] == "macro_f1" and d["val_after"] >= d["val_before"]
    assert res["metrics"]["val"]["macro_f1"] == pytest.approx(d["val_after"])
    assert json.loads((run / "finetune.json").read_text())["decision"] == d
    assert "decision tuned on val for macro_f1" in (run / "finetune_report.html").read_text()
    capsys.readouterr()
    assert main(["eval", str(run)]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert ev["decision"] == d
    assert ev["test"]["macro_f1"] == pytest.approx(res["metrics"]["test"]["macro_f1"])
    write_csv(tmp_path / "in.csv", sentiment_rows(40, seed=5, imbalance=0.8))
    assert main(["predict", str(run), "--input", str(tmp_path / "in.csv"), "--out", str(tmp_path / "p.jsonl")]) == 0  # fmt: skip
    rows = [json.loads(x) for x in (tmp_path / "p.jsonl").read_text().splitlines()]
    probs = np.array([[r["prob_neg"], r["prob_pos"]] for r in rows])
    picked = (np.log(probs) + np.array(d["offsets"])).argmax(1)
    assert [r["label"] for r in rows] == [["neg", "pos"][i] for i in picked]
    import llmtrain as lt

    res = lt.export(run, tmp_path / "hf")  # HF heads have no place for it: shipped beside
    assert "not part of the HF model" in res["decision"]
    assert json.loads((tmp_path / "hf" / "decision.json").read_text()) == d
    capsys.readouterr()
    # no val data to tune on: one line, before anything is written
    args = ["finetune", "--from", str(gpt_base), "--task", "classify", "--data", str(data),
            "--out", str(tmp_path / "r2"), "--set", 'finetune.tune_decision="macro_f1"',
            "--set", "finetune.val_fraction=0"]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "finetune.tune_decision='macro_f1' tunes on val data" in err and "\n" not in err
    assert not (tmp_path / "r2" / "checkpoints").exists()


def test_eval_tunes_the_decision_of_a_finished_run(gpt_base, tmp_path, capsys):
    """`llmtrain eval RUN --tune-decision macro_f1` on a run trained without it: offsets for
    the best checkpoint saved, the plain argmax figures (the run's own) printed beside."""
    data = write_csv(tmp_path / "train.csv", sentiment_rows(300, imbalance=0.8))
    run = tmp_path / "run"
    res = _finetune(gpt_base, data, run, *_steps(12), "finetune.val_fraction=0.3",
                    "finetune.test_fraction=0.2")  # fmt: skip
    assert not (run / "decision.json").exists()
    capsys.readouterr()
    assert main(["eval", str(run), "--tune-decision", "macro_f1"]) == 0
    ev = json.loads(capsys.readouterr().out)
    d = json.loads((run / "decision.json").read_text())
    assert ev["decision"] == d and d["step"] == 12 and d["val_after"] >= d["val_before"]
    test = res["metrics"]["test"]
    assert ev["argmax_test"]["macro_f1"] == pytest.approx(test["macro_f1"])
    assert ev["argmax_test"]["recall"]["neg"] == pytest.approx(test["per_class"]["neg"]["recall"])
    assert ev["argmax_val"]["macro_f1"] == pytest.approx(d["val_before"])
    assert ev["val"]["macro_f1"] == pytest.approx(d["val_after"])
    import llmtrain as lt

    assert lt.evaluate(run)["decision"] == d  # kept for eval / predict from now on
    base_ckpt = next((gpt_base / "checkpoints").iterdir())
    with pytest.raises(Exception, match="fine-tuned classifiers"):
        lt.evaluate(base_ckpt, tune_decision="macro_f1")


def test_an_eval_without_the_best_metric_is_scored_by_its_loss():
    """ROC AUC is undefined on a val set holding one class: that eval compares its loss
    (said on the console) instead of minus the loss, which would keep the worst checkpoint."""
    from types import SimpleNamespace

    from llmtrain.finetune.task import FinetuneTask

    said = []
    task = SimpleNamespace(best_metric="roc_auc", say=said.append)
    assert FinetuneTask.score(task, {"val_roc_auc": 0.9, "val_loss": 0.3}) == -0.9
    assert FinetuneTask.score(task, {"val_loss": 0.3}) == 0.3
    assert said == ["val roc_auc undefined at this eval: its val loss is compared instead"]
