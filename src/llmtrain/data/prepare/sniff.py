"""What a file's first bytes say: binary or text (`binary_reason`), and, for text that is not
UTF-8, which encoding it probably is (`utf8_fix`, guessed with charset-normalizer) so the
advice names a conversion that does not corrupt it."""

from __future__ import annotations

BINARY_SAMPLE = 1 << 16
BINARY_FIX = "Remove it from the inputs (point prepare at the text files only)"
_CONTROLS = bytes((*range(1, 9), *range(14, 27), *range(28, 32)))
# charset-normalizer's name -> iconv's; Western files are often guessed as a neighbour
_ICONV = {"latin_1": "ISO-8859-1", "iso8859_15": "ISO-8859-15", "utf_16": "UTF-16"}
_LATIN_PAGES = {"cp1250", "cp1252", "cp1254", "cp1257", "latin_1", "iso8859_2", "iso8859_3",
                "iso8859_4", "iso8859_9", "iso8859_10", "iso8859_13", "iso8859_14", "iso8859_15",
                "iso8859_16", "mac_roman", "mac_latin2", "cp850", "cp437"}  # fmt: skip


def binary_reason(sample: bytes) -> str | None:
    """Why `sample` does not look like UTF-8 text, or None when it does."""
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "is UTF-16 encoded text (byte-order mark), not UTF-8"
    if b"\x00" in sample:
        return "looks like a binary file (it contains NUL bytes), not text"
    controls = len(sample) - len(sample.translate(None, _CONTROLS))
    if sample and controls / len(sample) > 0.1:
        return f"looks like a binary file ({controls / len(sample):.0%} control bytes), not text"
    return None


def _letter_share(sample: bytes, encoding: str) -> float:
    """Share of the non-ASCII characters of `sample` decoded as `encoding` that are letters."""
    try:
        text = sample.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return 0.0
    wide = [c for c in text if ord(c) > 127]
    return sum(c.isalpha() for c in wide) / len(wide) if wide else 0.0


def guess_encoding(sample: bytes) -> str | None:
    """The iconv name of `sample`'s likely encoding, or None when there is no good guess.

    charset-normalizer often guesses a neighbouring Latin code page (cp1250, cp1257) for
    short French or German text, which would corrupt it: among Latin-script single-byte
    pages, CP1252 (a superset of Latin-1's letters) wins unless the guess decodes more of
    the text as letters."""
    try:
        from charset_normalizer import from_bytes
    except ImportError:
        return None
    sample = sample[:BINARY_SAMPLE]
    best = from_bytes(sample).best()
    if best is None or best.encoding in ("utf_8", "ascii"):
        return None
    name = best.encoding
    if name in _LATIN_PAGES and _letter_share(sample, "cp1252") >= _letter_share(sample, name):
        name = "cp1252"
    return _ICONV.get(name, name.upper().replace("_", "-"))


def utf8_fix(sample: bytes) -> str:
    """The fix for text that is not UTF-8, naming the encoding when it can be guessed."""
    guess = guess_encoding(sample)
    if guess is None:
        return ("Convert the file to UTF-8 (find its encoding with `file -i FILE`, then "
                "`iconv -f ENCODING -t UTF-8 FILE > OUT`)")  # fmt: skip
    return (f"Convert the file to UTF-8 (it looks like {guess}: "
            f"`iconv -f {guess} -t UTF-8 FILE > OUT`; check with `file -i FILE`)")  # fmt: skip
