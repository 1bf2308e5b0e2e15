"""English and 简体中文: the catalogs, problem+json, reasons, rule files and webhooks in the reader's
language (the dashboard in Chromium: tests/test_i18n_dashboard.py).

These fail on an untranslated string: a problem code used anywhere in the source without a
Chinese title, a built-in check without a zh-Hans message, a catalog entry left empty."""
from __future__ import annotations

import io
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from werkzeug.exceptions import default_exceptions

from api import create_app
from db import models
from db.models import Decision, Job, WebhookDelivery
from db.session import session_scope
from docket import i18n, lifecycle
from docket.problem_text import PROBLEMS
from docket.reasons import localize_all
from docket.rules import RuleError, default_rules_dir, load_rule, load_rules
from docket.rules.evaluation import evaluate
from docket.tenants import create_key
from tests.conftest import ROOT
from tests.documents import encode, receipt_image

PO = ROOT / "docket" / "translations" / "zh_Hans" / "LC_MESSAGES" / "messages.po"
MO = PO.with_suffix(".mo")
CJK = re.compile(r"[\u4e00-\u9fff]")


def catalog():
    with PO.open("rb") as f:
        return read_po(f, locale="zh_Hans")


def test_catalog_complete_and_compiled():
    """Every extracted string has a translation, and the shipped .mo is the compiled .po."""
    po = catalog()
    empty = [m.id for m in po if m.id and not (m.string if isinstance(m.string, str) else all(m.string))]
    assert not empty, f"untranslated strings in {PO.name} (bash scripts/i18n.sh update, then translate): {empty}"
    fuzzy = [m.id for m in po if m.id and m.fuzzy]
    assert not fuzzy, f"fuzzy translations: {fuzzy}"
    with MO.open("rb") as f:
        mo = read_mo(f)
    def flat(messages):
        return {(m.id if isinstance(m.id, str) else tuple(m.id)): (m.string if isinstance(m.string, str) else tuple(m.string))
                for m in messages if m.id}

    shipped, wanted = flat(mo), flat(po)
    assert shipped == wanted, "messages.mo is stale: run bash scripts/i18n.sh compile and commit it"


def test_every_marked_string_is_in_the_catalog(tmp_path):
    """What the source marks for translation today (as scripts/i18n.sh extracts it) is all in the
    catalog, translated: a new _() / t() string without `bash scripts/i18n.sh update` fails here."""
    import subprocess
    import sys

    script = (ROOT / "scripts" / "i18n.sh").read_text()
    keywords = re.search(r"extract -F babel.cfg (.*?) \\\n", script).group(1).split()
    pot = tmp_path / "messages.pot"
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "-q", "extract", "-F", "babel.cfg", *keywords,
                    "-o", str(pot), "."], cwd=ROOT, check=True, capture_output=True)
    with pot.open("rb") as f:
        marked = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(f) if m.id}
    translated = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog() if m.id and m.string}
    assert len(marked) > 300
    missing = sorted(marked - translated)
    assert not missing, f"marked for translation but not in {PO.name} (bash scripts/i18n.sh update, translate): {missing}"


def _codes_in_source() -> set[str]:
    codes = set()
    pattern = re.compile(r"""code\s*=\s*["']([a-z_]+)["']|problem\(\s*\d+,\s*["']([a-z_]+)["']""")
    for folder in ("api", "docket", "db", "worker"):
        for path in (ROOT / folder).rglob("*.py"):
            for match in pattern.finditer(path.read_text(encoding="utf-8")):
                codes.add(match.group(1) or match.group(2))
    return codes


def test_every_problem_code_has_a_chinese_title_and_detail():
    codes = _codes_in_source() | {(e().name or "").lower().replace(" ", "_") for e in default_exceptions.values()}
    assert {"not_found", "file_too_large", "unsupported_type", "invalid_rule"} <= codes  # the scan sees them
    missing = sorted(codes - set(PROBLEMS))
    assert not missing, f"problem codes without a title in docket/problem_text.py: {missing}"
    zh = i18n.translations("zh_Hans")
    for code, (title, detail) in PROBLEMS.items():
        assert CJK.search(zh.gettext(title)), f"{code}: title {title!r} has no Chinese translation"
        assert CJK.search(zh.gettext(detail)), f"{code}: detail {detail!r} has no Chinese translation"


def test_every_builtin_check_has_a_chinese_message():
    rules = load_rules(default_rules_dir())
    assert rules
    for rule in rules.values():
        for check in (*rule.checks, *getattr(rule, "claim_checks", ())):
            assert CJK.search(check.messages.get("zh_Hans", "")), f"{rule.name}.{check.id} has no zh-Hans message"


def test_language_negotiation():
    assert i18n.from_accept_language("zh-CN,zh;q=0.9,en;q=0.8") == "zh_Hans"
    assert i18n.from_accept_language("en-US,en;q=0.9,zh-Hans;q=0.8") == "en"
    assert i18n.from_accept_language("fr, zh;q=0.5") == "zh_Hans"
    assert i18n.from_accept_language("zh-TW") is None  # Traditional is not Simplified
    assert i18n.from_accept_language("de, fr") is None and i18n.from_accept_language("zh;q=0") is None
    assert i18n.from_environment({"LANG": "zh_CN.UTF-8"}) == "zh_Hans"
    assert i18n.from_environment({"LANG": "C.UTF-8", "LANGUAGE": "zh_CN"}) == "en"
    assert i18n.from_environment({"LC_ALL": "", "LANG": "en_GB.UTF-8"}) == "en"


# --- rule files -------------------------------------------------------------------------------

BASE = (ROOT / "rules" / "expense_policy.yaml").read_text(encoding="utf-8")
WEEKEND_ZH = 'zh-Hans: "周末发生的费用（{fields.transaction_date}）须说明业务事由"'


@pytest.mark.parametrize("bad, says", [
    ('zh-Hans: "周末（{params.no_such_param}）"', "unknown params.no_such_param"),
    ('zh-Hans: "周末（{fields.no_such_field}）"', "fields.no_such_field, which is not declared"),
    ('zh-Hans: "周末（{document.total_shown}）"', "document.total_shown, which its en message does not use"),
    ('fr: "Dépense du week-end"', "message language 'fr' is not one Docket speaks"),
])
def test_rules_validate_checks_every_language(tmp_path, bad, says):
    assert WEEKEND_ZH in BASE
    path = tmp_path / "expense_policy.yaml"
    path.write_text(BASE.replace(WEEKEND_ZH, bad), encoding="utf-8")
    with pytest.raises(RuleError) as info:
        load_rule(path)
    assert says in str(info.value) and "weekend_spending" in str(info.value)
    assert info.value.line == BASE.splitlines().index("      " + WEEKEND_ZH) + 1  # the line of that template
    # `docket rules validate` says the same and exits 1.
    from click.testing import CliRunner

    from docket.cli import main

    result = CliRunner().invoke(main, ["rules", "validate", str(path)])
    assert result.exit_code == 1 and says in result.output, result.output


def test_plain_string_messages_stay_valid(tmp_path):
    text = BASE.replace('    message:\n      en: "Weekend spending ({fields.transaction_date}) needs a business justification"\n'
                        f'      {WEEKEND_ZH}\n',
                        '    message: "Weekend spending ({fields.transaction_date}) needs a business justification"\n')
    assert text != BASE
    (tmp_path / "expense_policy.yaml").write_text(text, encoding="utf-8")
    rule = load_rule(tmp_path / "expense_policy.yaml")
    check = next(c for c in rule.checks if c.id == "weekend_spending")
    assert check.messages == {} and check.message.startswith("Weekend spending")


def test_reasons_rendered_in_each_language_from_what_was_stored():
    rule = load_rules(default_rules_dir())["expense_policy"]
    saturday = date.today() - timedelta(days=(date.today().weekday() - 5) % 7 or 7)
    verdict = evaluate(rule, {"merchant_name": "KEDAI", "total": 9000.0, "transaction_date": saturday.isoformat(),
                              "currency": "MYR"}, {"total_shown": "MYR 9,000.00"})
    stored = [dict(r) for r in verdict.reasons]
    by_check = {r["check"]: r for r in stored}
    assert by_check["max_total"]["args"] == {"params.cap_currency": "MYR", "params.max_total": "5000",
                                             "document.total_shown": "MYR 9,000.00"}
    zh = {r["check"]: r["message"] for r in localize_all(stored, "zh_Hans")}
    assert zh["max_total"] == "单张票据超过 MYR 5000 的不能走费用报销，请改走采购申请（本票据：MYR 9,000.00）"
    assert zh["weekend_spending"] == f"周末发生的费用（{saturday.isoformat()}）须说明业务事由"
    en = localize_all(stored, "en")
    assert [r["message"] for r in en] == [r["message"] for r in verdict.reasons]
    assert all("templates" not in r for r in en + localize_all(stored, "zh_Hans"))
    assert stored == [dict(r) for r in verdict.reasons]  # rendering changed nothing
    # Docket's own reasons through the catalog.
    missing = evaluate(rule, {"total": 5.0}, {})
    zh_missing = {r["check"]: r["message"] for r in localize_all(missing.reasons, "zh_Hans")}
    assert zh_missing["required:merchant_name"] == "未识别到必填字段 merchant_name"


# --- the API ----------------------------------------------------------------------------------

@pytest.fixture
def api(settings, redis_url):
    app = create_app(settings, broker_url=redis_url.rsplit("/", 1)[0] + "/14")
    with session_scope(settings.database_url) as s:
        _, key = create_key(s, "lang", "admin")
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    return client


def _decided_job(api, settings) -> str:
    saturday = date.today() - timedelta(days=(date.today().weekday() - 5) % 7 or 7)
    data = encode(receipt_image(saturday), "PNG")
    r = api.post("/v1/jobs", data={"rule": "expense_policy", "file": (io.BytesIO(data), "sat.png")})
    assert r.status_code == 202, r.get_json()
    job_id = r.get_json()["id"]
    fields = {"merchant_name": "KEDAI", "total": 45.0, "currency": "MYR", "transaction_date": saturday.isoformat()}
    with session_scope(settings.database_url) as s:
        job = s.get(Job, job_id)
        rule = load_rules(default_rules_dir())["expense_policy"]
        verdict = evaluate(rule, fields, {"text": ""})
        attempt = lifecycle.claim(s, job_id, 600)
        assert lifecycle.succeed(s, job_id, attempt, Decision(
            job_id=job_id, decision=verdict.decision, fields=fields, reasons=verdict.reasons, confidence={},
            evidence={}, rule_name=rule.name, rule_version=rule.version, analyzer="ocr", timings={}, text=""))
    return job_id


def test_api_speaks_the_callers_language(api, settings):
    # problem+json: title and detail in Chinese, the code unchanged; Content-Language says which.
    for header in ({"Accept-Language": "zh-Hans"}, {"Accept-Language": "zh-CN,zh;q=0.9"}, {"Accept-Language": "zh"}):
        r = api.get("/v1/jobs/nope", headers=header)
        body = r.get_json()
        assert (r.status_code, body["code"], r.headers["Content-Language"]) == (404, "not_found", "zh-Hans")
        assert body["title"] == "未找到" and CJK.search(body["detail"]) and body["type"].endswith("/not_found")
    r = api.get("/v1/jobs/nope")
    assert (r.get_json()["title"], r.headers["Content-Language"]) == ("Not found", "en")
    assert "Accept-Language" in r.headers["Vary"]
    r = api.get("/v1/jobs?limit=nope&lang=zh-Hans")
    assert (r.get_json()["code"], r.get_json()["title"]) == ("invalid_query", "查询参数无效")
    r = api.post("/v1/webhooks", data="nope", content_type="text/plain", headers={"Accept-Language": "zh-CN"})
    assert (r.get_json()["code"], r.get_json()["detail"]) == ("invalid_json", '请发送 JSON {"url", "event_types"}。')
    en_refusal = api.post("/v1/jobs", data={"rule": "expense_policy"}).get_json()
    zh_refusal = api.post("/v1/jobs", data={"rule": "expense_policy"}, headers={"Accept-Language": "zh-CN"}).get_json()
    assert zh_refusal["code"] == en_refusal["code"] and zh_refusal["status"] == en_refusal["status"]
    assert CJK.search(zh_refusal["title"]) and CJK.search(zh_refusal["detail"]) and not CJK.search(en_refusal["title"])

    # Reasons: rendered for the caller from what the decision stored; the decision never changes.
    job_id = _decided_job(api, settings)
    en = api.get(f"/v1/jobs/{job_id}").get_json()
    zh = api.get(f"/v1/jobs/{job_id}", headers={"Accept-Language": "zh-CN"}).get_json()
    assert en["decision"] == zh["decision"] == "needs_review"
    assert [r["check"] for r in en["reasons"]] == [r["check"] for r in zh["reasons"]]
    weekend_en = next(r for r in en["reasons"] if r["check"] == "weekend_spending")
    weekend_zh = next(r for r in zh["reasons"] if r["check"] == "weekend_spending")
    assert weekend_en["message"].startswith("Weekend spending") and weekend_zh["message"].startswith("周末发生的费用")
    assert zh["decisions"][0]["reasons"][0]["message"] == weekend_zh["message"]
    streamed = api.get(f"/v1/jobs/{job_id}/events", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert "周末发生的费用" in streamed and "Weekend spending" not in streamed  # built when sent, in the caller's language
    exported = api.get("/v1/jobs/export.csv", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert "weekend_spending: 周末发生的费用" in exported
    listed = api.get("/v1/jobs?lang=zh-Hans").get_json()["jobs"]
    assert any(r["message"].startswith("周末") for j in listed if j["id"] == job_id for r in j["reasons"])
    with session_scope(settings.database_url) as s:
        stored = s.get(Job, job_id).decision.reasons
    assert next(r for r in stored if r["check"] == "weekend_spending")["message"] == weekend_en["message"]

    # A failed job's error: its code as stored, its message explained in the caller's language.
    data = encode(receipt_image(date.today()), "PNG")
    failed = api.post("/v1/jobs", data={"rule": "expense_policy", "file": (io.BytesIO(data), "x.png")}).get_json()["id"]
    with session_scope(settings.database_url) as s:
        assert lifecycle.fail(s, failed, "analysis_error", "ValueError: boom", lifecycle.claim(s, failed, 600))
    error = api.get(f"/v1/jobs/{failed}", headers={"Accept-Language": "zh"}).get_json()["error"]
    assert error == {"code": "analysis_error", "message": "无法识别该单据，错误已记录。"}
    assert api.get(f"/v1/jobs/{failed}").get_json()["error"]["message"] == "ValueError: boom"

    # Webhooks: each subscription in its own language; the review's request language does not leak.
    hooks = {}
    for language in ("zh-Hans", None):
        body = {"url": "https://hooks.example.com/docket", "event_types": ["review.updated"]}
        if language:
            body["language"] = language
        r = api.post("/v1/webhooks", json=body)
        assert r.status_code == 201, r.get_json()
        hooks[language] = r.get_json()["id"]
        assert r.get_json()["language"] == (language or "en")
    assert api.post("/v1/webhooks", json={"url": "https://hooks.example.com/x", "language": "fr"}).status_code == 422
    r = api.post(f"/v1/jobs/{job_id}/reviews", json={"decision": "approve", "comment": "出差期间"},
                 headers={"Accept-Language": "zh-CN"})
    assert r.status_code == 201, r.get_json()
    with session_scope(settings.database_url) as s:
        sent = {d.subscription_id: d.payload for d in s.query(WebhookDelivery).filter_by(job_id=job_id)}
    said = {sub: next(r["message"] for r in sent[sub]["data"]["reasons"] if r["check"] == "weekend_spending")
            for sub in hooks.values()}
    assert said[hooks["zh-Hans"]].startswith("周末发生的费用") and said[hooks[None]] == weekend_en["message"]


def test_tenant_default_language(api, settings):
    with session_scope(settings.database_url) as s:
        s.get(models.Tenant, "lang").default_locale = "zh_Hans"
    from api import i18n as api_i18n

    api_i18n._TENANT_DEFAULTS.clear()
    r = api.get("/v1/jobs/nope")
    assert (r.get_json()["title"], r.headers["Content-Language"]) == ("未找到", "zh-Hans")
    r = api.get("/v1/jobs/nope", headers={"Accept-Language": "en"})  # the caller's own choice wins
    assert r.get_json()["title"] == "Not found"


# --- the CLI ----------------------------------------------------------------------------------

def test_cli_speaks_lang_or_the_environment(monkeypatch):
    from click.testing import CliRunner

    from docket import cli

    path = str(ROOT / "rules" / "expense_policy.yaml")
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_MESSAGES", raising=False)
    said = CliRunner().invoke(cli.main, ["rules", "validate", path])
    assert said.exit_code == 0 and "校验通过（15 个检查项）" in said.output, said.output
    said = CliRunner().invoke(cli.main, ["--lang", "en", "rules", "validate", path])
    assert said.exit_code == 0 and "valid (15 checks)" in said.output
    refused = CliRunner().invoke(cli.main, ["--lang", "fr", "rules", "validate", path])
    assert refused.exit_code == 2 and "Docket speaks en, zh-Hans" in refused.output

    # `docket analyze` prints each result the same way (tests/test_cli.py runs it end to end).
    rule = load_rules(default_rules_dir())["expense_policy"]
    verdict = evaluate(rule, {"merchant_name": "中国铁路", "total": 57.0, "transaction_date": "2019-04-21",
                              "currency": "MYR"}, {})
    result = {"file": "ticket.jpg", "status": "succeeded", "decision": verdict.decision,
              "fields": {"total": 57.0}, "reasons": verdict.reasons}
    with i18n.using("zh_Hans"):
        result["reasons"] = localize_all(verdict.reasons)
        text = cli._human(result)
    assert text.startswith("ticket.jpg: 驳回") and "[驳回] receipt_too_old: 开票已超过 90 天，超出报销期限" in text
    assert "[待复核] weekend_spending: 周末发生的费用（2019-04-21）须说明业务事由" in text
    with i18n.using("en"):
        english = cli._human({**result, "reasons": localize_all(verdict.reasons)})
    assert english.startswith("ticket.jpg: REJECT") and "[needs_review] weekend_spending: Weekend spending" in english


def test_dates_and_money_per_language(settings, redis_url):
    """The dashboard's filters: Babel's formats for the request's language."""
    from datetime import datetime, timezone

    from flask_babel import get_locale

    app = create_app(settings, broker_url=redis_url.rsplit("/", 1)[0] + "/14")
    moment = datetime(2026, 12, 7, 15, 4, tzinfo=timezone.utc)
    for lang, money, when in (("zh-Hans", "¥1,234.50", "2026年12月7日 15:04 UTC"),
                              ("en", "CN¥1,234.50", "2026-12-07 15:04 UTC")):
        with app.test_request_context(f"/dashboard?lang={lang}"):
            i18n.set_current_lazy(lambda: str(get_locale()))  # as api/i18n.py does per request
            env = app.jinja_env
            assert env.filters["money"](1234.5, "CNY") == money
            assert env.filters["when"](moment) == when


def test_claim_cli_output_in_chinese():
    from docket.claim_cli import human

    body = {"id": "c1", "status": "decided", "decision": "needs_review",
            "claim": {"employee": "王芳", "trip": {"start": "2026-12-01", "end": "2026-12-03", "destination": "上海"}},
            "totals": {"currency": "CNY", "amount": 1234.5, "by_category": {"lodging": 900.0, "meals": 334.5},
                       "deductible_vat": 50.94},
            "reasons": [{"check": "meals_over_daily_cap", "outcome": "needs_review", "message": "…", "job_ids": ["j1"]}],
            "documents": [{"job_id": "j1", "filename": "餐饮.png", "decision": "approve", "category": "meals",
                           "date": "2026-12-02", "amount": 334.5}], "jobs": []}
    with i18n.using("zh_Hans"):
        text = human(body, [])
    assert text.splitlines()[0] == "报销单 c1：待复核（王芳，行程 2026-12-01 至 2026-12-03 上海）"
    assert "合计：CNY 1234.5（住宿 900, 餐饮 334.5）；可抵扣进项税额 CNY 50.94" in text
    assert "[待复核] meals_over_daily_cap" in text and "餐饮.png: 通过  餐饮  2026-12-02  334.5" in text
    with i18n.using("en"):
        assert human(body, []).splitlines()[0] == "claim c1: needs_review  (王芳, trip 2026-12-01..2026-12-03 上海)"
