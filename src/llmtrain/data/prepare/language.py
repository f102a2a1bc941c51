"""Language identification with py3langid, whose model ships inside the package (no
download): each document gets `metadata["language"]` (ISO 639-1, e.g. "en", "zh"), the step
counts the language mix (`language_<code>`), and with `keep` set drops every other language,
counted per label (`removed_language_<code>_not_kept`). `aliases` folds labels into one code:
by default the Chinese varieties the model knows (Wu, Cantonese) count as "zh".
"""

from __future__ import annotations

from collections.abc import Mapping

from llmtrain.data.prepare.documents import Document, Step

SAMPLE_CHARS = 2000  # the classifier reads the start of each document: enough, and fast
# py3langid labels plain Mandarin Wikipedia paragraphs `wuu` (Wu) or `yue` (Cantonese) about
# 3 % of the time (92 of 3,104 zh_wiki paragraphs): all are written Chinese, kept as "zh".
DEFAULT_LANGUAGE_ALIASES: dict[str, str] = {"wuu": "zh", "yue": "zh"}


def detect_language(text: str) -> str:
    """ISO 639-1 code of the most likely language of `text` (its first 2,000 characters)."""
    import py3langid

    return py3langid.classify(text[:SAMPLE_CHARS])[0]


def release_language_model() -> None:
    """Drop py3langid's model (~60 MiB resident once loaded) when cleaning is over, so the
    tokenizer trainer that comes next does not run on top of it; reloaded if used again."""
    import sys

    langid = sys.modules.get("py3langid.langid")
    if langid is not None and getattr(langid, "IDENTIFIER", None) is not None:
        langid.IDENTIFIER = None


class LanguageFilter(Step):
    """Tag each document's language (after `aliases`); drop those outside `keep`."""

    name = "language"

    def __init__(
        self,
        keep: list[str] | tuple[str, ...] = (),
        aliases: Mapping[str, str] = DEFAULT_LANGUAGE_ALIASES,
    ) -> None:
        super().__init__()
        self.keep = frozenset(code.strip().lower() for code in keep if code.strip())
        self.aliases = {k.strip().lower(): v.strip().lower() for k, v in aliases.items()}

    def process(self, doc: Document) -> Document | None:
        detected = detect_language(doc.text)
        lang = doc.metadata["language"] = self.aliases.get(detected, detected)
        if lang != detected:
            doc.metadata["language_detected"] = detected
            self.stats[f"relabelled_{detected}_as_{lang}"] += 1
        self.stats[f"language_{lang}"] += 1
        if self.keep and lang not in self.keep:
            return self.drop(f"language_{lang}_not_kept")
        return doc
