"""Language identification with py3langid, whose model ships inside the package (no
download): each document gets `metadata["language"]` (ISO 639-1, e.g. "en", "zh"), the step
counts the language mix (`language_<code>`), and with `keep` set drops every other language.
"""

from __future__ import annotations

from llmtrain.data.prepare.documents import Document, Step

SAMPLE_CHARS = 2000  # the classifier reads the start of each document: enough, and fast


def detect_language(text: str) -> str:
    """ISO 639-1 code of the most likely language of `text` (its first 2,000 characters)."""
    import py3langid

    return py3langid.classify(text[:SAMPLE_CHARS])[0]


class LanguageFilter(Step):
    """Tag each document's language; drop those outside `keep` (reason `language_not_kept`)."""

    name = "language"

    def __init__(self, keep: list[str] | tuple[str, ...] = ()) -> None:
        super().__init__()
        self.keep = frozenset(code.strip().lower() for code in keep if code.strip())

    def process(self, doc: Document) -> Document | None:
        lang = doc.metadata["language"] = detect_language(doc.text)
        self.stats[f"language_{lang}"] += 1
        if self.keep and lang not in self.keep:
            return self.drop("language_not_kept")
        return doc
