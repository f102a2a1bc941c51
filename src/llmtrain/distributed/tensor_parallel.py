"""Tensor parallelism as a transform over a built `Transformer` (PyTorch DTensor, Megatron-style
with sequence parallelism), applied first in `parallelize` (torchtitan's order: TP →
activation checkpointing → compile → FSDP2) on the `tp` dimension of a (dp, tp) device mesh.

Per block: the norms are `SequenceParallel` (activations between blocks are split along the
sequence), the attention's qkv and the MLP's first matmul are column-parallel, the output
projections row-parallel (a reduce-scatter back onto the sequence split). Each rank then
computes n_head / tp heads and ffn_dim / tp hidden units. The qkv (and a gated MLP's gate+up)
matrix is ONE fused Linear whose rows are [q | k | v]; its weight stays an ordinary
`Shard(0)` DTensor (so checkpoints keep the model's own layout and DCP reshards them between
any TP degrees), and `FusedColwiseParallel` all-gathers its output and keeps each part's
slice of this rank — one all-gather per block that separate q/k/v weights would avoid.
Everything outside the blocks (embeddings, final norm, head) is replicated on the tp mesh.
The model files know nothing of it: head counts per rank are set on the attention modules.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from llmtrain.errors import ConfigError


def check_tensor_parallel_model(model: nn.Module, tp: int) -> None:
    """ConfigError (one line) when this model cannot be split `tp` ways."""
    cfg = getattr(model, "cfg", None)
    if cfg is None or not hasattr(model, "blocks"):
        raise ConfigError(
            f"distributed.tensor_parallel={tp} supports the decoder/encoder Transformer only "
            f"(got {type(model).__name__}); set distributed.tensor_parallel=1"
        )
    unsupported = {
        "model.n_experts > 0": cfg.n_experts > 0,
        f"model.pos_embedding={cfg.pos_embedding}": cfg.pos_embedding
        in ("alibi", "relative", "sinusoidal"),
        "model.qk_norm": cfg.qk_norm,
        "model.sentence_head": cfg.sentence_head,
    }
    for what, bad in unsupported.items():
        if bad:
            raise ConfigError(
                f"distributed.tensor_parallel={tp} does not support {what} yet; "
                "set distributed.tensor_parallel=1 (FSDP/DDP/DeepSpeed support it)"
            )
    for name, n in (("model.n_head", cfg.n_head), ("model.n_kv_head", cfg.kv_heads)):
        if n % tp != 0:
            raise ConfigError(
                f"distributed.tensor_parallel={tp} does not divide {name}={n}: each rank "
                f"computes whole heads; pick a tensor_parallel that divides {n}"
            )
    if cfg.ffn_dim % tp != 0:
        raise ConfigError(
            f"distributed.tensor_parallel={tp} does not divide the MLP width {cfg.ffn_dim} "
            "(model.intermediate_size); pick one that divides it"
        )


def _fused_colwise(parts: tuple[int, ...], input_layouts: Any) -> Any:
    from torch.distributed.tensor import DTensor, Partial, Replicate
    from torch.distributed.tensor.parallel import ColwiseParallel

    class FusedColwiseParallel(ColwiseParallel):
        """ColwiseParallel for a Linear whose output is several parts side by side: the
        output is gathered and each rank keeps its 1/tp of every part, in order."""

        @staticmethod
        def _prepare_output_fn(output_layouts, use_local_output, mod, outputs, device_mesh):
            assert isinstance(outputs, DTensor)
            # each rank's gradient covers its slices only: partial sums, reduce-scattered
            full = outputs.redistribute(placements=[Replicate()])
            full = full.to_local(grad_placements=[Partial()])
            tp, r = device_mesh.size(), device_mesh.get_local_rank()
            pieces = [p.chunk(tp, dim=-1)[r] for p in full.split(list(parts), dim=-1)]
            return torch.cat(pieces, dim=-1)

    return FusedColwiseParallel(input_layouts=input_layouts)


def _block_plan(block: nn.Module, tp: int) -> dict[str, Any]:
    from torch.distributed.tensor import Shard
    from torch.distributed.tensor.parallel import (
        ColwiseParallel,
        PrepareModuleInput,
        RowwiseParallel,
        SequenceParallel,
    )

    attn, mlp = block.attn, block.mlp
    hs = attn.head_dim
    qkv = (attn.n_head * hs, attn.n_kv_head * hs, attn.n_kv_head * hs)
    seq = Shard(1)
    plan: dict[str, Any] = {
        "ln_1": SequenceParallel(),
        # the attention sees a DTensor, so x.shape inside it is the global (B, T, C)
        "attn": PrepareModuleInput(
            input_layouts=(seq, None, None, None),
            desired_input_layouts=(seq, None, None, None),
        ),
        "attn.qkv": _fused_colwise(qkv, seq),
        "attn.proj": RowwiseParallel(output_layouts=seq),
        "ln_2": SequenceParallel(),
        "mlp.proj": RowwiseParallel(output_layouts=seq),
    }
    if mlp.gate_act is not None:  # gated: fc rows are [gate | up]
        half = mlp.fc.out_features // 2
        plan["mlp.fc"] = _fused_colwise((half, half), seq)
    else:
        plan["mlp.fc"] = ColwiseParallel(input_layouts=seq)
    return plan


def _replicate_rest(model: nn.Module, mesh: Any) -> None:
    """Parameters outside the TP plan become Replicate DTensors on the tp mesh, so every
    parameter is a DTensor of one mesh (the optimizer, clipping and FSDP2 need that)."""
    from torch.distributed.tensor import DTensor, Replicate

    for module in model.modules():
        for name, p in list(module.named_parameters(recurse=False)):
            if not isinstance(p, DTensor):
                d = DTensor.from_local(p.data, mesh, [Replicate()], run_check=False)
                module.register_parameter(name, nn.Parameter(d, requires_grad=p.requires_grad))


def apply_tensor_parallel(model: nn.Module, tp_mesh: Any) -> None:
    """Split every block of `model` over `tp_mesh` (in place)."""
    from torch.distributed.tensor import Replicate, Shard
    from torch.distributed.tensor.parallel import (
        PrepareModuleInput,
        PrepareModuleOutput,
        parallelize_module,
    )

    tp = tp_mesh.size()
    check_tensor_parallel_model(model, tp)
    blocks = list(model.blocks)
    for block in blocks:
        parallelize_module(block, tp_mesh, _block_plan(block, tp))
        block.attn.n_head //= tp  # this rank's heads (the fused qkv output is sliced so)
        block.attn.n_kv_head //= tp
    rep, seq = Replicate(), Shard(1)
    # the residual stream enters the blocks split along the sequence and leaves whole
    PrepareModuleInput(
        input_layouts=(rep, None, None, None),
        desired_input_layouts=(seq, None, None, None),
        use_local_output=True,
    )._apply(blocks[0], tp_mesh)
    PrepareModuleOutput(
        output_layouts=seq, desired_output_layouts=rep, use_local_output=False
    )._apply(blocks[-1], tp_mesh)
    # token ids (and segment ids, the head's positions) in, plain logits out
    kwargs = {"token_type": rep, "positions": rep}
    parallelize_module(
        model,
        tp_mesh,
        PrepareModuleInput(
            input_layouts=(rep,),
            desired_input_layouts=(rep,),
            input_kwarg_layouts=kwargs,
            desired_input_kwarg_layouts=kwargs,
        ),
    )
    PrepareModuleOutput(
        output_layouts=rep, desired_output_layouts=rep, use_local_output=True
    )._apply(model, tp_mesh)
    _replicate_rest(model, tp_mesh)
