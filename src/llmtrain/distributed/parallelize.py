"""`parallelize(model, ...)`: the transforms that turn a built model into the module the loop
calls, applied in ONE order (torchtitan's):

    0. tensor parallel            `distributed.tensor_parallel = N`: each block split over the
                                  `tp` dimension of a (dp, tp) mesh (tensor_parallel.py)
    1. activation checkpointing   each block recomputes its activations in backward
    2. torch.compile              in place (`Module.compile()`, so the state dict keeps its
                                  names: no `_orig_mod.` prefix): the whole forward as one
                                  graph, or each block alone (`train.compile_scope`),
                                  in Inductor's `train.compile_mode`
    3. data parallel              `ddp`: DistributedDataParallel around the model (returned
                                  as the forward callable; the model itself stays unwrapped)
                                  `fsdp`: FSDP2 `fully_shard` on each block, then the root
                                  (in place: parameters become DTensor shards; under TP
                                  on the `dp` dimension of the mesh, so 2-D shards)
                                  `deepspeed`: nothing here; the DeepSpeed engine wraps the
                                  model once the optimizer exists (deepspeed_engine.py)

The order matters: checkpointing wraps the block's forward that compile then traces, and
FSDP's all-gather hooks go outside the compiled region. Build the optimizer AFTER this call
(under FSDP it must see the sharded parameters). The model files know nothing of any of it.
`grad_sync(module, enabled)` turns gradient synchronisation off for the micro-batches of an
accumulation that are not the last (DeepSpeed: its accumulation boundary).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from llmtrain.distributed.config import DistributedConfig
from llmtrain.distributed.process_group import DistInfo
from llmtrain.errors import ConfigError


def _blocks(model: nn.Module) -> list[nn.Module]:
    """The repeated layers: every `blocks` ModuleList (decoder, encoder, decoder of an
    encoder-decoder); the whole model when there is none."""
    found = [m for name, m in model.named_modules() if name.endswith("blocks")]
    blocks = [b for lst in found if isinstance(lst, nn.ModuleList) for b in lst]
    return blocks or [model]


def apply_activation_checkpointing(model: nn.Module) -> None:
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (
        apply_activation_checkpointing as _apply,
    )

    ids = {id(b) for b in _blocks(model)}
    _apply(model, check_fn=lambda m: id(m) in ids)


CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")  # Inductor modes that capture graphs


def apply_compile(model: nn.Module, scope: str, mode: str = "default") -> None:
    """Compile in place (`Module.compile()`, the module keeps its class and state dict):
    the whole forward as one graph (`scope="model"`) or each block alone (`"blocks"`), in
    Inductor's `mode` (`train.compile_mode`)."""
    for module in [model] if scope == "model" else _blocks(model):
        module.compile(mode=inductor_mode(mode))


def inductor_mode(mode: str, cuda_graphs: bool = True) -> str | None:
    """`torch.compile`'s mode for `train.compile_mode` (None: Inductor's default); with
    `cuda_graphs=False`, the same mode without CUDA graphs."""
    if not cuda_graphs:
        mode = {"reduce-overhead": "default", "max-autotune": "max-autotune-no-cudagraphs"}.get(
            mode, mode
        )
    return None if mode == "default" else mode


def captures_cuda_graphs(mode: str, device: torch.device, compiled: bool) -> bool:
    """Whether the compiled graphs will be replayed as CUDA graphs (Inductor skips them on
    other devices, whatever the mode)."""
    return compiled and device.type == "cuda" and mode in CUDA_GRAPH_MODES


def check_compile_mode(mode: str, cfg: DistributedConfig, info: DistInfo) -> str:
    """CUDA-graph modes replay one process's captured kernels, with the gradients in fixed
    buffers the loop zeroes in place (`Engine.keep_grads`); collectives between or inside
    them (DDP's all-reduce hooks, FSDP's gathers, TP) and DeepSpeed's own gradient buffers
    are not what this project has measured or tested on a GPU: one process, no DeepSpeed."""
    if mode in CUDA_GRAPH_MODES and (info.is_distributed or cfg.strategy == "deepspeed"):
        where = "DeepSpeed" if cfg.strategy == "deepspeed" else f"{info.world_size} processes"
        raise ConfigError(
            f"train.compile_mode={mode} captures CUDA graphs, which run in one process without "
            f"DeepSpeed (this run: {where}); set train.compile_mode=default or "
            "max-autotune-no-cudagraphs"
        )
    return mode


def check_compile_scope(scope: str, cfg: DistributedConfig, info: DistInfo) -> str:
    """`train.compile_scope=model` puts the whole forward in one graph, which per-block
    wrappers (FSDP units, tensor-parallel plans, checkpoint wrappers) would break up."""
    sharded = info.is_distributed and cfg.strategy == "fsdp"
    if scope == "model" and (sharded or info.tp > 1 or cfg.activation_checkpointing):
        raise ConfigError(
            "train.compile_scope=model compiles the whole forward as one graph, which FSDP, "
            "tensor parallel and activation checkpointing split per block; set "
            "train.compile_scope=blocks"
        )
    return scope


def apply_fsdp(
    model: nn.Module, device: torch.device, reshard_after_forward: bool, mesh=None
) -> None:
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    if mesh is None:
        mesh = init_device_mesh(device.type, (torch.distributed.get_world_size(),))
    for block in _blocks(model):
        if block is not model:
            fully_shard(block, mesh=mesh, reshard_after_forward=reshard_after_forward)
    fully_shard(model, mesh=mesh, reshard_after_forward=reshard_after_forward)


def parallelize(
    model: nn.Module,
    cfg: DistributedConfig,
    info: DistInfo,
    *,
    device: torch.device,
    compile: bool = False,
    compile_scope: str = "blocks",
    compile_mode: str = "default",
    activation_checkpointing: bool = False,
) -> nn.Module:
    """Apply TP → checkpointing → compile → DDP/FSDP2; return the module to call in the loop."""
    mesh = None
    if info.tp > 1:
        from torch.distributed.device_mesh import init_device_mesh

        from llmtrain.distributed.tensor_parallel import apply_tensor_parallel

        if cfg.strategy == "ddp" and info.dp_size > 1:
            raise ConfigError(
                f"distributed.tensor_parallel={info.tp} with {info.dp_size} data-parallel groups "
                "needs distributed.strategy=fsdp (FSDP2 x TP on a 2-D mesh), not ddp"
            )
        shape = (info.dp_size, info.tp)
        mesh = init_device_mesh(device.type, shape, mesh_dim_names=("dp", "tp"))
        apply_tensor_parallel(model, mesh["tp"])
    if activation_checkpointing:
        apply_activation_checkpointing(model)
    if compile:
        scope = check_compile_scope(compile_scope, cfg, info)
        apply_compile(model, scope, check_compile_mode(compile_mode, cfg, info))
    if not info.is_distributed or cfg.strategy == "deepspeed":
        return model
    if cfg.strategy == "fsdp":
        if mesh is None or info.dp_size > 1:
            apply_fsdp(
                model, device, cfg.reshard_after_forward, None if mesh is None else mesh["dp"]
            )
        return model
    if info.tp > 1:  # TP alone (world == tp): no data parallelism to wrap
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    return DDP(model, device_ids=[device.index] if device.type == "cuda" else None)


@contextlib.contextmanager
def grad_sync(module: nn.Module, enabled: bool) -> Iterator[None]:
    """Skip the gradient all-reduce/reduce-scatter of this backward when not `enabled`."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    if enabled:
        yield
    elif isinstance(module, DDP):
        with module.no_sync():
            yield
    elif hasattr(module, "set_gradient_accumulation_boundary"):  # DeepSpeed's engine
        module.set_gradient_accumulation_boundary(False)
        try:
            yield
        finally:
            module.set_gradient_accumulation_boundary(True)
    elif hasattr(module, "set_requires_gradient_sync"):  # FSDP2
        module.set_requires_gradient_sync(False)
        try:
            yield
        finally:
            module.set_requires_gradient_sync(True)
    else:
        yield


def is_sharded(model: nn.Module) -> bool:
    """True when parameters are FSDP2 DTensor shards."""
    from torch.distributed.tensor import DTensor

    return any(isinstance(p, DTensor) for p in model.parameters())


def full_norm(norm: torch.Tensor) -> torch.Tensor:
    """A grad norm as a plain tensor (clip_grad_norm_ returns a DTensor under FSDP2)."""
    from torch.distributed.tensor import DTensor

    return norm.full_tensor() if isinstance(norm, DTensor) else norm
