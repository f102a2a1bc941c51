"""Package dependencies point one way (docs/architecture.md): a lower layer never imports a
higher one, at module level or inside functions."""

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "src" / "llmtrain"

# lower number = lower layer; a module may import only from layers <= its own
LAYER = {
    "errors": 0,
    "utils": 0,
    "config": 1,
    "tokenizer": 2,
    "models": 2,
    "optim": 2,
    "objectives": 3,
    "data": 3,
    "distributed": 4,
    "checkpoint": 4,
    "monitor": 4,
    "eval": 4,
    "train": 5,
    "generation": 6,
    "export": 6,
    "sweep": 6,  # Optuna search over runs of the one Trainer
    "plan": 6,  # sizes a run from a budget: measures a real train step
    "cli": 7,
    "api": 7,  # the Python API; the CLI commands are shells over it
}
# checkpoint.inference rebuilds a model from a run config (train.config): a documented exception
ALLOWED = {("checkpoint/inference.py", "train")}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("llmtrain."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("llmtrain."):
                    found.add(a.name.split(".")[1])
    return found


def test_dependencies_point_one_way():
    bad = []
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG)
        top = rel.parts[0].removesuffix(".py")
        if top not in LAYER:
            continue
        for dep in _imports(path):
            if dep in LAYER and LAYER[dep] > LAYER[top] and (rel.as_posix(), dep) not in ALLOWED:
                bad.append(f"{rel} imports llmtrain.{dep}")
    assert not bad, "\n".join(bad)


def test_every_package_has_a_layer():
    tops = {p.name.removesuffix(".py") for p in PKG.iterdir() if not p.name.startswith(("_", "."))}
    tops -= {"py.typed"}
    assert tops <= set(LAYER), f"add these packages to LAYER: {sorted(tops - set(LAYER))}"
