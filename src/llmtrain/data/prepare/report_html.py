"""`write_report_html(report, path)`: `report.json` as one self-contained, readable page.

Sections: inputs and totals; a table of every step (documents and bytes in/out, removals by
reason); a few examples of removed text per reason; the language mix; PII replacements;
splits with token counts; the tokenizer and its compression. No scripts, no external assets.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

REPORT_HTML = "report.html"
_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:3px 10px;border-bottom:1px solid #eee}
th{text-align:left;background:#f6f6f6}td.n{text-align:right;font-variant-numeric:tabular-nums}
.ex{white-space:pre-wrap;font:12px/1.35 ui-monospace,monospace;background:#fafafa;
border-left:3px solid #c33;padding:4px 8px;margin:4px 0;max-height:9em;overflow:auto}
.bar{display:inline-block;height:10px;background:#4a7}.muted{color:#777}
"""


def _n(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}"
    return f"{value:,}" if isinstance(value, int) else escape(str(value))


def _table(head: list[str], rows: list[list[Any]]) -> str:
    out = ["<table><tr>", *(f"<th>{escape(h)}</th>" for h in head), "</tr>"]
    for row in rows:
        cells = (
            f'<td class="n">{_n(c)}</td>' if isinstance(c, (int, float)) else f"<td>{c}</td>"
            for c in row
        )
        out += ["<tr>", *cells, "</tr>"]
    return "".join(out) + "</table>"


def _mib(n: int) -> str:
    return f"{n / 2**20:,.2f} MiB"


def _steps(report: dict[str, Any]) -> str:
    rows = []
    for step in report["steps"]:
        removed = ", ".join(
            f"{escape(k.removeprefix('removed_'))} {v:,}"
            for k, v in step.items()
            if k.startswith("removed_") and v
        )
        rows.append([f"<b>{escape(step['name'])}</b>", step.get("documents_in", step.get("documents_read", 0)),
                     step.get("documents_out", step.get("documents_read", 0)),
                     _mib(step.get("bytes_in", step.get("bytes_read", 0))),
                     _mib(step.get("bytes_out", step.get("bytes_read", 0))), removed or "—"])  # fmt: skip
    head = ["step", "docs in", "docs out", "bytes in", "bytes out", "removed (reason count)"]
    return _table(head, rows)


def _examples(report: dict[str, Any]) -> str:
    parts = []
    for step, reasons in report.get("examples", {}).items():
        for reason, items in reasons.items():
            parts.append(f"<h3>{escape(step)}: {escape(reason)}</h3>")
            parts += [
                f'<div class="ex"><span class="muted">{escape(e["id"])}</span>\n{escape(e["text"])}</div>'
                for e in items
            ]
    return "".join(parts) or "<p class=muted>nothing was removed</p>"


def _prefixed(report: dict[str, Any], step_name: str, prefix: str) -> dict[str, int]:
    for step in report["steps"]:
        if step["name"] == step_name:
            return {k.removeprefix(prefix): v for k, v in step.items() if k.startswith(prefix)}
    return {}


def _mix(counts: dict[str, int]) -> str:
    total = sum(counts.values()) or 1
    rows = [
        [escape(k), v, f'<span class="bar" style="width:{200 * v / total:.0f}px"></span> {100 * v / total:.1f}%']
        for k, v in sorted(counts.items(), key=lambda kv: -kv[1])
    ]  # fmt: skip
    return _table(["", "documents", "share"], rows)


def _language_changes(report: dict[str, Any]) -> str:
    """Documents removed per language label, and labels counted as another language."""
    removed = _prefixed(report, "language", "removed_language_")
    moved = _prefixed(report, "language", "relabelled_")
    rows = [[escape(k.removesuffix("_not_kept")), f"removed {v:,} (not in --languages)"]
            for k, v in sorted(removed.items(), key=lambda kv: -kv[1])]  # fmt: skip
    rows += [[escape(k.replace("_as_", " → ")), f"relabelled {v:,}"] for k, v in moved.items()]
    return _table(["language", "documents"], rows) if rows else ""


def render_report_html(report: dict[str, Any], title: str) -> str:
    tok, comp = report["tokenizer"], report["compression"]
    splits = [[escape(name), s["documents"], s["tokens"], _mib(s["bytes"]), s["shards"],
               s["bytes_per_token"], s["chars_per_token"]] for name, s in report["splits"].items()]  # fmt: skip
    body = [
        f"<h1>llmtrain prepare: {escape(title)}</h1>",
        "<p>inputs: " + ", ".join(f"<code>{escape(i)}</code>" for i in report["inputs"]) + "</p>",
        f"<p>documents kept: <b>{report['documents_kept']:,}</b>; total time "
        f"{sum(report['timings_s'].values()):.1f} s</p>",
        "<h2>Steps</h2>", _steps(report),
        "<h2>Removed text, a few examples per reason</h2>", _examples(report),
    ]  # fmt: skip
    langs = _prefixed(report, "language", "language_")
    if langs:
        body += ["<h2>Language mix</h2>", _mix(langs), _language_changes(report)]
    pii = _prefixed(report, "pii", "replaced_")
    if pii:
        body += [
            "<h2>PII replaced</h2>",
            _table(["type", "count"], [[k, v] for k, v in pii.items()]),
        ]
    bad = report["bad_inputs"]["items"]
    if bad:
        rows = [[escape(b["where"]), escape(b["kind"]), escape(b["detail"]), b.get("lost_bytes", 0)]
                for b in bad]  # fmt: skip
        lost = report["bad_inputs"].get("lost_bytes", 0)
        body += [f"<h2>Bad inputs skipped ({lost:,} input bytes reached no document)</h2>",
                 _table(["where (file:line, file@byte, file[record])", "kind", "detail",
                         "bytes lost"], rows)]  # fmt: skip
        by_file = report["bad_inputs"].get("lost_bytes_by_file", {})
        if by_file:
            body += ["<h3>Lost bytes per file</h3>",
                     _table(["file", "bytes lost"], [[escape(k), v] for k, v in by_file.items()])]  # fmt: skip
    ignored = report.get("unsupported_files_ignored", {})
    if ignored:
        body += ["<h2>Files not read</h2>",
                 _table(["type", "files"], [[escape(k), v] for k, v in ignored.items()])]  # fmt: skip
    body += [
        "<h2>Splits and tokens</h2>",
        _table(["split", "documents", "tokens", "bytes", "shards", "bytes/token", "chars/token"], splits),
        "<h2>Tokenizer</h2>",
        _table(["", ""], [[k, v] for k, v in tok.items() if v is not None]
               + [["val bytes per token", comp["val_bytes_per_token"]],
                  ["val chars per token", comp["val_chars_per_token"]]]),
    ]  # fmt: skip
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<style>{_CSS}</style></head><body>{''.join(body)}</body></html>"
    )


def write_report_html(report: dict[str, Any], path: Path, title: str) -> None:
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(render_report_html(report, title), encoding="utf-8")
    tmp.replace(path)
