"""MediaWiki language-conversion markup (`-{zh-hans:A;zh-hant:B}-`, `-{A}-`, `-{T|A}-`),
which Chinese Wikipedia dumps keep in the text: `resolve_conversion_markup` replaces each span
with the text a reader sees (the simplified variant when several are given), so the C4
curly-bracket rule (a code detector) no longer drops clean Chinese paragraphs.
"""

from __future__ import annotations

import re

# -{ ... }- with no braces inside: the only shape the markup takes in article text
_SPAN = re.compile(r"-\{([^{}\n]*)\}-")
_VARIANT = re.compile(r"^\s*(zh(?:-[a-z]+)?)\s*:\s*(.*?)\s*$", re.S)
_FLAGS = re.compile(r"^([A-Za-z;]+)\|(.*)$", re.S)  # "T|...", "H|...", "A|..."
_HIDDEN_FLAGS = frozenset("THD-")  # title, hidden rule, description, removal: display nothing
VARIANT_ORDER = ("zh-hans", "zh-cn", "zh-sg", "zh-my", "zh", "zh-hant", "zh-tw", "zh-hk", "zh-mo")


def _shown(body: str) -> str:
    flags = _FLAGS.match(body)
    if flags:
        if set(flags.group(1).replace(";", "")) & _HIDDEN_FLAGS:
            return ""
        body = flags.group(2)
    variants = {}
    for part in body.split(";"):
        m = _VARIANT.match(part)
        if m:
            variants.setdefault(m.group(1), m.group(2))
    if not variants:
        return body  # -{A}-: text protected from conversion, shown as is
    return next((variants[v] for v in VARIANT_ORDER if v in variants), next(iter(variants.values())))  # fmt: skip


def resolve_conversion_markup(text: str) -> tuple[str, int]:
    """`text` with every `-{...}-` span replaced by what it displays, and the number of spans."""
    if "-{" not in text:
        return text, 0
    return _SPAN.subn(lambda m: _shown(m.group(1)), text)
