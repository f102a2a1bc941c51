"""PII redaction: e-mail addresses, phone numbers (international and Chinese mobile), IPv4 and
IPv6 addresses, credit-card numbers (Luhn-checked) and Chinese resident ID numbers
(ISO 7064 MOD 11-2 check digit) become typed placeholders such as `<EMAIL>`.

`redact(text)` returns the new text and the count per type; the `RedactPII` step counts per
type in the report (`replaced_<type>`). Checksums keep dates and order numbers out.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter

from llmtrain.data.prepare.documents import Document, Step

PLACEHOLDERS = {
    "email": "<EMAIL>",
    "cn_id": "<ID_NUMBER>",
    "credit_card": "<CREDIT_CARD>",
    "phone": "<PHONE>",
    "ipv4": "<IP_ADDRESS>",
    "ipv6": "<IP_ADDRESS>",
}
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}\b")
# 18 digits (last may be X): 6 area + 8 birth date (18xx-20xx) + 3 sequence + check
_CN_ID = re.compile(
    r"(?<![0-9A-Za-z])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx](?![0-9A-Za-z])"
)
_CARD = re.compile(r"(?<![\d+-])(?:\d[ -]?){12,18}\d(?![\d-])")
_CN_MOBILE = re.compile(r"(?<!\d)(?:\+?86[ -]?)?1[3-9]\d[ -]?\d{4}[ -]?\d{4}(?!\d)")
# +CC then 6-14 digits in groups, or a North-American (xxx) xxx-xxxx / xxx-xxx-xxxx
_INTL_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,4}"
    r"|\(\d{3}\)[ .-]?\d{3}[ .-]\d{4}|\d{3}[.-]\d{3}[.-]\d{4})(?!\w)"
)
_IPV4 = re.compile(r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\d.])")  # fmt: skip
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def luhn_valid(digits: str) -> bool:
    """Whether a digit string passes the Luhn check every payment card number carries."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def cn_id_valid(number: str) -> bool:
    """Whether an 18-character Chinese resident ID has the right check character (GB 11643)."""
    total = sum(int(c) * w for c, w in zip(number[:17], _ID_WEIGHTS))
    return _ID_CHECK[total % 11] == number[17].upper()


def _card(m: re.Match) -> bool:
    digits = re.sub(r"[ -]", "", m.group())
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


def _ipv6(m: re.Match) -> bool:
    text = m.group()
    # at least 3 groups and a digit: "a::b" or "std::map" in code is not an address
    if len([g for g in text.split(":") if g]) < 3 or not any(c.isdigit() for c in text):
        return False
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _phone(m: re.Match) -> bool:
    return sum(c.isdigit() for c in m.group()) >= 7


# Order matters: IDs and cards before phones (their digits would match a phone pattern).
_RULES = (
    ("email", _EMAIL, None),
    ("cn_id", _CN_ID, lambda m: cn_id_valid(m.group())),
    ("credit_card", _CARD, _card),
    ("ipv6", _IPV6, _ipv6),
    ("ipv4", _IPV4, None),
    ("phone", _CN_MOBILE, None),
    ("phone", _INTL_PHONE, _phone),
)


def redact(text: str) -> tuple[str, Counter[str]]:
    """`text` with every PII match replaced by its placeholder, and the count per type."""
    counts: Counter[str] = Counter()
    for kind, pattern, check in _RULES:
        if kind == "email" and "@" not in text:
            continue

        def replace(m: re.Match, kind: str = kind, check=check) -> str:
            if check is not None and not check(m):
                return m.group()
            counts[kind] += 1
            return PLACEHOLDERS[kind]

        text = pattern.sub(replace, text)
    return text, counts


class RedactPII(Step):
    """Replace PII with typed placeholders; never drops a document."""

    name = "pii"

    def process(self, doc: Document) -> Document:
        text, counts = redact(doc.text)
        if counts:
            doc.text = text
            self.stats["documents_changed"] += 1
            for kind, n in counts.items():
                self.stats[f"replaced_{kind}"] += n
        return doc
