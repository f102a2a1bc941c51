"""`llmtrain train --init-from HF_DIR`: a tiny random HF Llama saved to disk starts the run
with its exact weights (first logits equal transformers'), training continues from there
(loss falls), and a resume never reloads the HF weights over the checkpoint."""

from __future__ import annotations

import json

import pytest
import torch

from llmtrain.cli.main import main
from llmtrain.monitor.metrics import read_metrics
from llmtrain.train.config import load_run_config
from llmtrain.train.trainer import Trainer

from .conftest import tiny_overrides

transformers = pytest.importorskip("transformers")


def hf_llama(path, vocab: int) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(
        vocab_size=vocab,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=32,
    )
    hf = transformers.LlamaForCausalLM(cfg).eval()
    hf.save_pretrained(path)
    return hf


def test_init_from_hf_starts_at_its_weights_and_keeps_training(char_data, tmp_path):
    vocab = json.loads((char_data / "manifest.json").read_text())["tokenizer"]["vocab_size"]
    hf = hf_llama(tmp_path / "hf", vocab)
    sets = [s for s in tiny_overrides(char_data, 12) if not s.startswith("model.")]
    # the CLI path: config.json sets the model section
    from llmtrain.models.hf_interop import hf_run_defaults

    cfg = load_run_config(overrides=sets, base=hf_run_defaults(tmp_path / "hf"))
    trainer = Trainer(cfg, tmp_path / "run", show_progress=False)
    idx = torch.randint(0, vocab, (2, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert (trainer.model(idx) - hf(idx).logits).abs().max() <= 1e-4
    result = trainer.fit()
    losses = [r["loss"] for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if "loss" in r]
    assert losses[-1] < losses[0] and result["step"] == 12


def test_cli_init_from_and_resume_does_not_reload(char_data, tmp_path):
    vocab = json.loads((char_data / "manifest.json").read_text())["tokenizer"]["vocab_size"]
    hf_llama(tmp_path / "hf", vocab)
    sets = [s for s in tiny_overrides(char_data, 4) if not s.startswith("model.")]
    argv = ["train", "--out", str(tmp_path / "run"), "--quiet", "--init-from", str(tmp_path / "hf")]
    for s in sets:
        argv += ["--set", s]
    assert main(argv) == 0
    run_cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert run_cfg["model"]["init_from"] == str(tmp_path / "hf")
    assert run_cfg["model"]["n_kv_head"] == 1 and run_cfg["model"]["pos_embedding"] == "rope"
    trainer = Trainer(
        load_run_config(base=run_cfg), tmp_path / "run", resume=True, show_progress=False
    )
    ckpt = trainer.model.state_dict()
    from safetensors.torch import load_file

    from llmtrain.checkpoint import latest_checkpoint

    saved = load_file(
        str(latest_checkpoint(tmp_path / "run" / "checkpoints") / "model.safetensors")
    )
    assert all(torch.equal(ckpt[k], saved[k]) for k in saved)  # the checkpoint, not HF's


def test_init_from_roberta_continues_mlm_and_exports_back(char_data, tmp_path):
    """A RoBERTa directory (PAD 1, positions from row 2) starts an MLM run with its exact
    logits; the run exports back as RoBERTa (model.hf_target) with the same logits."""
    vocab = json.loads((char_data / "manifest.json").read_text())["tokenizer"]["vocab_size"]
    torch.manual_seed(0)
    cfg = transformers.RobertaConfig(
        vocab_size=vocab + 1,  # + MASK
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=34,
    )
    hf = transformers.RobertaForMaskedLM(cfg).eval()
    hf.save_pretrained(tmp_path / "hf")
    from llmtrain.export import export_hf
    from llmtrain.models.hf_interop import hf_run_defaults

    base = hf_run_defaults(tmp_path / "hf")
    assert base["train"]["objective"] == "mlm" and base["model"]["block_size"] == 32
    sets = [s for s in tiny_overrides(char_data, 4) if not s.startswith("model.")]
    trainer = Trainer(
        load_run_config(overrides=sets, base=base), tmp_path / "run", show_progress=False
    )
    idx = torch.randint(2, vocab, (2, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert (trainer.model(idx) - hf(idx).logits).abs().max() <= 1e-4
    assert trainer.fit()["step"] == 4
    res = export_hf(trainer.model, tmp_path / "back")
    assert res["target"] == "roberta" and res["max_abs_diff"] <= 1e-4
