"""A LoRA classifier fine-tuned under 2-process DDP or FSDP2 (gloo) ends with the weights of
one process: fine-tuning goes through the same distributed loop as pre-training, frozen base
weights and trainable adapters sharded side by side under FSDP2."""

import pytest
import torch

from tests.distributed.conftest import run_distributed
from tests.unit.finetune.conftest import make_base_run, sentiment_rows, write_csv

SETS = [
    "train.max_steps=3",
    "train.batch_size=8",
    "train.micro_batch_size=2",
    "train.lr=3e-3",
    "train.warmup_steps=0",
    "train.eval_every=3",
    "train.checkpoint_every=3",
    "finetune.head.dropout=0.0",
]


def _finetune(base, data, out, strategy):
    from llmtrain.finetune.api import finetune

    finetune(
        str(base),
        task="classify",
        data=str(data),
        out=out,
        lora_rank=4,
        show_progress=False,
        overrides=[*SETS, f'distributed.strategy="{strategy}"'],
        say=lambda m: None,
    )


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_lora_classifier_distributed_equals_single_process(tmp_path, strategy):
    base = make_base_run(tmp_path, "gpt2-tiny")
    data = write_csv(tmp_path / "train.csv", sentiment_rows(80))
    torch.set_num_threads(1)
    _finetune(base, data, tmp_path / "one", "ddp")
    run_distributed(_finetune, 2, base, data, tmp_path / "dist", strategy)
    a = _weights(tmp_path / "one/checkpoints/step_000003")
    b = _weights(tmp_path / "dist/checkpoints/step_000003")
    assert any("lora_B" in k for k in a) and a.keys() == b.keys()
    assert any(not torch.equal(a[k], torch.zeros_like(a[k])) for k in a if "lora_B" in k)
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=1e-5)


def _weights(ckpt):
    """The full weights of a checkpoint (model.safetensors, or FSDP2's sharded DCP files),
    through the loader eval/generate/export use."""
    from llmtrain.checkpoint.inference import load_trained

    return load_trained(ckpt).model.state_dict()
