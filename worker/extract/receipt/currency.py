"""Currency detection: ISO 4217 code from currency marks and codes in the text, a bare `$`
resolved by country hints, else the caller's default."""
from __future__ import annotations

import re

from worker.extract.receipt.lines import _L


_CURRENCY_PATTERNS: list[tuple[str, str]] = [
    (r"\bMYR\b", "MYR"), (r"\bSGD\b|\bS\$", "SGD"), (r"\bHKD\b|\bHK\$", "HKD"), (r"\bAUD\b|\bAU?\$", "AUD"),
    (r"\bCAD\b|\bCA?\$", "CAD"), (r"\bTWD\b|\bNT\$", "TWD"), (r"\bUSD\b|\bUS\$", "USD"), (r"\bCNY\b|\bRMB\b", "CNY"),
    (r"\bEUR\b|€", "EUR"), (r"\bGBP\b|£", "GBP"), (r"\bJPY\b|円", "JPY"), (r"\bKRW\b|₩", "KRW"), (r"\bTHB\b|฿", "THB"),
    (r"\bINR\b|₹", "INR"), (r"\bIDR\b", "IDR"), (r"\bPHP\b|₱", "PHP"), (r"\bVND\b|₫", "VND"), (r"\bCHF\b", "CHF"),
    (r"\bAED\b", "AED"), (r"\bMAD\b|\d\s?DHS?\b", "MAD"),
    (r"\bRM\s?-?\d|\(RM\)|\bRM\b", "MYR"), (r"[¥￥]|\d\s*元|人民币|人民幣", "CNY"),
]
_DOLLAR_COUNTRY = [
    (r"\bSDN\.?\s*BHD\b|\bMALAYSIA\b|\bS/B\b|\bBHD\b", "MYR"),
    (r"\bPTE\.?\s*LTD\b|\bSINGAPORE\b", "SGD"),
    (r"\bHONG\s*KONG\b|香港", "HKD"),
    (r"\bAUSTRALIA\b|\bABN\b", "AUD"),
    (r"\bCANADA\b|\bHST\b", "CAD"),
    (r"\bTAIWAN\b|台灣|台湾", "TWD"),
]
_DOLLARS = {"USD", "SGD", "HKD", "AUD", "CAD", "TWD", "NZD", "MYR"}


def _currency(lines: list[_L], default_currency: str | None) -> tuple[str, list[_L], float] | None:
    counts: dict[str, list[_L]] = {}
    for l in lines:
        up = l.up
        for pat, code in _CURRENCY_PATTERNS:
            if re.search(pat, up):
                counts.setdefault(code, []).append(l)
                if code in ("SGD", "HKD", "AUD", "CAD", "TWD", "USD"):
                    break  # "S$" must not also count as a bare "$"
    if counts:
        code = max(counts, key=lambda c: len(counts[c]))
        return code, counts[code][:3], 0.9
    dollar = [l for l in lines if "$" in l.text]
    if dollar:
        text = " ".join(l.up for l in lines)
        for pat, code in _DOLLAR_COUNTRY:
            if re.search(pat, text):
                return code, dollar[:3], 0.6
        if default_currency and default_currency.upper() in _DOLLARS:
            return default_currency.upper(), dollar[:3], 0.6
        return "USD", dollar[:3], 0.6
    if default_currency:
        return default_currency.upper(), [], 0.5
    return None
