"""Text normalisation and the length filter.

`Normalise`: Unicode NFC, every line ending to "\n", control characters other than "\n" and
"\t" removed, trailing whitespace stripped from each line. `MinLength` then drops documents
that are blank (only whitespace) or shorter than `min_chars` characters.
"""

from __future__ import annotations

import re
import unicodedata

from llmtrain.data.prepare.documents import Document, Step

_LINE_ENDINGS = re.compile(r"\r\n|[\r\x85\u2028\u2029]")
# C0 and C1 controls except \t (09) and \n (0a), plus DEL and the BOM / zero-width no-break space.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ufeff]")
_TRAILING_SPACE = re.compile(r"[^\S\n]+(?=\n|\Z)")


def normalise_text(text: str) -> str:
    """The normalised form of `text` (see the module docstring)."""
    return Normalise().process(Document(text=text, id="", source="")).text


class Normalise(Step):
    """Normalise every document; counts how many documents each rule changed."""

    name = "normalise"

    def process(self, doc: Document) -> Document:
        text, n_endings = _LINE_ENDINGS.subn("\n", doc.text)
        self.stats["changed_line_endings"] += n_endings > 0
        text, n_controls = _CONTROL.subn("", text)
        self.stats["changed_control_chars"] += n_controls > 0
        self.stats["control_chars_removed"] += n_controls
        if not unicodedata.is_normalized("NFC", text):
            self.stats["changed_nfc"] += 1
            text = unicodedata.normalize("NFC", text)
        doc.text = _TRAILING_SPACE.sub("", text)
        return doc


class MinLength(Step):
    """Drop blank documents (reason `empty`) and ones under `min_chars` characters (`too_short`)."""

    name = "min_length"

    def __init__(self, min_chars: int) -> None:
        super().__init__()
        self.min_chars = min_chars

    def process(self, doc: Document) -> Document | None:
        if not doc.text.strip():
            self.drop("empty")
            return None
        if len(doc.text) < self.min_chars:
            self.drop("too_short")
            return None
        return doc
