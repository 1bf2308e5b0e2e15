"""Scoring conventions of the project's owners (see ../shared/data/README.md).

SROIE (receipts): a field is correct when the extracted value equals the label after
upper-casing, collapsing whitespace and stripping surrounding punctuation; `total` compares as
a decimal number (labels may carry a currency mark, e.g. `RM 29.70`); `date` compares as a
calendar date (labels are day-first: `25/12/2018`, `22-05-16`, `30 DEC 17`). A field whose
label is empty is left out. Per-field accuracy and the mean over the four fields.

Kleister-NDA (contracts): per-key exact match after upper-casing; `party` as set F1. A key
missing from the label means the document has no such value, so predicting nothing for it is
correct and predicting something is wrong.
"""
from __future__ import annotations

import datetime as _dt
import re
import string
import unicodedata
from decimal import Decimal, InvalidOperation
from typing import Any, Iterable, Mapping

# label name -> our field name
SROIE_FIELDS: dict[str, str] = {
    "company": "merchant_name",
    "address": "merchant_address",
    "date": "transaction_date",
    "total": "total",
}
KLEISTER_FIELDS: dict[str, str] = {
    "effective_date": "effective_date",
    "jurisdiction": "jurisdiction",
    "party": "parties",
    "term": "term",
}

_PUNCT = string.punctuation + "".join(
    chr(c) for c in range(0x2000, 0x2070) if unicodedata.category(chr(c)).startswith("P")
) + "。，、；：？！（）【】《》「」『』·"

_MONTHS = {
    "JAN": 1, "FEB": 2, "MAR": 3, "APR": 4, "MAY": 5, "JUN": 6, "JUL": 7, "AUG": 8,
    "SEP": 9, "SEPT": 9, "OCT": 10, "NOV": 11, "DEC": 12,
}


# --------------------------------------------------------------------------------------------
# SROIE


def normalise_text(value: Any) -> str:
    """Upper-case, collapse whitespace, strip surrounding punctuation (and whitespace)."""
    if value is None:
        return ""
    text = re.sub(r"\s+", " ", str(value).upper()).strip()
    return text.strip(_PUNCT + " ")


def parse_decimal(value: Any) -> Decimal | None:
    """A decimal from `31.00`, `RM 29.70`, `$8.20`, `1,234.50`, 31.0; None when there is none."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float, Decimal)):
        try:
            return Decimal(str(value))
        except InvalidOperation:
            return None
    text = str(value).strip()
    m = re.search(r"-?\d[\d,]*(?:\.\d+)?", text)
    if not m:
        return None
    num = m.group(0)
    if re.fullmatch(r"-?\d+,\d{2}", num):  # decimal comma
        num = num.replace(",", ".")
    else:
        num = num.replace(",", "")
    try:
        return Decimal(num)
    except InvalidOperation:
        return None


def _year(y: str) -> int:
    yi = int(y)
    if len(y) == 2:
        yi += 2000 if yi < 70 else 1900
    return yi


def parse_date_dayfirst(value: Any) -> _dt.date | None:
    """A calendar date from a label or a prediction: ISO `2018-12-25`, or day-first
    `25/12/2018`, `22-05-16`, `25.12.2018`, `30 DEC 17`, `12 Mar 2018`; None when unparsable."""
    if value is None:
        return None
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    text = unicodedata.normalize("NFKC", str(value)).upper().strip()
    try:
        m = re.search(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})", text)
        if m:
            return _dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        m = re.search(r"(\d{1,2})\s*[-/.]\s*(\d{1,2})\s*[-/.]\s*(\d{4}|\d{2})(?!\d)", text)
        if m:
            return _dt.date(_year(m.group(3)), int(m.group(2)), int(m.group(1)))
        m = re.search(r"(\d{1,2})\s*[-/. ]?\s*([A-Z]{3,})\.?\s*[-/., ]?\s*(\d{4}|\d{2})(?!\d)", text)
        if m and m.group(2)[:3] in _MONTHS:
            return _dt.date(_year(m.group(3)), _MONTHS[m.group(2)[:3]], int(m.group(1)))
    except ValueError:
        return None
    return None


def sroie_field_correct(label_name: str, label: Any, predicted: Any) -> bool:
    """Whether one predicted value matches its SROIE label (label names: company, address,
    date, total)."""
    if predicted is None:
        return False
    if label_name == "total":
        a, b = parse_decimal(label), parse_decimal(predicted)
        return a is not None and b is not None and a == b
    if label_name == "date":
        a, b = parse_date_dayfirst(label), parse_date_dayfirst(predicted)
        return a is not None and b is not None and a == b
    return normalise_text(label) != "" and normalise_text(label) == normalise_text(predicted)


def label_is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def score_sroie_document(labels: Mapping[str, Any], predicted: Mapping[str, Any]) -> dict[str, bool]:
    """{label name: correct} for the non-empty labels of one receipt. `predicted` uses our
    field names (merchant_name, merchant_address, transaction_date, total)."""
    out = {}
    for label_name, field in SROIE_FIELDS.items():
        label = labels.get(label_name)
        if label_is_empty(label):
            continue
        out[label_name] = sroie_field_correct(label_name, label, predicted.get(field))
    return out


# --------------------------------------------------------------------------------------------
# Kleister-NDA


def _up(value: Any) -> str:
    return str(value).upper()


def party_f1(label: Iterable[Any] | None, predicted: Iterable[Any] | None) -> float:
    """Set F1 of party names after upper-casing; 1.0 when both are empty."""
    gold = {_up(v) for v in (label or [])}
    pred = {_up(v) for v in (predicted or [])}
    if not gold and not pred:
        return 1.0
    if not gold or not pred:
        return 0.0
    tp = len(gold & pred)
    if tp == 0:
        return 0.0
    precision = tp / len(pred)
    recall = tp / len(gold)
    return 2 * precision * recall / (precision + recall)


def kleister_field_score(label_name: str, label: Any, predicted: Any) -> float:
    """Score in 0..1 for one key. A missing label (None) is correct only when nothing was
    predicted."""
    if label_name == "party":
        if isinstance(predicted, str):
            predicted = [predicted]
        if isinstance(label, str):
            label = [label]
        return party_f1(label, predicted)
    if label is None:
        return 1.0 if predicted is None or predicted == "" else 0.0
    if predicted is None:
        return 0.0
    return 1.0 if _up(label) == _up(predicted) else 0.0


def score_kleister_document(labels: Mapping[str, Any], predicted: Mapping[str, Any]) -> dict[str, float]:
    """{label name: score} for the four keys of one contract. `predicted` uses our field names
    (effective_date, jurisdiction, parties, term)."""
    return {
        label_name: kleister_field_score(label_name, labels.get(label_name), predicted.get(field))
        for label_name, field in KLEISTER_FIELDS.items()
    }


# --------------------------------------------------------------------------------------------
# Aggregation


def aggregate(per_document: Iterable[Mapping[str, float | bool]], field_names: Iterable[str]) -> dict[str, Any]:
    """Per-field accuracy (mean over the documents where the field was scored), the mean of the
    per-field accuracies, and the number of documents scored per field."""
    names = list(field_names)
    sums = {n: 0.0 for n in names}
    counts = {n: 0 for n in names}
    for doc in per_document:
        for n in names:
            if n in doc:
                sums[n] += float(doc[n])
                counts[n] += 1
    acc = {n: (sums[n] / counts[n] if counts[n] else None) for n in names}
    present = [v for v in acc.values() if v is not None]
    return {
        "fields": acc,
        "counts": counts,
        "mean": (sum(present) / len(present)) if present else None,
    }


# --------------------------------------------------------------------------------------------
# Invoices and tickets (cn-fapiao-dev, zugferd-dev, cn-train-tickets-dev): label name -> how our
# fields carry it. Strings exact after removing whitespace (ids also upper-cased), names exact
# after removing whitespace (case kept, full-width brackets as printed), dates as ISO calendar
# dates, numbers to 0.01. A field absent from a label is left out.

def _nows(value: Any) -> str:
    return "".join(str(value or "").split())


def _money(value: Any) -> Decimal | None:
    return parse_decimal(value)


def _iso(value: Any) -> _dt.date | None:
    try:
        return _dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def _same(kind: str, label: Any, predicted: Any) -> bool:
    if predicted is None:
        return False
    if kind == "id":
        return _nows(label).upper() == _nows(predicted).upper()
    if kind == "name":
        return _nows(label) == _nows(predicted)
    if kind == "date":
        return _iso(label) is not None and _iso(label) == _iso(predicted)
    if kind == "money":
        a, b = _money(label), _money(predicted)
        return a is not None and b is not None and abs(a - b) <= Decimal("0.01")
    if kind == "loose":  # invoices-dev names: case, spaces and punctuation ignored, containment counts
        a, b = (re.sub(r"[\W_]+", "", str(v or "")).lower() for v in (label, predicted))
        return bool(a and b) and (a in b or b in a)
    raise ValueError(kind)


# label name -> (our field path, comparison)
FAPIAO_FIELDS: dict[str, tuple[str, str]] = {
    "seller_name": ("merchant_name", "name"),
    "issue_date": ("transaction_date", "date"),
    "total_amount": ("total", "money"),
    "currency": ("currency", "id"),
    "buyer_name": ("buyer_name", "name"),
    "seller_tax_id": ("seller_tax_id", "id"),
    "buyer_tax_id": ("buyer_tax_id", "id"),
    "invoice_number": ("invoice_number", "id"),
    "invoice_code": ("invoice_code", "id"),
    "amount_excl_tax": ("subtotal", "money"),
    "tax_amount": ("tax", "money"),
}
ZUGFERD_FIELDS: dict[str, tuple[str, str]] = {
    "seller_name": ("merchant_name", "name"),
    "issue_date": ("transaction_date", "date"),
    "grand_total": ("total", "money"),
    "currency": ("currency", "id"),
    "buyer_name": ("buyer_name", "name"),
    "invoice_number": ("invoice_number", "id"),
    "tax_total": ("tax", "money"),
}
# invoices-dev (read from the page): score only the fields whose `visible` is true
INVOICES_FIELDS: dict[str, tuple[str, str]] = {
    "seller_name": ("merchant_name", "loose"),
    "issue_date": ("transaction_date", "date"),
    "total": ("total", "money"),
    "currency": ("currency", "id"),
    "invoice_number": ("invoice_number", "id"),
    "buyer_name": ("buyer_name", "loose"),
}
TICKET_FIELDS: dict[str, tuple[str, str]] = {
    "date_iso": ("transaction_date", "date"),
    "price": ("total", "money"),
    "starting_station": ("travel.from", "name"),
    "destination_station": ("travel.to", "name"),
    "train_num": ("travel.train_number", "id"),
    "ticket_grade": ("travel.seat_class", "name"),
}


def field_value(fields: Mapping[str, Any], path: str) -> Any:
    value: Any = fields
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def score_fields(spec: Mapping[str, tuple[str, str]], labels: Mapping[str, Any],
                 predicted: Mapping[str, Any]) -> dict[str, bool]:
    """Per label field: correct or not (fields absent from the label are left out)."""
    out = {}
    for name, (path, kind) in spec.items():
        label = labels.get(name)
        if label is None or label == "":
            continue
        out[name] = _same(kind, label, field_value(predicted, path))
    return out

