"""Text helpers shared by the extractors: normalisation (NFKC, whitespace), stray-accent
folding, character counts, CJK and phone-number detection. Pure functions of a string."""
from __future__ import annotations

import re
import unicodedata
from typing import Iterable


def _accented(c: str) -> bool:
    d = unicodedata.normalize("NFD", c)
    return len(d) > 1 and d[0].isascii() and d[0].isalpha()


def _stray_accents(texts: Iterable[str]) -> bool:
    """True when a Latin-script document has only one or two accented letters: the OCR's
    recogniser then made them up (`Restäurants`, `Chéras`), and they are folded to ASCII. A text
    in a language that uses accents has more of them and is left alone."""
    accented = letters = 0
    for t in texts:
        for c in t:
            if c.isalpha():
                letters += 1
                accented += _accented(c)
    return 0 < accented <= 2 and letters >= 100


def _fold_accents(text: str) -> str:
    return "".join(unicodedata.normalize("NFD", c)[0] if _accented(c) else c for c in text)


def _norm(text: str) -> str:
    text = unicodedata.normalize("NFKC", text or "")
    return re.sub(r"\s+", " ", text).strip()


def _letters(s: str) -> int:
    return sum(1 for c in s if c.isalpha())


def _digits(s: str) -> int:
    return sum(1 for c in s if c.isdigit())


def _is_cjk(s: str) -> bool:
    return any("\u4e00" <= c <= "\u9fff" for c in s)


_PHONE_RE = re.compile(r"(?<![\w/])\+?\(?\d[\d ()\-]{6,}\d(?![\w/])")


def _is_phone_line(up: str) -> bool:
    for m in _PHONE_RE.finditer(up):
        if _digits(m.group(0)) >= 8 and not re.search(r"\d{5,6}\s*,", m.group(0)):
            return True
    return False
