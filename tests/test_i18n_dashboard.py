"""Every dashboard page in 简体中文, read in Chromium: no English UI text left (data aside).

One real `docket serve` (Postgres + Redis) with a few documents through the real pipeline, one
browser whose language is zh-CN (Accept-Language), every page visited in one test. What counts
as data: elements marked translate="no" (file names, merchants, rule names, key names, notes,
the policy's own YAML and description), <code>/<kbd>/<pre>, snake_case identifiers and
all-capital words (currency codes, acronyms, merchants printed in capitals). Anything else with
a Latin word of three letters or more is an untranslated string and fails the test, naming it.
Screenshots land in test-artifacts/i18n/."""
from __future__ import annotations

import json
import re
from datetime import date, timedelta

import pytest

from tests.conftest import ROOT, SAMPLES, Server, base_env
from tests.documents import encode, last_weekday, receipt_image

ARTIFACTS = ROOT / "test-artifacts" / "i18n"

# Words that are names, not English: the product, the languages' own names, units and keys.
ALLOWED = {"Docket", "English", "WebP", "KiB", "MiB", "GiB", "Ctrl", "Enter", "Bearer"}

# Visible text and the texts people read in attributes, outside what is marked as data.
COLLECT = """() => {
  const skip = el => el.closest('[translate="no"], code, kbd, pre, script, style, [hidden], template');
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode, parent = node.parentElement;
    if (!parent || skip(parent) || !node.textContent.trim()) continue;
    if (parent.closest('svg') === null && parent.getClientRects().length === 0 && parent.tagName !== 'OPTION') continue;
    out.push(node.textContent.trim());
  }
  for (const el of document.querySelectorAll('[title], [placeholder], [aria-label], [alt]')) {
    if (skip(el)) continue;
    for (const name of ['title', 'placeholder', 'aria-label', 'alt']) {
      const v = el.getAttribute(name);
      if (v && v.trim()) out.push(v.trim());
    }
  }
  out.push(document.title);
  return out;
}"""

# snake_case, file.png, a/b, sha256:…, and ids with digits in them (d1f7ba599bec, G1234)
IDENTIFIER = re.compile(r"\b[A-Za-z0-9]+(?:[_.:/-][A-Za-z0-9]+)+\b|\b(?=[A-Za-z]*\d)[A-Za-z0-9]+\b")
WORD = re.compile(r"[A-Za-z]{3,}")


def english_in(texts: list[str]) -> list[str]:
    """The texts that still hold an English word (not an identifier, not an all-capital word)."""
    found = []
    for text in texts:
        stripped = IDENTIFIER.sub(" ", text)
        words = [w for w in WORD.findall(stripped) if not w.isupper() and w not in ALLOWED]
        if words:
            found.append(text)
    return found


@pytest.fixture(scope="module")
def stack(tmp_path_factory, postgres_url, redis_url):
    env = base_env(tmp_path_factory.mktemp("i18n") / "data")
    env.update(DOCKET_DATABASE_URL=postgres_url, DOCKET_REDIS_URL=redis_url, DOCKET_LOGIN_RATE_LIMIT="1000/minute")
    srv = Server(env)
    try:
        weekend = encode(receipt_image(last_weekday(date.today(), 5), merchant="WEEKEND MART SDN BHD", total="45.00",
                                       items=(("SNACKS", "45.00"),)), "PNG")
        # One expense claim (its documents are a batch too): claim, batch and job pages from one upload.
        header = {"employee": "王芳", "purpose": "客户拜访", "trip": {"start": (date.today() - timedelta(days=9)).isoformat(),
                                                               "end": date.today().isoformat(), "destination": "上海"}}
        claim = srv.http.post(f"{srv.url}/v1/claims", data={"rule": "expense_policy", "claim": json.dumps(header)},
                              timeout=30, files=[("files", ("weekend.png", weekend)),
                                                 ("files", ("receipt-zh.png", (SAMPLES / "receipt-zh.png").read_bytes()))])
        assert claim.status_code == 202, claim.text
        srv.claim_id = claim.json()["id"]
        srv.job_ids = claim.json()["job_ids"]
        srv.finished = [srv.wait_job(job_id) for job_id in srv.job_ids]
        srv.batch_id = srv.finished[0]["batch_id"]
        assert srv.finished[0]["decision"] == "needs_review", srv.finished[0]
        srv.submitter_key = srv.create_key("submitter", srv.tenant)
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def zh_page(browser):
    context = browser.new_context(viewport={"width": 1366, "height": 850}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def check_page(page, name: str, problems: dict) -> None:
    page.wait_for_load_state()
    assert page.evaluate("document.documentElement.lang") == "zh-Hans", (name, page.url, page.content()[:500])
    switch = page.locator(".languages")
    assert switch.locator("strong[aria-current]").inner_text() == "简体中文", name
    assert switch.locator("a[hreflang=en]").count() == 1, name
    left = english_in(page.evaluate(COLLECT))
    if left:
        problems[name] = left
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_every_page_in_chinese(zh_page, stack):
    page, url, problems = zh_page, stack.url, {}
    weekend_job = stack.job_ids[0]

    page.goto(f"{url}/dashboard")
    check_page(page, "sign-in", problems)
    page.fill("input#key", stack.key)
    page.click("form button[type=submit]")
    page.wait_for_selector("table.jobs")
    assert page.locator("header nav a").first.inner_text() == "复核队列"
    check_page(page, "queue", problems)

    job = f"{url}/dashboard/jobs/{weekend_job}"
    page.goto(job)
    reasons = page.locator("#decision ul.reasons").inner_text()
    assert "周末发生的费用" in reasons and "须说明业务事由" in reasons, reasons  # the rule's zh-Hans message
    assert "待复核" in page.locator("#job-badge").inner_text()
    check_page(page, "job", problems)
    # A person's override, then the flash and the history in Chinese.
    page.check("input[name=decision][value=approve]")
    page.fill("#comment", "已核对，属于出差期间的必要开支")
    page.click("button[name=then][value=stay]")
    page.wait_for_selector("p.flash.ok")
    assert "已保存" in page.locator("p.flash.ok").inner_text()
    assert "已复核" in page.locator("#trail").inner_text()
    check_page(page, "job-reviewed", problems)

    for name, path in [("overview", "/dashboard/overview"), ("mine", "/dashboard/mine"),
                       ("batch", f"/dashboard/batches/{stack.batch_id}"), ("policies", "/dashboard/policies"),
                       ("policy", "/dashboard/policies/expense_policy"), ("claims", "/dashboard/claims"),
                       ("claim-new", "/dashboard/claims/new"), ("claim", f"/dashboard/claims/{stack.claim_id}"),
                       ("not-found", "/dashboard/jobs/nope")]:
        page.goto(url + path)
        check_page(page, name, problems)
    assert page.locator("h1").inner_text() == "未找到"

    # A version of our own (a draft), its page, the diff and a simulation under it.
    page.goto(f"{url}/dashboard/policies/expense_policy")
    source = page.locator("#source").input_value()
    page.fill("#source", source.replace("meal_cap: 100.0", "meal_cap: 30.0"))
    page.click("#push-form button[type=submit]")
    page.wait_for_selector("#simulate-form")
    assert "已将 expense_policy" in page.locator("p.flash.ok").inner_text()
    check_page(page, "policy-version", problems)
    page.click("#simulate-form button[type=submit]")
    page.wait_for_selector("#transitions, #simulation-progress")
    check_page(page, "policy-simulation", problems)
    page.goto(f"{url}/dashboard/policies/expense_policy")
    page.click("#diff-form button[type=submit]")
    page.wait_for_selector("#diff")
    check_page(page, "policy-diff", problems)

    # The upload page and its script's strings: picked files, the button, an oversize refusal.
    page.goto(f"{url}/dashboard/upload")
    check_page(page, "upload", problems)
    page.set_input_files("#files", [{"name": "a.png", "mimeType": "image/png", "buffer": b"x" * 10},
                                    {"name": "b.png", "mimeType": "image/png", "buffer": b"y" * 20}])
    assert page.locator("#send").inner_text() == "提交 2 个文件"
    assert "字节" in page.locator("#upload-files").inner_text()
    check_page(page, "upload-picked", problems)

    # The switch: English on every page, and back; ?lang= on a page works too.
    page.click(".languages a[hreflang=en]")
    page.wait_for_selector("html[lang=en]")
    assert page.locator("h1").inner_text() == "Upload"
    page.goto(f"{url}/dashboard/jobs/{weekend_job}?lang=zh-Hans")
    assert page.evaluate("document.documentElement.lang") == "zh-Hans"
    # The choice is the key's: another browser (speaking English) signs in to 简体中文.
    other = page.context.browser.new_context(locale="en-US")
    try:
        elsewhere = other.new_page()
        elsewhere.goto(f"{url}/dashboard")
        assert elsewhere.evaluate("document.documentElement.lang") == "en"
        elsewhere.fill("input#key", stack.key)
        elsewhere.click("form button[type=submit]")
        elsewhere.wait_for_selector("table.jobs")
        assert elsewhere.evaluate("document.documentElement.lang") == "zh-Hans"
    finally:
        other.close()

    assert not problems, "English left on pages read in 简体中文:\n" + "\n".join(
        f"  {name}: {texts}" for name, texts in problems.items())


def test_english_words_are_found():
    """The detector itself: an English label fails, data does not."""
    assert english_in(["复核队列", "WEEKEND MART SDN BHD", "MYR 45.00", "receipt-zh.png", "merchant_name"]) == []
    assert english_in(["Review queue"]) == ["Review queue"]
    assert english_in(["d1f7ba599bec · 草稿", "G1234"]) == []
    assert english_in(["例如 Sign out"]) == ["例如 Sign out"]
