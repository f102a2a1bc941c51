"""Every objective trains through the one Trainer loop: loss falls, eval uses the objective,
resume stays bitwise exact with dynamic masking, and a misfit objective is refused."""

from __future__ import annotations

import pytest
import torch

from llmtrain.errors import ConfigError
from llmtrain.monitor.metrics import read_metrics
from llmtrain.train.config import load_run_config
from llmtrain.train.trainer import Trainer

from .conftest import tiny_overrides

FAMILIES = {
    "prefix_lm": {},
    "mlm": {"model.architecture": '"encoder"', "objective.whole_word": "true"},
    "sop": {
        "model.architecture": '"encoder"',
        "model.sentence_head": "true",
        "model.type_vocab_size": 2,
        "model.norm_position": '"post"',
        "model.embedding_norm": "true",
    },
    "electra": {
        "model.architecture": '"encoder"',
        "model.generator_scale": 0.5,
        "model.embedding_size": 16,
        "model.norm_position": '"post"',
        "model.embedding_norm": "true",
    },
    "span": {
        "model.architecture": '"encoder_decoder"',
        "model.pos_embedding": '"relative"',
        "model.tie_embeddings": "false",  # T5.1.1: the tied head's d^-0.5 rescale learns slowly
    },
}


def train(data, out, objective, steps=20, resume=False, **extra):
    sets = tiny_overrides(data, steps, **{"train.objective": f'"{objective}"', **extra})
    cfg = load_run_config(overrides=sets)
    trainer = Trainer(cfg, out, resume=resume, show_progress=False)
    return trainer, trainer.fit()


# the task metric each objective adds to the train lines of metrics.jsonl
METRIC = {"mlm": "token_acc", "sop": "sentence_acc", "electra": "rtd_acc", "span": "token_acc"}


@pytest.mark.parametrize("objective", list(FAMILIES))
def test_objective_trains_and_loss_falls(char_data, tmp_path, objective):
    trainer, result = train(char_data, tmp_path / objective, objective, **FAMILIES[objective])
    lines = [r for r in read_metrics(tmp_path / objective / "metrics.jsonl") if "loss" in r]
    losses = [r["loss"] for r in lines]
    if objective in METRIC:
        assert all(0.0 <= r[METRIC[objective]] <= 1.0 for r in lines)
    assert sum(losses[-3:]) / 3 < losses[0] - 0.3, losses  # masked losses are noisy
    assert result["val_loss"] < losses[0]
    assert (
        trainer.cfg.model.vocab_size >= trainer.objective.tok_vocab + trainer.objective.extra_vocab
    )


def test_mlm_resume_is_bitwise_exact(char_data, tmp_path):
    kw = {**FAMILIES["mlm"], "train.lr_decay_steps": 20}  # same schedule for the 10-step run
    full, _ = train(char_data, tmp_path / "full", "mlm", steps=20, **kw)
    train(char_data, tmp_path / "half", "mlm", steps=10, **kw)
    resumed, _ = train(char_data, tmp_path / "half", "mlm", steps=20, resume=True, **kw)
    for (name, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name


def test_misfit_objective_is_refused_with_the_reason(char_data):
    sets = tiny_overrides(char_data, 2, **{"train.objective": '"mlm"'})
    with pytest.raises(ConfigError, match="bidirectional"):
        load_run_config(overrides=sets)


@pytest.mark.parametrize(("objective", "ppl"), [("prefix_lm", True), ("electra", False)])
def test_val_line_shows_ppl_only_for_a_token_loss(char_data, tmp_path, capsys, objective, ppl):
    """ELECTRA's loss is generator MLM + 50 x discriminator BCE: exp of it is no perplexity."""
    train(char_data, tmp_path / objective, objective, steps=4, **FAMILIES[objective])
    out = capsys.readouterr()
    lines = [x for x in (out.out + out.err).splitlines() if ": val loss " in x]
    assert lines and all(("ppl" in x and "bpb" in x) == ppl for x in lines), lines


def test_the_flop_count_leaves_out_the_skipped_head_positions(char_data, tmp_path):
    """MLM's LM head runs at the masked tokens only; the step's FLOPs (hence FLOP/s and
    MFU) count the head there, not at every token."""
    from llmtrain.models.flops import flops_per_token, head_flops_per_token

    sets = {"train.objective": '"mlm"', "model.architecture": '"encoder"'}
    cfg = load_run_config(overrides=tiny_overrides(char_data, 1, **sets))
    trainer = Trainer(cfg, tmp_path / "run", show_progress=False)
    out = trainer.train_step()
    model_cfg = trainer.cfg.model  # vocab_size set from the tokenizer
    fpt = flops_per_token(model_cfg, model_cfg.block_size)
    head = head_flops_per_token(model_cfg)
    assert trainer.flops_per_token == fpt and 0 < head < fpt
    skipped = out["tokens"] - out["totals"]["count"]  # MLM: the head ran at the masked tokens
    assert out["flops"] == pytest.approx(out["tokens"] * fpt - int(skipped) * head, rel=1e-12)
