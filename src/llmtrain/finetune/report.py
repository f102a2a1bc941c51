"""What a fine-tuning run leaves beside its checkpoints: `finetune.json` (data counts, skipped
rows, parameters, best checkpoint, val/test metrics) and the confusion matrices as PNG
pictures, plus a small HTML page that shows them (`finetune_report.html`)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from llmtrain.utils.io import atomic_write_json

REPORT_FILE = "finetune.json"


def confusion_png(confusion: list[list[int]], names: list[str], path: Path, title: str) -> Path:
    """The confusion matrix (rows true, columns predicted) as a PNG with counts in the cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(names)
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * n, 1.0 + 0.9 * n), dpi=100)
    ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(n), names, rotation=45, ha="right")
    ax.set_yticks(range(n), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    top = max(max(r) for r in confusion) or 1
    for i in range(n):
        for j in range(n):
            v = confusion[i][j]
            ax.text(
                j, i, str(v), ha="center", va="center", color="white" if v > top / 2 else "black"
            )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_report(run_dir: Path, report: dict[str, Any], names: list[str] | None) -> Path:
    """finetune.json, confusion_{split}.png and finetune_report.html in `run_dir`."""
    atomic_write_json(run_dir / REPORT_FILE, report)
    rows, pictures = [], []
    for split in ("val", "test"):
        m = report.get("metrics", {}).get(split)
        if not m or names is None:
            continue
        png = confusion_png(
            m["confusion"], names, run_dir / f"confusion_{split}.png", f"{split} confusion"
        )
        pictures.append(f'<figure><img src="{png.name}"><figcaption>{split}</figcaption></figure>')
        for name, pc in m["per_class"].items():
            rows.append(
                f"<tr><td>{split}</td><td>{html.escape(name)}</td><td>{pc['precision']:.4f}</td>"
                f"<td>{pc['recall']:.4f}</td><td>{pc['f1']:.4f}</td><td>{pc['support']}</td></tr>"
            )
        rows.append(
            f"<tr><th>{split}</th><th>accuracy {m['accuracy']:.4f}</th><th colspan=4>macro-F1 "
            f"{m['macro_f1']:.4f}, weighted-F1 {m['weighted_f1']:.4f}"
            + (f", ROC-AUC {m['roc_auc']:.4f}" if "roc_auc" in m else "")
            + "</th></tr>"
        )
    page = (
        "<!doctype html><meta charset=utf-8><title>fine-tuning report</title>"
        f"<h1>{html.escape(str(run_dir))}</h1>"
        + _decision_line(report.get("decision"), names)
        + "<table border=1 cellpadding=4><tr><th>split</th><th>class</th><th>precision</th>"
        "<th>recall</th><th>F1</th><th>support</th></tr>"
        + "".join(rows)
        + "</table>"
        + "".join(pictures)
        + f"<pre>{html.escape(json.dumps({k: v for k, v in report.items() if k != 'metrics'}, indent=2, ensure_ascii=False))}</pre>"
    )
    out = run_dir / "finetune_report.html"
    out.write_text(page, encoding="utf-8")
    return out


def _decision_line(decision: dict[str, Any] | None, names: list[str] | None) -> str:
    """One sentence on a tuned decision (the metrics above the matrices include it)."""
    if not decision or names is None:
        return ""
    from llmtrain.finetune.decision import Decision, describe

    return f"<p>{html.escape(describe(Decision(**decision), names))}; the metrics below use it</p>"
