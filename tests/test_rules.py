"""Tests for docket.rules: loading/validating policy files and evaluating their CEL checks."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import re
import shutil
import time
from pathlib import Path

import pytest
import yaml

from docket import rules as rules_mod
from docket.rules import Rule, RuleError, Verdict, default_rules_dir, evaluate, load_rule, load_rules

REPO = Path(__file__).resolve().parents[1]
RULES_DIR = REPO / "rules"
NOW = dt.datetime(2024, 6, 12, 9, 30, tzinfo=dt.timezone.utc)  # a Wednesday


@pytest.fixture(scope="module")
def shipped() -> dict[str, Rule]:
    return load_rules(RULES_DIR)


def decide(rule: Rule, fields: dict, document: dict | None = None, **kw) -> Verdict:
    kw.setdefault("now", NOW)
    return evaluate(rule, fields, document or {}, **kw)


def fired(verdict: Verdict) -> set[str]:
    return {r["check"] for r in verdict.reasons}


# ---------------------------------------------------------------- fixtures: clean documents


def clean_receipt() -> dict:
    return {
        "merchant_name": "Kedai Perkakasan Ah Seng Sdn Bhd",
        "merchant_address": "12 Jalan Ipoh 51200 Kuala Lumpur",
        "transaction_date": "2024-06-10",  # Monday, two days before NOW
        "total": 53,  # an int on purpose: params are doubles
        "subtotal": 50.0,
        "tax": 3.0,
        "currency": "MYR",
        "items": [
            {"description": "Extension cable 5m", "amount": 35.0, "quantity": 1},
            {"description": "AA batteries", "amount": 15, "quantity": 2},
        ],
    }


def clean_contract() -> dict:
    return {
        "parties": ["Docket Sdn Bhd", "Acme Trading Pte Ltd"],
        "effective_date": "2024-05-01",
        "jurisdiction": "Malaysia",
        "term": "2 years",
        "term_months": 24,
        "amounts": [{"value": 120000, "currency": "MYR"}],
    }


CLEAN_CONTRACT_TEXT = (
    "SERVICES AGREEMENT. The aggregate liability of each party shall not exceed the fees paid "
    "in the twelve months before the claim. This Agreement is governed by the laws of Malaysia."
)


def clean_screenshot() -> dict:
    return {"text": "Team lunch moved to 1pm\n会议改到下午三点\nSee you there"}


# ---------------------------------------------------------------- loading the shipped rules


def test_shipped_rules_load(shipped):
    assert set(shipped) == {"expense_policy", "contract_review", "screenshot_moderation"}
    assert shipped["expense_policy"].document_type == "receipt"
    assert shipped["contract_review"].document_type == "contract"
    assert shipped["screenshot_moderation"].document_type == "screenshot"
    for name, rule in shipped.items():
        assert rule.name == name == rule.path.stem
        assert rule.prompt.strip() and rule.description.strip()
        assert rule.checks, name
        assert all(c.program is not None for c in rule.checks), "programs are compiled at load time"
        assert re.search(r"(?i)chinese", rule.prompt), "prompts must mention Chinese documents"


def test_version_is_sha256_of_file_bytes(shipped):
    for rule in shipped.values():
        assert rule.version == "sha256:" + hashlib.sha256(rule.path.read_bytes()).hexdigest()


def test_version_changes_when_file_changes(tmp_path):
    target = tmp_path / "expense_policy.yaml"
    shutil.copy(RULES_DIR / "expense_policy.yaml", target)
    before = load_rule(target).version
    target.write_bytes(target.read_bytes() + b"\n# tweaked\n")
    after = load_rule(target).version
    assert before != after
    assert after == "sha256:" + hashlib.sha256(target.read_bytes()).hexdigest()


def test_default_rules_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("DOCKET_RULES_DIR", raising=False)
    assert default_rules_dir() == RULES_DIR
    monkeypatch.setenv("DOCKET_RULES_DIR", str(tmp_path))
    assert default_rules_dir() == tmp_path
    assert load_rules() == {}


def _documented_fields() -> dict[str, set[str]]:
    """Field names per document type, from the tables in docs/fields.md."""
    documented: dict[str, set[str]] = {}
    current = None
    for line in (REPO / "docs" / "fields.md").read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^##\s+(\w+)", line)
        if heading:
            current = heading.group(1)
            documented[current] = set()
            continue
        row = re.match(r"^\|\s*([a-z_]+)\s*\|", line)
        if current and row and row.group(1) != "field":
            documented[current].add(row.group(1))
    return documented


def test_fields_schemas_match_docs(shipped):
    documented = _documented_fields()
    assert set(documented) == {"receipt", "contract", "screenshot"}
    for rule in shipped.values():
        assert set(rule.fields_schema["properties"]) == documented[rule.document_type], rule.name
        assert rule.fields_schema.get("additionalProperties") is False


def _walk_schema(schema: dict, where: str):
    yield where, schema
    for key, sub in schema.get("properties", {}).items():
        yield from _walk_schema(sub, f"{where}.{key}")
    if isinstance(schema.get("items"), dict):
        yield from _walk_schema(schema["items"], f"{where}[]")


def _bounded_pattern(pattern: str) -> bool:
    """Anchored, and no unbounded repetition (*, +, {n,}) outside character classes."""
    if not (pattern.startswith("^") and pattern.endswith("$")):
        return False
    bare = re.sub(r"\\.", "x", pattern)  # escapes
    bare = re.sub(r"\[[^\]]*\]", "x", bare)  # character classes
    return not re.search(r"[*+]|\{\d*,\}", bare)


def test_bounded_pattern_helper():
    assert _bounded_pattern("^[^\\x00-\\x1f]{1,200}$")
    assert _bounded_pattern("^\\d{4}-\\d{2}-\\d{2}$")
    assert not _bounded_pattern("^[a-z]+$")
    assert not _bounded_pattern("^.*$")
    assert not _bounded_pattern("^a{2,}$")
    assert not _bounded_pattern("[a-z]{1,3}")


def test_fields_schemas_are_bounded(shipped):
    """A model constrained by these schemas must not be able to generate forever."""
    for rule in shipped.values():
        for where, node in _walk_schema(rule.fields_schema, rule.name):
            kind = node.get("type")
            if "enum" in node:
                continue
            if kind == "string":
                assert _bounded_pattern(node.get("pattern", "")), where
            elif kind == "number":
                assert "minimum" in node and "maximum" in node, where
            elif kind == "array":
                assert "maxItems" in node, where
            elif kind == "object":
                assert node.get("additionalProperties") is False, where
            else:
                pytest.fail(f"{where}: unbounded or untyped schema node {node}")


def test_expense_policy_currency_defaults(shipped):
    rule = shipped["expense_policy"]
    assert rule.default_currency == "MYR"
    assert rule.params["cap_currency"] == rule.default_currency


# ---------------------------------------------------------------- expense_policy


def test_clean_receipt_is_approved(shipped):
    verdict = decide(shipped["expense_policy"], clean_receipt(), {"text": "...", "pages": 1})
    assert verdict.decision == "approve", verdict.reasons
    assert verdict.reasons == []


def _receipt(**changes) -> dict:
    receipt = clean_receipt()
    for key, value in changes.items():
        if value is None:
            receipt.pop(key, None)
        else:
            receipt[key] = value
    return receipt


EXPENSE_CASES = [
    # check id, field changes, expected decision
    ("total_positive", {"total": 0, "subtotal": None, "tax": None}, "reject"),
    ("total_positive", {"total": -20.5, "subtotal": None, "tax": None}, "reject"),
    ("max_total", {"total": 5000.01, "subtotal": None, "tax": None}, "reject"),
    ("foreign_currency", {"currency": "CNY"}, "needs_review"),
    ("receipt_too_old", {"transaction_date": "2024-03-01"}, "reject"),
    ("future_date", {"transaction_date": "2024-06-19"}, "needs_review"),
    ("weekend_spending", {"transaction_date": "2024-06-08"}, "needs_review"),  # Saturday
    ("weekend_spending", {"transaction_date": "2024-06-09"}, "needs_review"),  # Sunday
    ("meal_cap", {"merchant_name": "Restoran Nasi Kandar Pelita", "total": 180, "subtotal": None, "tax": None}, "needs_review"),
    ("meal_cap", {"merchant_name": "Starbucks Café", "total": 100.5, "subtotal": None, "tax": None}, "needs_review"),
    ("meal_cap", {"merchant_name": "海底捞", "items": [{"description": "火锅套餐", "amount": 168}], "total": 168, "subtotal": None, "tax": None}, "needs_review"),
    ("meal_cap", {"merchant_name": "广州酒楼", "total": 268.0, "subtotal": None, "tax": None}, "needs_review"),
    ("restricted_items", {"items": [{"description": "Tiger BEER 640ml", "amount": 18.0}]}, "needs_review"),
    ("restricted_items", {"items": [{"description": "Red Wine (glass)", "amount": 38.0}]}, "needs_review"),
    ("restricted_items", {"items": [{"description": "青岛啤酒 x2", "amount": 20.0}]}, "needs_review"),
    ("restricted_items", {"items": [{"description": "茅台白酒 500ml", "amount": 20.0}]}, "needs_review"),
    ("restricted_items", {"items": [{"description": "Gift Card RM50", "amount": 50.0}]}, "needs_review"),
    ("restricted_items", {"items": [{"description": "购物礼品卡", "amount": 50.0}]}, "needs_review"),
    ("amounts_add_up", {"total": 60.0}, "needs_review"),
]


@pytest.mark.parametrize("check_id,changes,expected", EXPENSE_CASES)
def test_expense_check_fires(shipped, check_id, changes, expected):
    verdict = decide(shipped["expense_policy"], _receipt(**changes))
    assert check_id in fired(verdict), verdict.reasons
    assert verdict.decision == expected, verdict.reasons
    reason = next(r for r in verdict.reasons if r["check"] == check_id)
    assert reason["message"] and "could not evaluate" not in reason["message"]


@pytest.mark.parametrize(
    "changes",
    [
        {"merchant_name": "Restoran Nasi Kandar Pelita", "total": 99.5, "subtotal": None, "tax": None},  # meal under cap
        {"total": 180, "subtotal": None, "tax": None},  # over the meal cap but not a meal
        {"transaction_date": "2024-03-15"},  # 89 days old, a Friday
        {"transaction_date": "2024-06-13"},  # tomorrow in UTC+8 is still "today" somewhere
        {"items": [{"description": "Swine flu test kit", "amount": 50.0}]},  # "wine" inside a word
        {"total": 53.02},  # rounding within tolerance
        {"subtotal": 53.0, "tax": 3.0},  # tax-inclusive subtotal
        {"currency": None},  # no currency printed: thresholds apply as if MYR
        {"items": None, "subtotal": None, "tax": None, "merchant_address": None},  # optional fields absent
    ],
)
def test_expense_checks_do_not_fire_on_clean_variants(shipped, changes):
    verdict = decide(shipped["expense_policy"], _receipt(**changes))
    assert verdict.decision == "approve", verdict.reasons


def test_meal_cap_message_renders_params(shipped):
    from docket import fx

    rule, fields = shipped["expense_policy"], _receipt(merchant_name="Kopitiam Ah Kow", total=150, subtotal=None, tax=None)
    verdict = decide(rule, fields, fx.facts(fx.Rates(None, None), rule, fields))  # the worker's money facts
    (reason,) = [r for r in verdict.reasons if r["check"] == "meal_cap"]
    assert reason["message"] == "Meal receipts over MYR 100 need a manager's approval (this receipt: MYR 150.00)"


def test_foreign_currency_receipts_skip_myr_caps(shipped):
    # 6000 CNY is compared against nothing in CNY: review for conversion, not a reject.
    verdict = decide(shipped["expense_policy"], _receipt(currency="CNY", total=6000, subtotal=None, tax=None))
    assert verdict.decision == "needs_review"
    assert fired(verdict) == {"foreign_currency"}


def test_int_and_double_numbers_compare(shipped):
    rule = shipped["expense_policy"]
    for total in (150, 150.0):
        verdict = decide(rule, _receipt(merchant_name="Ali Cafe", total=total, subtotal=None, tax=None))
        assert fired(verdict) == {"meal_cap"}, verdict.reasons
    for total in (100, 100.0, 99):
        verdict = decide(rule, _receipt(merchant_name="Ali Cafe", total=total, subtotal=None, tax=None))
        assert verdict.decision == "approve", verdict.reasons


# ---------------------------------------------------------------- contract_review


def test_clean_contract_is_approved(shipped):
    verdict = decide(shipped["contract_review"], clean_contract(), {"text": CLEAN_CONTRACT_TEXT, "pages": 3})
    assert verdict.decision == "approve", verdict.reasons


CONTRACT_CASES = [
    ("two_parties", {"parties": ["Docket Sdn Bhd"]}, None, "needs_review"),
    ("two_parties", {"parties": []}, None, "needs_review"),
    ("max_term", {"term": "5 years", "term_months": 60}, None, "needs_review"),
    ("allowed_jurisdiction", {"jurisdiction": "Cayman Islands"}, None, "needs_review"),
    ("unlimited_liability", {}, "The Supplier accepts Unlimited Liability for data breaches.", "needs_review"),
    ("unlimited_liability", {}, "indemnify the Customer without limitation of liability", "needs_review"),
    ("unlimited_liability", {}, "乙方对甲方的损失承担无限连带责任。", "needs_review"),
    ("unlimited_liability", {}, "乙方承擔無限責任", "needs_review"),
    # a currency the ECB publishes no rate for cannot be compared with MYR thresholds
    ("foreign_currency", {"amounts": [{"value": 1000, "currency": "VND"}]}, None, "needs_review"),
    ("high_value", {"amounts": [{"value": 750000, "currency": "MYR"}]}, None, "needs_review"),
    # USD 200,000 on 2024-03-05 is about MYR 945,000 (ECB cross rate): over the review threshold
    ("high_value", {"amounts": [{"value": 200000, "currency": "USD"}]}, None, "needs_review"),
    ("signing_authority", {"amounts": [{"value": 9000000.0, "currency": "MYR"}]}, None, "reject"),
]


@pytest.mark.parametrize("check_id,changes,text,expected", CONTRACT_CASES)
def test_contract_check_fires(shipped, check_id, changes, text, expected):
    from docket import fx

    rule, fields = shipped["contract_review"], {**clean_contract(), **changes}
    # the worker's money facts: amounts in the policy's currency (docket/fx.py)
    verdict = decide(rule, fields, {"text": text or CLEAN_CONTRACT_TEXT, **fx.facts(fx.Rates(None, None), rule, fields)})
    assert check_id in fired(verdict), verdict.reasons
    assert verdict.decision == expected, verdict.reasons


def test_contract_chinese_jurisdiction_allowed(shipped):
    fields = {**clean_contract(), "jurisdiction": "中华人民共和国", "amounts": [{"value": 500000, "currency": "MYR"}]}
    verdict = decide(shipped["contract_review"], fields, {"text": "本合同适用中华人民共和国法律。"})
    assert verdict.decision == "approve", verdict.reasons


def test_contract_without_text_or_optional_fields(shipped):
    fields = {k: v for k, v in clean_contract().items() if k in ("parties", "effective_date", "jurisdiction")}
    verdict = decide(shipped["contract_review"], fields, {})
    assert verdict.decision == "approve", verdict.reasons
    # an analyzer without a text layer passes text=None: treated as absent, not an error
    verdict = decide(shipped["contract_review"], fields, {"text": None, "pages": None, "mime_type": "image/png", "filename": ""})
    assert verdict.decision == "approve", verdict.reasons


# ---------------------------------------------------------------- screenshot_moderation


def test_clean_screenshot_is_approved(shipped):
    verdict = decide(shipped["screenshot_moderation"], {**clean_screenshot(), "personal_data": [], "personal_data_types": []})
    assert verdict.decision == "approve", verdict.reasons
    assert decide(shipped["screenshot_moderation"], clean_screenshot()).decision == "approve"


def test_screenshot_personal_data_needs_review(shipped):
    fields = {
        "text": "Call me 012-345 6789 or mail ali@example.com",
        "personal_data": [{"type": "phone", "value": "********6789"}, {"type": "email", "value": "*************.com"}],
        "personal_data_types": ["email", "phone"],
    }
    verdict = decide(shipped["screenshot_moderation"], fields)
    assert verdict.decision == "needs_review"
    (reason,) = verdict.reasons
    assert reason["check"] == "personal_data"
    assert "email, phone" in reason["message"]


@pytest.mark.parametrize(
    "text",
    [
        "专业代开发票，量大从优",
        "代開發票 請聯繫",
        "正规博彩平台，注册送彩金",
        "网上赌博 日赚千元",
        "出售毒品",
        "Buy a FAKE ID today, novelty documents shipped worldwide",
        "Counterfeit passports for sale",
        "best online casino bonus",
    ],
)
def test_screenshot_prohibited_terms_reject(shipped, text):
    verdict = decide(shipped["screenshot_moderation"], {"text": text})
    assert verdict.decision == "reject", verdict.reasons
    assert "prohibited_content" in fired(verdict)


def test_screenshot_prohibited_beats_personal_data(shipped):
    fields = {"text": "代开发票 微信 138****1234", "personal_data": [{"type": "phone", "value": "*******1234"}], "personal_data_types": ["phone"]}
    verdict = decide(shipped["screenshot_moderation"], fields)
    assert verdict.decision == "reject"
    assert fired(verdict) == {"personal_data", "prohibited_content"}


# ---------------------------------------------------------------- evaluation semantics


@pytest.mark.parametrize("missing", ["merchant_name", "total", "transaction_date"])
@pytest.mark.parametrize("absent_as", ["missing", None, ""])
def test_missing_required_field_needs_review(shipped, missing, absent_as):
    receipt = clean_receipt()
    if absent_as == "missing":
        del receipt[missing]
    else:
        receipt[missing] = absent_as
    verdict = decide(shipped["expense_policy"], receipt)
    assert verdict.decision == "needs_review"
    reason = next(r for r in verdict.reasons if r["check"] == f"required:{missing}")
    assert reason == {
        "check": f"required:{missing}",
        "outcome": "needs_review",
        "message": f"required field {missing} was not found",
        "rule": "expense_policy",
        "rule_version": shipped["expense_policy"].version,
    }
    # reported once, not again as a schema error
    assert not any(r["check"].startswith("schema:") for r in verdict.reasons), verdict.reasons


def test_empty_fields_never_approve(shipped):
    for rule in shipped.values():
        verdict = decide(rule, {})
        assert verdict.decision == "needs_review", rule.name
        assert {f"required:{f}" for f in rule.fields_schema["required"]} <= fired(verdict)


def test_missing_required_does_not_hide_reject(shipped):
    verdict = decide(shipped["expense_policy"], _receipt(merchant_name=None, total=-5, subtotal=None, tax=None))
    assert verdict.decision == "reject"
    assert {"required:merchant_name", "total_positive"} <= fired(verdict)


def test_schema_violations_need_review(shipped):
    receipt = _receipt(currency="RM", unexpected="x")
    receipt["items"][0]["amount"] = "35.00"
    verdict = decide(shipped["expense_policy"], receipt)
    assert verdict.decision == "needs_review"
    checks = fired(verdict)
    assert {"schema:currency", "schema:items/0/amount", "schema:$"} <= checks, checks
    message = next(r["message"] for r in verdict.reasons if r["check"] == "schema:currency")
    assert "does not match" in message


def test_impossible_date_needs_review(shipped):
    verdict = decide(shipped["expense_policy"], _receipt(transaction_date="2024-02-30"))
    assert verdict.decision == "needs_review"
    assert "schema:transaction_date" in fired(verdict)
    reason = next(r for r in verdict.reasons if r["check"] == "weekend_spending")
    assert reason["outcome"] == "needs_review" and reason["message"].startswith("could not evaluate:")


def test_checks_cannot_loosen_proposed_reject(shipped):
    proposed = [{"check": "model", "outcome": "reject", "message": "receipt looks edited"}]
    verdict = decide(shipped["expense_policy"], clean_receipt(), proposed="reject", proposed_reasons=proposed)
    assert verdict.decision == "reject"
    assert verdict.reasons == [
        {**proposed[0], "rule": "expense_policy", "rule_version": shipped["expense_policy"].version}
    ]
    # and a proposed needs_review stays needs_review on a clean document
    assert decide(shipped["expense_policy"], clean_receipt(), proposed="needs_review").decision == "needs_review"


def test_checks_make_proposed_decision_stricter(shipped):
    verdict = decide(shipped["expense_policy"], _receipt(total=-1, subtotal=None, tax=None), proposed="needs_review",
                     proposed_reasons=[{"check": "model", "outcome": "needs_review", "message": "blurry"}])
    assert verdict.decision == "reject"
    assert [r["check"] for r in verdict.reasons] == ["model", "total_positive"]


def test_later_review_does_not_downgrade_reject(shipped):
    receipt = _receipt(total=-5, subtotal=None, tax=None, transaction_date="2024-06-08",
                       items=[{"description": "Heineken", "amount": -5.0}])
    verdict = decide(shipped["expense_policy"], receipt)
    assert verdict.decision == "reject"
    assert [r["check"] for r in verdict.reasons] == ["total_positive", "weekend_spending", "restricted_items"]


def test_concurrent_evaluation_is_consistent(shipped):
    from concurrent.futures import ThreadPoolExecutor

    rule = shipped["expense_policy"]
    inputs = [(_receipt(), "approve"), (_receipt(total=-1, subtotal=None, tax=None), "reject"),
              (_receipt(currency="USD"), "needs_review"), (_receipt(merchant_name=None), "needs_review")] * 10
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda item: decide(rule, item[0]).decision, inputs))
    assert results == [expected for _, expected in inputs]


def test_threads_agree_with_sequential_evaluation(shipped, tmp_path):
    """Programs are shared between threads; contexts are not. Every thread sees the sequential verdicts."""
    from concurrent.futures import ThreadPoolExecutor

    fields = {**MINIMAL["fields"], "properties": {**MINIMAL["fields"]["properties"]}}
    fields["properties"]["items"] = {"type": "array", "maxItems": 50, "items": {"type": "object"}}
    promoted = load_rule(write_rule(tmp_path, mutated(fields=fields, checks=_checks(
        ("scaled", "fields.items.all(i, i.amount * 2 <= params.cap)", "needs_review", "x"),
        ("named", "matches(fields.merchant_name, '(?i)^shop')", "reject", "y"),
    ))))
    jobs = []
    for i in range(30):
        merchant = ["Ali Cafe", "Kedai Ah Seng", "海底捞"][i % 3]
        items = [{"description": ["beer", "cable", "礼品卡"][(i + k) % 3], "amount": float(k)} for k in range(i % 5)]
        jobs += [
            (shipped["expense_policy"], _receipt(total=40 + i * 7, subtotal=None, tax=None, merchant_name=merchant, items=items), {}),
            (shipped["contract_review"], {**clean_contract(), "amounts": [{"value": 1000 * i**3, "currency": "MYR"}]},
             {"text": CLEAN_CONTRACT_TEXT + (" unlimited liability" if i % 4 == 0 else "")}),
            (shipped["screenshot_moderation"], {"text": ["hello", "代开发票", "fake id", "会议"][i % 4]}, {}),
            (promoted, {"merchant_name": ["Shop A", "Mart"][i % 2], "items": [{"amount": i % 8}, {"amount": 2}]}, {}),
        ]
    expected = [decide(rule, f, d).to_dict() for rule, f, d in jobs]
    assert {v["decision"] for v in expected} == {"approve", "needs_review", "reject"}
    with ThreadPoolExecutor(max_workers=16) as pool:
        for _ in range(3):
            results = list(pool.map(lambda job: decide(job[0], job[1], job[2]).to_dict(), jobs))
            assert results == expected


def test_matches_has_re2_semantics(tmp_path, shipped):
    r"""``matches`` is RE2, as with cel-python: ``\b`` is an ASCII word boundary, so an English
    word right after Chinese characters still matches (the engine's own ``matches`` uses
    Rust's regex, which treats 威 as a word character and would miss it)."""
    verdict = decide(shipped["expense_policy"], _receipt(items=[{"description": "百威Beer 330ml", "amount": 50.0}]))
    assert "restricted_items" in fired(verdict), verdict.reasons
    data = mutated(checks=_checks(
        ("word", r"fields.merchant_name.matches('(?i)\\bbeer\\b')", "reject", "m"),
        ("digits", r"!fields.merchant_name.matches('\\d')", "reject", "m"),  # \d is ASCII: fullwidth digits don't count
        ("partial", "matches(fields.merchant_name, 'Beer')", "reject", "m"),  # global form, unanchored
        ("case", "fields.merchant_name.matches('(?i)CAFÉ')", "reject", "m"),  # (?i) folds non-ASCII letters too
    ))
    rule = load_rule(write_rule(tmp_path, data))
    verdict = evaluate(rule, {"merchant_name": "百威Beer café １２３"}, {}, now=NOW)
    assert verdict.decision == "approve", verdict.reasons


def test_dynamic_regex_errors_need_review(tmp_path):
    data = mutated(checks=_checks(("c", "fields.merchant_name.matches(fields.merchant_name)", "reject", "m")))
    rule = load_rule(write_rule(tmp_path, data))
    assert evaluate(rule, {"merchant_name": "Shop"}, {}, now=NOW).decision == "approve"
    verdict = evaluate(rule, {"merchant_name": "(unclosed"}, {}, now=NOW)
    assert verdict.decision == "needs_review"
    (reason,) = verdict.reasons
    assert reason["message"].startswith("could not evaluate:") and "RE2" in reason["message"]
    assert "_docket" not in reason["message"]


@pytest.mark.parametrize(
    "expr",
    [
        "fields.items.all(i, i.amount * 2 == 10.0)",  # int literal x double from a macro variable
        "fields.items.all(i, 2 * i.amount - 1 == 9.0)",
        "document.pages * 1.5 == 3.0",  # document keeps ints
        "size(fields.items) + params.cap == 11.0",  # int function result + double param
        "10 / fields.total == 2.0",
        "string(size(fields.items) * 2) == '2'",  # int * int stays int
        "int(params.cap) % 3 == 1",  # % is not promoted
        "now - duration('1h') < now && fields.merchant_name + '!' == 'Shop!'",  # non-numbers untouched
        "[1, 2.5].exists(x, x + 1 == 3.5)",
        "fields.total > 1 ? fields.total - 1 == 4.0 : false",
    ],
)
def test_mixed_arithmetic_is_promoted(tmp_path, expr):
    data = mutated(checks=_checks(("c", expr, "reject", "m")))
    rule = load_rule(write_rule(tmp_path, data))
    verdict = evaluate(rule, {"merchant_name": "Shop", "total": 5, "items": [{"amount": 5}]}, {"pages": 2}, now=NOW)
    assert verdict.decision == "approve", verdict.reasons


def test_mixed_arithmetic_on_wrong_types_still_errors(tmp_path):
    data = mutated(checks=_checks(("c", "fields.items.all(i, i.amount * 2 > 0.0)", "reject", "m")))
    rule = load_rule(write_rule(tmp_path, data))
    verdict = evaluate(rule, {"merchant_name": "Shop", "items": [{"amount": "5"}]}, {}, now=NOW)
    assert verdict.decision == "needs_review"
    assert any(r["message"].startswith("could not evaluate:") for r in verdict.reasons)


def test_logical_operators_absorb_errors_like_the_spec(tmp_path):
    # An error on one side of || / && is absorbed when the other side decides.
    data = mutated(checks=_checks(
        ("or_true", "fields.total > 1.0 || true", "reject", "m"),
        ("and_false", "!(fields.total > 1.0 && false)", "reject", "m"),
    ))
    rule = load_rule(write_rule(tmp_path, data))
    assert evaluate(rule, {"merchant_name": "Shop"}, {}, now=NOW).decision == "approve"


def test_helper_failures_are_not_logged(tmp_path, caplog):
    data = mutated(checks=_checks(("c", "fields.items.exists(i, i.name.matches('x'))", "reject", "m")))
    rule = load_rule(write_rule(tmp_path, data))
    with caplog.at_level("DEBUG"):
        verdict = evaluate(rule, {"merchant_name": "Shop", "items": [{"name": 12}]}, {}, now=NOW)
    assert verdict.decision == "needs_review"
    assert "matches" in verdict.reasons[0]["message"]
    assert "_docket" not in verdict.reasons[0]["message"]
    assert not [r for r in caplog.records if r.name == "cel"], caplog.records


def test_rules_can_be_copied(shipped):
    rule = shipped["expense_policy"]
    decide(rule, clean_receipt())
    clone = copy.deepcopy(rule)
    assert clone == rule and clone._contexts == []
    assert decide(clone, clean_receipt()).decision == "approve"


# Expressions for the parser round trip below: precedence, associativity, literals, comments,
# macros. Each evaluates to true with ROUND_TRIP_VARIABLES.
PARSER_CORPUS = [
    "1 + 2 * 3 - 4 / 2 % 3 == 5",
    "a - b - c == -9",
    "a / b * c == 11",
    "t || f && f",
    "!f && (f || t) && !(t && f)",
    "(t ? 1 : f ? 2 : 3) == 1",
    "(t ? a : b) + 1 == 6",
    "a < b == f",
    "2 in l && !(9 in l)",
    "-x.y + --a == 2",
    "!!t == t",
    "-l[1] * -(a) == 10",
    "l[l[0]] + l.size() + size(l) + x['y'] == 11",
    "{'k': 1, 2: 'v', true: [1, 2,],}['k'] == 1",
    "'a\\'b' + \"c\\\"d\" + '''e'f''' + " + '"""g"h"""' + " + r'\\d' + R\"\\w\" == \"a'bc\\\"de'fg\\\"h\\\\d\\\\w\"",
    r"""b'\x00ab' == b"\x00ab" && size(br'\n') == 2""",
    "0x1F + 3 == 34 && 7u > 6u && .5 + 1e3 + 2.5e-1 == 1000.75",
    "a // a comment with 'quotes' and ) parens\n + 1 == 6",
    "'// not a comment' + s == \"// not a commenta'b\"",
    "l.map(q, q * 2).filter(q, q > 2).exists_one(q, q == 4)",
    "l.map(q, q > 1, q * 10) == [20, 30]",
    "l.all(q, l.exists(r, r == q)) && x.all(k, has(x.y))",
    "has(x.y) && !has(x.w)",
    "string(a + b) == '8'",
    "type(a) == int && type(x) == map && dyn(1) == 1",
    "timestamp('2024-06-10T00:00:00Z').getDayOfWeek() == 1 && duration('90m').getMinutes() == 90",
    "'abc'.startsWith('a') && 'abc'.endsWith('c') && 'abc'.contains('b') && 'abc'.matches('^a.c$')",
    "null == null && x.y != null",
    "[[1], [2, 3]][1][0] == 2",
    "a - -1 == 6 && a--1 == 6",
    "(!(a > b) ? 'x' : 'y') == 'y'",
]
ROUND_TRIP_VARIABLES = {"a": 5, "b": 3, "c": 11, "x": {"y": 3}, "l": [1, 2, 3], "t": True, "f": False, "s": "a'b"}


def _random_cel(rng) -> str:
    def num(depth):
        if depth <= 0 or rng.random() < 0.25:
            return rng.choice(["a", "b", "c", "1", "2", "7", "-4", "x.y", "l[1]", "size(l)", "0x10"])
        shape = rng.random()
        if shape < 0.6:
            text = f"{num(depth - 1)} {rng.choice('+-*/%')} {num(depth - 1)}"
        elif shape < 0.75:
            text = f"{'-' * rng.randint(1, 2)}{num(depth - 1)}"
        else:
            text = f"{cond(depth - 1)} ? {num(depth - 1)} : {num(depth - 1)}"
        return f"({text})" if rng.random() < 0.35 else text

    def cond(depth):
        if depth <= 0 or rng.random() < 0.25:
            return rng.choice(["t", "f", "a < b", "2 in l", "has(x.y)", r"s == 'a\'b'"])
        shape = rng.random()
        if shape < 0.45:
            text = f"{cond(depth - 1)} {rng.choice(['&&', '||', '==', '!='])} {cond(depth - 1)}"
        elif shape < 0.6:
            text = f"{'!' * rng.randint(1, 3)}{cond(depth - 1)}"
        elif shape < 0.85:
            text = f"{num(depth - 1)} {rng.choice(['<', '<=', '>', '>=', '==', '!='])} {num(depth - 1)}"
        else:
            text = f"l.{rng.choice(['all', 'exists', 'exists_one'])}(q, q < {num(depth - 1)})"
        return f"({text})" if rng.random() < 0.35 else text

    return cond(5) if rng.random() < 0.5 else num(5)


def test_parser_round_trip_preserves_meaning():
    """rules.py re-parses CEL to rewrite it (RE2 matches, promoted arithmetic): the source it
    emits must mean exactly what the engine made of the original."""
    import random

    import cel

    def run(source):
        try:
            return "ok", cel.evaluate(source, ROUND_TRIP_VARIABLES)
        except Exception as exc:
            return "error", type(exc).__name__

    for source in PARSER_CORPUS:
        assert run(source) == ("ok", True), source
        emitted = rules_mod._emit(rules_mod._Parser(source).parse())
        assert run(emitted) == ("ok", True), (source, emitted)
    rng = random.Random(20240612)
    checked = 0
    for _ in range(1500):
        source = _random_cel(rng)
        try:
            cel.compile(source)
        except ValueError:
            continue
        emitted = rules_mod._emit(rules_mod._Parser(source).parse())
        assert run(emitted) == run(source), (source, emitted)
        checked += 1
    assert checked > 1000


def test_invalid_proposed_decision_is_rejected(shipped):
    with pytest.raises(ValueError):
        decide(shipped["expense_policy"], clean_receipt(), proposed="approved")


def test_every_reason_carries_rule_and_version(shipped):
    verdict = decide(shipped["expense_policy"], {"total": -1, "foo": 1})
    assert verdict.reasons
    for reason in verdict.reasons:
        assert reason["rule"] == "expense_policy"
        assert reason["rule_version"] == shipped["expense_policy"].version
        assert set(reason) >= {"check", "outcome", "message"}


def test_default_now_is_current_time(shipped):
    old = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=400)).date().isoformat()
    verdict = evaluate(shipped["expense_policy"], _receipt(transaction_date=old), {})
    assert verdict.decision == "reject"
    assert "receipt_too_old" in fired(verdict)


def test_naive_now_is_treated_as_utc(shipped):
    naive = NOW.replace(tzinfo=None)
    assert decide(shipped["expense_policy"], clean_receipt(), now=naive).decision == "approve"


def test_typical_receipt_evaluates_in_under_2ms(shipped):
    """The compiled Rust CEL engine; cel-python took ~15 ms for this document."""
    rule = shipped["expense_policy"]
    receipt, document = clean_receipt(), {"text": "...", "pages": 1, "mime_type": "image/jpeg", "filename": "r.jpg"}
    for _ in range(5):  # warm-up: regex cache, context pool
        decide(rule, receipt, document)
    runs = 50
    start = time.perf_counter()
    for _ in range(runs):
        verdict = decide(rule, receipt, document)
    elapsed = (time.perf_counter() - start) / runs
    assert verdict.decision == "approve", verdict.reasons
    assert elapsed < 0.002, f"{elapsed * 1000:.2f} ms per evaluation"


def test_evaluation_is_fast(shipped):
    receipt = _receipt(items=[{"description": f"Item {i}", "amount": 1.0} for i in range(50)], total=50.0, subtotal=None, tax=None)
    rule = shipped["expense_policy"]
    decide(rule, receipt)
    start = time.perf_counter()
    for _ in range(5):
        verdict = decide(rule, receipt)
    elapsed = (time.perf_counter() - start) / 5
    assert verdict.decision == "approve", verdict.reasons
    assert elapsed < 0.5, f"{elapsed * 1000:.0f} ms per evaluation"


# ---------------------------------------------------------------- custom rules written to tmp_path

MINIMAL = {
    "name": "mini",
    "description": "test rule",
    "document_type": "receipt",
    "params": {"cap": 10.0, "max_items": 3},
    "prompt": "Read the receipt. Chinese documents are common.",
    "fields": {
        "type": "object",
        "required": ["merchant_name"],
        "additionalProperties": False,
        "properties": {
            "merchant_name": {"type": "string", "pattern": "^[^\\x00-\\x1f]{1,200}$"},
            "total": {"type": "number", "minimum": -1e6, "maximum": 1e6},
            "items": {"type": "array", "maxItems": 50, "items": {"type": "object"}},
        },
    },
    "checks": [{"id": "under_cap", "expr": "fields.total <= params.cap", "outcome": "reject", "message": "over {params.cap}"}],
}


def write_rule(tmp_path: Path, data: dict | str, name: str = "mini") -> Path:
    path = tmp_path / f"{name}.yaml"
    text = data if isinstance(data, str) else yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


def mutated(**changes) -> dict:
    data = copy.deepcopy(MINIMAL)
    data.update(changes)
    return data


def test_evaluation_error_needs_review_with_check_id(tmp_path):
    rule = load_rule(write_rule(tmp_path, MINIMAL))
    # total is optional and the expression has no has() guard: evaluating it fails
    verdict = evaluate(rule, {"merchant_name": "Shop"}, {}, now=NOW)
    assert verdict.decision == "needs_review"
    (reason,) = verdict.reasons
    assert reason["check"] == "under_cap"
    assert reason["outcome"] == "needs_review"
    assert reason["message"].startswith("could not evaluate:")
    assert "total" in reason["message"]
    assert len(reason["message"]) < 400  # no dump of the activation or engine advice is leaked
    # a type error is also caught, and never becomes approve
    verdict = evaluate(rule, {"merchant_name": "Shop", "total": "12"}, {}, now=NOW)
    assert verdict.decision == "needs_review"
    assert "under_cap" in fired(verdict)
    # and the message placeholder renders when the check simply fails
    verdict = evaluate(rule, {"merchant_name": "Shop", "total": 11}, {}, now=NOW)
    assert verdict.decision == "reject"
    assert verdict.reasons[0]["message"] == "over 10"


def test_evaluation_error_does_not_loosen_reject(tmp_path):
    rule = load_rule(write_rule(tmp_path, MINIMAL))
    verdict = evaluate(rule, {"merchant_name": "Shop"}, {}, now=NOW, proposed="reject")
    assert verdict.decision == "reject"


def test_non_bool_result_needs_review(tmp_path):
    data = mutated(checks=[{"id": "num", "expr": "size(fields.merchant_name)", "outcome": "reject", "message": "x"}])
    verdict = evaluate(load_rule(write_rule(tmp_path, data)), {"merchant_name": "Shop"}, {}, now=NOW)
    assert verdict.decision == "needs_review"
    assert verdict.reasons[0]["message"].startswith("could not evaluate:")


@pytest.mark.parametrize(
    "expr",
    [
        "1 < fields.total",
        "fields.total == 5",
        "5 == fields.total",
        "2 * fields.total == 10.0",
        "size(fields.items) <= params.max_items",
        "fields.total in [5, 6]",
        "document.pages >= 1 && document.pages < params.cap",
        "timestamp('2024-06-10T00:00:00Z').getDayOfWeek() == 1",
        "now > timestamp('2024-06-01T00:00:00Z') && now - duration('24h') < timestamp('2024-06-12T00:00:00Z')",
        "fields.merchant_name.matches('(?i)^shop') && fields.merchant_name.matches('餐厅')",
        "fields.items.exists(i, i.name.contains('啤酒'))",
    ],
)
def test_cel_mixed_numbers_and_helpers(tmp_path, expr):
    data = mutated(checks=[{"id": "c", "expr": expr, "outcome": "reject", "message": "x"}])
    rule = load_rule(write_rule(tmp_path, data))
    fields = {"merchant_name": "SHOP 餐厅", "total": 5, "items": [{"name": "青岛啤酒"}, {"name": "rice"}]}
    verdict = evaluate(rule, fields, {"pages": 2}, now=NOW)
    assert verdict.decision == "approve", verdict.reasons


def test_has_guard_avoids_errors_for_absent_optional_fields(tmp_path):
    data = mutated(checks=[{"id": "c", "expr": "!has(fields.total) || fields.total <= params.cap", "outcome": "reject", "message": "x"}])
    rule = load_rule(write_rule(tmp_path, data))
    assert evaluate(rule, {"merchant_name": "Shop"}, {}, now=NOW).decision == "approve"
    assert evaluate(rule, {"merchant_name": "Shop", "total": 11}, {}, now=NOW).decision == "reject"


def test_load_rules_reads_yml_too_and_rejects_duplicates(tmp_path):
    write_rule(tmp_path, MINIMAL)
    other = mutated(name="other")
    (tmp_path / "other.yml").write_text(yaml.safe_dump(other), encoding="utf-8")
    (tmp_path / "notes.txt").write_text("ignored", encoding="utf-8")
    assert set(load_rules(tmp_path)) == {"mini", "other"}
    (tmp_path / "mini.yml").write_text(yaml.safe_dump(MINIMAL), encoding="utf-8")
    with pytest.raises(RuleError, match="already defined"):
        load_rules(tmp_path)


def test_load_rules_missing_directory(tmp_path):
    with pytest.raises(RuleError, match="does not exist"):
        load_rules(tmp_path / "nope")


def _checks(*items):
    return [dict(zip(("id", "expr", "outcome", "message"), item)) for item in items]


INVALID_RULES = {
    "bad_yaml": ("name: mini\nchecks: [\n  - id: x\n", "invalid YAML"),
    "not_a_mapping": ("- just\n- a list\n", "mapping"),
    "duplicate_yaml_key": ("name: mini\nname: mini\n", "duplicate key"),
    "name_not_stem": (mutated(name="other_name"), "must equal the file name stem"),
    "missing_prompt": ({k: v for k, v in MINIMAL.items() if k != "prompt"}, "prompt"),
    "unknown_top_level_key": (mutated(extra=1), "extra"),
    "bad_document_type": (mutated(document_type="invoice"), "invoice"),
    "bad_cel_syntax": (mutated(checks=_checks(("c", "fields.total >", "reject", "m"))), "CEL does not compile"),
    "unknown_function": (mutated(checks=_checks(("c", "fields.merchant_name.lowerAscii() == 'x'", "reject", "m"))), "unknown function"),
    "unknown_variable": (mutated(checks=_checks(("c", "feilds.total > 1.0", "reject", "m"))), "unknown variable"),
    "unknown_field": (mutated(checks=_checks(("c", "!has(fields.totl) || fields.totl > 1.0", "reject", "m"))), "fields.totl"),
    "unknown_param": (mutated(checks=_checks(("c", "fields.total > params.capp", "reject", "m"))), "params.capp"),
    "unknown_document_key": (mutated(checks=_checks(("c", "document.txt != ''", "reject", "m"))), "document.txt"),
    "bad_regex_literal": (mutated(checks=_checks(("c", "fields.merchant_name.matches('(?<=a)b')", "reject", "m"))), "RE2"),
    "bad_regex_param": (mutated(params={"cap": 1.0, "max_items": 3, "name_pattern": "(unclosed"}), "name_pattern"),
    "bad_outcome": (mutated(checks=_checks(("c", "true", "approve", "m"))), "approve"),
    "duplicate_check_ids": (mutated(checks=_checks(("c", "true", "reject", "m"), ("c", "false", "reject", "m"))), "duplicate check id"),
    "bad_check_id": (mutated(checks=_checks(("Bad Id", "true", "reject", "m"))), "Bad Id"),
    "unknown_message_param": (mutated(checks=_checks(("c", "true", "reject", "over {params.nope}"))), "params.nope"),
    "invalid_json_schema": (mutated(fields={**MINIMAL["fields"], "properties": {"merchant_name": {"type": "text"}}}), "not a valid JSON Schema"),
    "invalid_json_schema_keyword_value": (mutated(fields={**MINIMAL["fields"], "properties": {"merchant_name": {"type": "string", "maxLength": -1}}}), "not a valid JSON Schema"),
    "required_not_declared": (mutated(fields={**MINIMAL["fields"], "required": ["merchant"]}), "merchant"),
    "fields_not_object_schema": (mutated(fields={"type": "array", "properties": {}}), "fields"),
    "unknown_global_function": (mutated(checks=_checks(("c", "lowerAscii(fields.merchant_name) == 'x'", "reject", "m"))), "unknown function lowerAscii()"),
    "internal_helper_is_not_callable": (mutated(checks=_checks(("c", "_docket_matches(fields.merchant_name, 'x')", "reject", "m"))), "unknown function"),
    "time_zone_argument": (mutated(checks=_checks(("c", "now.getDayOfWeek('Asia/Kuala_Lumpur') != 0", "reject", "m"))), "time-zone"),
    "bad_regex_literal_global_form": (mutated(checks=_checks(("c", "matches(fields.merchant_name, 'a(b')", "reject", "m"))), "RE2"),
    "unknown_field_in_macro": (mutated(checks=_checks(("c", "fields.items.all(i, fields.totl > 1.0)", "reject", "m"))), "fields.totl"),
    "unknown_variable_outside_macro": (mutated(checks=_checks(("c", "fields.items.all(i, true) && i > 1", "reject", "m"))), "unknown variable 'i'"),
}


@pytest.mark.parametrize("case", sorted(INVALID_RULES))
def test_invalid_rule_files_raise(tmp_path, case):
    data, needle = INVALID_RULES[case]
    path = write_rule(tmp_path, data)
    with pytest.raises(RuleError) as info:
        load_rule(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    assert needle in message, message
    # load_rules fails loudly too
    with pytest.raises(RuleError, match=re.escape(str(path))):
        load_rules(tmp_path)


def test_non_utf8_rule_file(tmp_path):
    path = tmp_path / "mini.yaml"
    path.write_bytes(b"name: mini\ndescription: \xff\xfe\n")
    with pytest.raises(RuleError, match="UTF-8"):
        load_rule(path)


def test_module_exports_rule_file_schema():
    # the rule-format schema is itself a valid JSON Schema
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(rules_mod.RULE_FILE_SCHEMA)
