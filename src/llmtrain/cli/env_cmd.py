"""`llmtrain env`: what this machine offers llmtrain — Python, torch, CUDA and each GPU, CPU
threads and bf16 support, versions of key libraries, and what is missing for which feature."""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import os
import platform
import sys

# library -> the feature that needs it
OPTIONAL = {
    "transformers": "Hugging Face export/import and parity checks",
    "tensorboard": "TensorBoard logging",
    "wandb": "Weights & Biases logging",
    "mlflow": "MLflow logging",
    "sentencepiece": "SentencePiece tokenizers",
}
REQUIRED = ("torch", "numpy", "tokenizers", "safetensors", "rich")


def _version(name: str) -> str | None:
    """Version of the package that provides module `name`: its own distribution, else any
    other that installs it (mlflow-skinny installs `mlflow`), named beside the version."""
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        pass
    for dist in md.packages_distributions().get(name, []):
        try:
            return f"{md.version(dist)} ({dist})"
        except md.PackageNotFoundError:
            continue
    return None


def collect() -> dict:
    import torch

    from llmtrain import __version__
    from llmtrain.train.precision import cpu_has_native_bf16

    gpus = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            prop = torch.cuda.get_device_properties(i)
            gpus.append(
                {
                    "index": i,
                    "name": prop.name,
                    "memory_gb": round(prop.total_memory / 2**30, 1),
                    "capability": f"{prop.major}.{prop.minor}",
                    "bf16": torch.cuda.is_bf16_supported(),
                }
            )
    return {
        "llmtrain": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_native_bf16": cpu_has_native_bf16(),
        "torch": torch.__version__,
        "cuda_available": torch.cuda.is_available(),
        "cuda_version": torch.version.cuda,
        "gpus": gpus,
        "distributed_backends": [b for b in ("gloo", "nccl") if _backend(b)],
        "libraries": {n: _version(n) for n in (*REQUIRED, *OPTIONAL)},
        "missing": {n: feat for n, feat in OPTIONAL.items() if _version(n) is None},
    }


def _backend(name: str) -> bool:
    import torch.distributed as dist

    if not dist.is_available():
        return False
    return bool(getattr(dist, f"is_{name}_available", lambda: False)())


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("env", help="check the environment", description=__doc__)
    p.add_argument("--json", action="store_true", help="print JSON only")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    info = collect()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"llmtrain {info['llmtrain']}  python {info['python']}  {info['platform']}")
    print(
        f"torch {info['torch']}  threads {info['torch_threads']}/{info['cpu_count']} cores  "
        f"CPU native bf16: {'yes' if info['cpu_native_bf16'] else 'no'}"
    )
    if info["cuda_available"]:
        print(f"CUDA {info['cuda_version']}")
        for g in info["gpus"]:
            print(
                f"  GPU {g['index']}: {g['name']}, {g['memory_gb']} GiB, sm {g['capability']}, "
                f"bf16 {'yes' if g['bf16'] else 'no'}"
            )
    else:
        print("CUDA: not available (training runs on the CPU)")
    print("distributed backends: " + (", ".join(info["distributed_backends"]) or "none"))
    for name, ver in info["libraries"].items():
        print(f"  {name:<14} {ver or '-'}")
    for name, feat in info["missing"].items():
        print(f"missing {name}: needed for {feat} (pip install {name})")
    return 0
