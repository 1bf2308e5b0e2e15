"""Personal data (issue 26): erasure on request through the API and the CLI, retention purges by
the housekeeping function under a clock, redacted page copies (real OCR, pixels checked), and
erasure in an S3-compatible store."""
from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image, ImageDraw, ImageFont

from db.models import Decision, Job, WebhookDelivery, utcnow
from db.session import session_scope
from docket import lifecycle as job_state
from docket import page_cache, privacy, storage
from tests.test_security import key, make_app

ROOT = Path(__file__).resolve().parent.parent
PHONE = "138 1234 5678"


def _font(size: int):
    for path in ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                 "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf"):
        if Path(path).exists():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size=size)


def screenshot(lines: list[str], seed: int = 0) -> tuple[Image.Image, list[tuple[int, int, int, int]]]:
    """A white screenshot with one text line each; the box each line's text was drawn in."""
    font = _font(30)
    image = Image.new("RGB", (760, 70 + 60 * len(lines)), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, 759, 30), fill=(40 + seed, 90, 160))  # an app bar: bytes differ per seed
    boxes = []
    for i, text in enumerate(lines):
        xy = (30, 50 + 60 * i)
        draw.text(xy, text, fill=(20, 20, 20), font=font)
        boxes.append(draw.textbbox(xy, text, font=font))
    return image, boxes


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def upload(client, headers, data: bytes, rule: str = "screenshot_moderation", **form):
    return client.post("/v1/jobs", data={"file": (io.BytesIO(data), "Jane Doe chat.png"), "rule": rule, **form},
                       content_type="multipart/form-data", headers=headers)


def finish(settings, job_id: str, image: Image.Image | None = None, *, fields: dict | None = None,
           evidence: dict | None = None, text: str = "") -> None:
    """The worker's part: with an image, its real OCR and screenshot extraction; else `fields`."""
    from docket.rules import load_rules, evaluate

    if image is not None:
        from worker.extract.screenshot import extract_screenshot
        from worker.ocr import recognise

        extraction = extract_screenshot(recognise(image))
        fields, evidence, text = extraction.fields, extraction.evidence, extraction.fields["text"]
    rule = load_rules()["screenshot_moderation"]
    verdict = evaluate(rule, fields, document={"text": text})
    with session_scope(settings.database_url) as s:
        attempt = job_state.claim(s, job_id, stale_after=60)
        assert job_state.succeed(s, job_id, attempt, Decision(
            job_id=job_id, decision=verdict.decision, fields=fields, reasons=verdict.to_dict()["reasons"],
            confidence={}, evidence=evidence or {}, text=text, rule_name=rule.name, rule_version=rule.version,
            analyzer="ocr", model=None, model_output={"raw": text}, timings={}))


@pytest.fixture(params=["sqlite", "postgres"])
def db_settings(request, settings, monkeypatch):
    """The embedded settings, on SQLite and on a fresh Postgres database (the CLI reads it from
    the environment, as it would)."""
    if request.param == "sqlite":
        yield settings
        return
    import dataclasses

    from db.migrate import upgrade
    from db.session import get_engine
    from tests import services

    url, drop = services.fresh_database(request.getfixturevalue("postgres_admin_url"))
    upgrade(url)
    monkeypatch.setenv("DOCKET_DATABASE_URL", url)
    yield dataclasses.replace(settings, database_url=url)
    get_engine(url).dispose()
    drop()


@pytest.fixture
def client_keys(settings, redis_url):
    client = make_app(settings, redis_url).test_client()
    return client, {role: key(settings, role, "p") for role in ("admin", "reviewer", "submitter")}


@pytest.fixture
def db_client_keys(db_settings, redis_url):
    client = make_app(db_settings, redis_url).test_client()
    return client, {role: key(db_settings, role, "p") for role in ("admin", "reviewer", "submitter")}


def test_erasure_end_to_end(db_settings, db_client_keys):
    settings, (client, ks) = db_settings, db_client_keys
    made = client.post("/v1/webhooks", json={"url": "https://hooks.example.com/p", "event_types": ["job.erased"]},
                       headers=ks["admin"])
    assert made.status_code == 201
    image, _ = screenshot(["Chat with Jane", f"Call me on {PHONE}", "See you at 5"])
    data = png(image)
    job = upload(client, {**ks["submitter"], "Idempotency-Key": "k-1"}, data,
                 callback_url="https://hooks.example.com/cb").get_json()
    assert job["filename"] == "Jane Doe chat.png"
    finish(settings, job["id"], fields={"text": f"Chat with Jane\nCall me on {PHONE}\nSee you at 5",
                                        "personal_data": [{"type": "phone", "value": "*******5678"}],
                                        "personal_data_types": ["phone"]},
           evidence={"personal_data": [[30, 110, 500, 140, 0]]}, text=f"Call me on {PHONE}")
    before = client.get(f"/v1/jobs/{job['id']}", headers=ks["admin"]).get_json()
    assert before["decision"] == "needs_review" and before["erased"] is None and before["purged"] is None
    review = client.post(f"/v1/jobs/{job['id']}/reviews", headers=ks["reviewer"], json={
        "decision": "needs_review", "comment": "asked the sender to redact",
        "fields": {"text": f"Call me on {PHONE} (checked)"}})
    assert review.status_code == 201
    assert client.get(f"/v1/jobs/{job['id']}/pages/1", headers=ks["admin"]).status_code == 200
    sha = job["document"]["sha256"]
    original = settings.documents_dir / sha[:2] / sha
    assert original.exists() and list((page_cache.cache_dir(settings) / sha[:2]).glob(f"{sha}-*.png"))

    # Only an admin erases, and only with a reason.
    for role in ("reviewer", "submitter"):
        refused = client.delete(f"/v1/jobs/{job['id']}", json={"reason": "GDPR art. 17"}, headers=ks[role])
        assert refused.status_code == 403 and refused.mimetype == "application/problem+json"
    for body in (None, {}, {"reason": ""}, {"reason": 7}, {"reason": "x" * 2001}):
        bad = client.delete(f"/v1/jobs/{job['id']}", json=body, headers=ks["admin"])
        assert bad.status_code == 400 and bad.get_json()["code"] == "invalid_erasure", body
    assert original.exists()

    erased = client.delete(f"/v1/jobs/{job['id']}", json={"reason": "GDPR art. 17 request #42"}, headers=ks["admin"])
    assert erased.status_code == 200
    body = erased.get_json()
    assert body["erased"]["reason"] == "GDPR art. 17 request #42" and body["erased"]["at"]
    assert body["erased"]["by"].startswith("key ") or "(" in body["erased"]["by"]
    assert {"document", "pages", "text", "fields.text", "fields.personal_data"} <= set(body["erased"]["what"])
    # The tombstone keeps the decision, its reasons and check ids, the rule version and the trail.
    assert body["decision"] == "needs_review" and body["rule"] == before["rule"]
    assert [r["check"] for r in body["reasons"]] == [r["check"] for r in before["reasons"]] == ["personal_data"]
    assert body["fields"] == {"personal_data_types": ["phone"]} and body["filename"] is None
    text = json.dumps(body)
    assert "5678" not in text and "Jane Doe" not in text
    trail = client.get(f"/v1/jobs/{job['id']}/reviews", headers=ks["admin"]).get_json()
    trail = trail.get("reviews", trail)
    assert trail[0]["comment"] == "asked the sender to redact" and "5678" not in json.dumps(trail)
    # Document, pages and the redacted copy are gone: 410 erased; so are the bytes.
    for path in ("document", "pages/1", "redacted/1"):
        gone = client.get(f"/v1/jobs/{job['id']}/{path}", headers=ks["admin"])
        assert gone.status_code == 410 and gone.mimetype == "application/problem+json", path
        assert gone.get_json()["code"] == "erased"
    assert not original.exists() and not list((page_cache.cache_dir(settings) / sha[:2]).glob(f"{sha}-*.png"))
    with session_scope(settings.database_url) as s:
        decision = s.query(Decision).filter_by(job_id=job["id"]).one()
        assert decision.text is None and decision.model_output is None
        deliveries = {d.event_type: d.payload for d in s.query(WebhookDelivery).filter_by(job_id=job["id"])}
    assert set(deliveries) >= {"job.succeeded", "job.erased"}
    assert "5678" not in json.dumps(deliveries) and "Jane Doe" not in json.dumps(deliveries)
    assert deliveries["job.erased"]["data"]["erased"]["reason"] == "GDPR art. 17 request #42"
    # The answer kept for an Idempotency-Key replay no longer names the file either.
    replay = upload(client, {**ks["submitter"], "Idempotency-Key": "k-1"}, data,
                    callback_url="https://hooks.example.com/cb").get_json()
    assert replay["id"] == job["id"] and replay["filename"] is None
    # The dashboard's job page says what happened instead of showing pages.
    import re

    browser = client.application.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', browser.get("/dashboard").get_data(as_text=True)).group(1)
    browser.post("/dashboard/sign-in", data={"key": ks["admin"]["Authorization"].split(" ", 1)[1], "csrf_token": token})
    shown = browser.get(f"/dashboard/jobs/{job['id']}").get_data(as_text=True)
    assert 'id="erased"' in shown and "GDPR art. 17 request #42" in shown and "figure" not in shown.split('id="erased"')[1][:300]
    # Erasing again changes nothing.
    again = client.delete(f"/v1/jobs/{job['id']}", json={"reason": "again"}, headers=ks["admin"]).get_json()
    assert again["erased"] == body["erased"]

    # The same file uploaded again is analysed afresh: the erased decision is no cache.
    fresh = upload(client, ks["submitter"], data).get_json()
    assert fresh["status"] == "queued" and fresh["cached_from"] is None
    assert client.get(f"/v1/jobs/{fresh['id']}/document", headers=ks["admin"]).status_code == 200
    # A job not finished cannot be erased (its analysis would write back what was erased).
    busy = client.delete(f"/v1/jobs/{fresh['id']}", json={"reason": "r"}, headers=ks["admin"])
    assert busy.status_code == 409 and busy.get_json()["code"] == "job_not_finished"
    # Two jobs of the same bytes: erasing one keeps them for the other.
    finish(settings, fresh["id"], fields={"text": "x", "personal_data": [], "personal_data_types": []})
    twin = upload(client, ks["submitter"], data).get_json()
    assert twin["cached_from"] == fresh["id"]  # a live job's decision is still reused
    assert client.delete(f"/v1/jobs/{twin['id']}", json={"reason": "r"}, headers=ks["admin"]).status_code == 200
    assert original.exists()
    assert client.get(f"/v1/jobs/{fresh['id']}/document", headers=ks["admin"]).status_code == 200

    # `docket erase JOB_ID --reason TEXT` (the same settings through the environment).
    from docket.cli import main

    result = CliRunner().invoke(main, ["erase", fresh["id"], "--reason", "ticket 7", "--by", "dpo"])
    assert result.exit_code == 0, result.output
    assert "erased" in result.output and "document" in result.output
    cli_erased = client.get(f"/v1/jobs/{fresh['id']}", headers=ks["admin"]).get_json()["erased"]
    assert cli_erased["by"] == "dpo" and cli_erased["reason"] == "ticket 7"
    assert not original.exists()
    missing = CliRunner().invoke(main, ["erase", "nope", "--reason", "x"])
    assert missing.exit_code != 0 and "No job nope" in missing.output


RETENTION_POLICY = (ROOT / "rules" / "screenshot_moderation.yaml").read_text().replace(
    "\nredact: true\n", "\nredact: true\nretention: {documents: 30d, text: 365d}\n")


def test_retention_purges_by_the_clock(db_settings, db_client_keys):
    from worker.housekeeping import purge_expired_content

    settings, (client, ks) = db_settings, db_client_keys
    yaml_headers = {**ks["admin"], "Content-Type": "application/yaml"}
    for bad, where in ((RETENTION_POLICY.replace("365d", "365 days"), "retention"),
                       (RETENTION_POLICY.replace("365d", "99999d"), "retention"),
                       (RETENTION_POLICY.replace("personal_fields: [text,", "personal_fields: [nope,"),
                        "personal_fields")):
        refused = client.post("/v1/rules/screenshot_moderation/versions", data=bad, headers=yaml_headers)
        assert refused.status_code == 422 and where in refused.get_json()["key"], refused.get_json()
    pushed = client.post("/v1/rules/screenshot_moderation/versions", data=RETENTION_POLICY, headers=yaml_headers)
    version = pushed.get_json()["version"]
    assert client.post(f"/v1/rules/screenshot_moderation/versions/{version}/activate",
                       headers=ks["admin"]).status_code == 200
    other_client_key = key(settings, "admin", "keeps")  # a tenant on the built-in policy: keeps everything
    data = png(screenshot(["retention"], seed=3)[0])
    job = upload(client, ks["submitter"], data).get_json()
    kept = upload(client, other_client_key, data).get_json()
    for j in (job, kept):
        finish(settings, j["id"], fields={"text": "call 13812345678", "personal_data": [
            {"type": "phone", "value": "*******5678"}], "personal_data_types": ["phone"]}, text="call 13812345678")
    sha = job["document"]["sha256"]
    original = settings.documents_dir / sha[:2] / sha

    assert purge_expired_content(settings) == {"documents": 0, "text": 0}  # nothing has expired yet
    assert purge_expired_content(settings, now=utcnow() + timedelta(days=31)) == {"documents": 1, "text": 0}
    after = client.get(f"/v1/jobs/{job['id']}", headers=ks["admin"]).get_json()
    assert after["purged"]["documents"]["what"] == ["document", "pages"] and "text" not in after["purged"]
    assert after["fields"]["text"] == "call 13812345678" and after["erased"] is None
    gone = client.get(f"/v1/jobs/{job['id']}/document", headers=ks["admin"])
    assert gone.status_code == 410 and gone.get_json()["code"] == "purged"
    assert original.exists()  # the other tenant's job still holds the same bytes
    assert client.get(f"/v1/jobs/{kept['id']}/document", headers=other_client_key).status_code == 200

    assert purge_expired_content(settings, now=utcnow() + timedelta(days=366)) == {"documents": 0, "text": 1}
    after = client.get(f"/v1/jobs/{job['id']}", headers=ks["admin"]).get_json()
    assert after["fields"] == {} and after["decision"] == "needs_review" and after["reasons"]
    assert set(after["purged"]) == {"documents", "text"}
    with session_scope(settings.database_url) as s:
        assert s.get(Job, job["id"]).decision.text is None
        assert s.get(Job, kept["id"]).decision.text == "call 13812345678"  # default: keep everything
    # A purged job is no decision cache either.
    again = upload(client, ks["submitter"], data).get_json()
    assert again["status"] == "queued" and again["cached_from"] is None


def test_redacted_copy_blacks_out_the_phone_number(settings, client_keys):
    """Real OCR of a rendered screenshot: the redacted PNG is black where the phone number was
    drawn, untouched elsewhere, and OCR of the redacted copy finds no personal data."""
    from worker.extract.pii import find_personal_data
    from worker.ocr import recognise

    client, ks = client_keys
    lines = ["Support chat", f"Phone: {PHONE}", "Thanks for waiting"]
    image, boxes = screenshot(lines, seed=5)
    job = upload(client, ks["submitter"], png(image)).get_json()
    finish(settings, job["id"], image)
    body = client.get(f"/v1/jobs/{job['id']}", headers=ks["admin"]).get_json()
    assert body["fields"]["personal_data_types"] == ["phone"]

    resp = client.get(f"/v1/jobs/{job['id']}/redacted/1", headers=ks["submitter"])
    assert resp.status_code == 200 and resp.mimetype == "image/png"
    redacted = Image.open(io.BytesIO(resp.data)).convert("RGB")
    page = Image.open(io.BytesIO(client.get(f"/v1/jobs/{job['id']}/pages/1", headers=ks["admin"]).data)).convert("RGB")
    assert redacted.size == page.size == image.size
    # Where the digits were drawn: every pixel black (the label before them may stay).
    font = _font(30)
    x0, y0, x1, y1 = boxes[1]
    digits_left = x0 + ImageDraw.Draw(image).textlength("Phone: ", font=font)
    region = redacted.crop((int(digits_left) + 2, y0 + 2, x1 - 2, y1 - 2))
    assert region.getextrema() == ((0, 0), (0, 0), (0, 0))
    assert page.crop((int(digits_left) + 2, y0 + 2, x1 - 2, y1 - 2)).getextrema()[0][1] == 255  # it was white
    # The other lines are as they were.
    for box in (boxes[0], boxes[2]):
        assert redacted.crop(box).tobytes() == page.crop(box).tobytes()
    assert find_personal_data("\n".join(line.text for line in recognise(redacted))) == []
    # The API does the same for any key that is not an admin's: its pages are the redacted copy,
    # and the original is refused; an admin's key gets both.
    for role in ("submitter", "reviewer"):
        api_page = client.get(f"/v1/jobs/{job['id']}/pages/1", headers=ks[role])
        assert api_page.status_code == 200 and api_page.data == resp.data, role
        refused = client.get(f"/v1/jobs/{job['id']}/document", headers=ks[role])
        assert refused.status_code == 403 and "redacted" in refused.get_json()["detail"], role
    assert client.get(f"/v1/jobs/{job['id']}/document", headers=ks["admin"]).status_code == 200
    # The dashboard shows a reviewer the redacted copy and not the original; an admin the page.
    import re

    for role, expected in (("reviewer", resp.data), ("admin", None)):
        browser = client.application.test_client()
        form = browser.get("/dashboard").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
        plaintext = ks[role]["Authorization"].split(" ", 1)[1]
        assert browser.post("/dashboard/sign-in", data={"key": plaintext, "csrf_token": token}).status_code == 302
        shown = browser.get(f"/dashboard/jobs/{job['id']}/pages/1")
        assert shown.status_code == 200 and shown.mimetype == "image/png"
        original = browser.get(f"/dashboard/jobs/{job['id']}/document")
        if expected is not None:
            assert shown.data == expected and original.status_code == 403
            assert "redacted copy" in browser.get(f"/dashboard/jobs/{job['id']}").get_data(as_text=True)
        else:
            assert Image.open(io.BytesIO(shown.data)).convert("RGB").tobytes() == page.tobytes()
            assert original.status_code == 200
    # A policy without redaction makes none.
    receipt = upload(client, ks["submitter"], png(screenshot(["no redaction"], seed=9)[0]),
                     rule="expense_policy").get_json()
    none = client.get(f"/v1/jobs/{receipt['id']}/redacted/1", headers=ks["admin"])
    assert none.status_code == 404 and none.mimetype == "application/problem+json"


def test_erasure_in_an_object_store(s3, bucket, tmp_path, monkeypatch):
    """Erasure deletes the original and every rendered page from the bucket and this machine."""
    from docket.config import Settings
    from tests.test_object_storage import CREDENTIALS, _keys

    endpoint, client = s3
    for k, v in CREDENTIALS.items():
        monkeypatch.setenv(k, v)
    settings = Settings(data_dir=tmp_path, database_url="sqlite://", redis_url=None, rules_dir=None,
                        max_image_side=400, storage_url=f"s3://{bucket}/p", s3_endpoint_url=endpoint)
    data = png(screenshot(["s3"], seed=7)[0])
    other = png(screenshot(["another document"], seed=8)[0])
    documents = []
    for content in (data, other):
        key_ = storage.put(settings, storage.receive(io.BytesIO(content), settings.uploads_dir, 10**7))
        from db.models import Document

        documents.append(Document(sha256=key_.split("/")[1], mime_type="image/png", size=len(content),
                                  page_count=1, storage_path=key_))
        page_cache.page_png(settings, documents[-1], 0)
        storage.local_path(settings, documents[-1])  # a cached copy on this machine too
    sha = documents[0].sha256
    assert len(_keys(client, bucket)) == 4
    assert privacy.delete_document(settings, documents[0]) == ["document", "pages"]
    left = _keys(client, bucket)
    assert left and not [k for k in left if sha in k] and len(left) == 2
    assert not (storage.cache_dir(settings) / sha[:2] / sha).exists()
    assert privacy.delete_document(settings, documents[0]) == []  # nothing left to delete


from tests.test_object_storage import bucket, s3  # noqa: E402,F401 - the module's S3 server fixtures


@pytest.mark.parametrize("text,expected", [
    # libphonenumber: other countries in international format, other groupings (a no-break space)
    ("Facsimile:    + 33 1 45 02 49 59", [("phone", "********4959")]),
    ("Fax: (212)\u00a0751-4864", [("phone", "******4864")]),
    ("Telefon: +49\u00a0932\u00a0431\u00a00", [("phone", "******4310")]),
    ("+1 (800) 815 - 9959", [("phone", "********9959")]),
    # IBANs are bank accounts (stdnum.iban: MOD 97-10), grouped or not; a wrong check digit is none
    ("IBAN: DE89 3704 0044 0532 0130 00", [("bank_card", "******************3000")]),
    ("IBAN PL22249010570000990215139125", [("bank_card", "************************9125")]),
    ("IBAN: DE88 3704 0044 0532 0130 00", []),
    # numbers that fit a numbering plan but are not phones
    ("Rechnungsnummer: 6069999998", []),
    ("Steuernummer: 99999/22222", []),
    ("Bestellung Nr. 2018-471331 vom 01.03.2018", []),
    ("Bis zum 16.09.2026 ohne Abzug", []),
    ("GTIN 4123456000021", []),  # Luhn-valid by chance, a valid EAN-13: a product, not a card
    ("Card 4111 1111 1111 1111", [("bank_card", "************1111")]),
])
def test_detector_uses_phonenumbers_and_stdnum(text, expected):
    from worker.extract.pii import find_personal_data

    assert [(f["type"], f["value"]) for f in find_personal_data(text)] == expected


def test_redacted_copy_is_all_black_when_where_is_unknown(settings, client_keys):
    """Personal data read without boxes (a model's reading): nothing of the page is shown."""
    client, ks = client_keys
    job = upload(client, ks["submitter"], png(screenshot([f"Call {PHONE}"], seed=11)[0])).get_json()
    finish(settings, job["id"], fields={"text": f"Call {PHONE}", "personal_data_types": ["phone"],
                                        "personal_data": [{"type": "phone", "value": "*******5678"}]})
    resp = client.get(f"/v1/jobs/{job['id']}/redacted/1", headers=ks["reviewer"])
    assert resp.status_code == 200
    assert Image.open(io.BytesIO(resp.data)).convert("RGB").getextrema() == ((0, 0), (0, 0), (0, 0))
    assert client.get(f"/v1/jobs/{job['id']}/redacted/2", headers=ks["reviewer"]).status_code == 404
    clean = upload(client, ks["submitter"], png(screenshot(["nothing personal"], seed=12)[0])).get_json()
    finish(settings, clean["id"], fields={"text": "nothing personal", "personal_data": [], "personal_data_types": []})
    page = client.get(f"/v1/jobs/{clean['id']}/pages/1", headers=ks["admin"]).data
    shown = client.get(f"/v1/jobs/{clean['id']}/redacted/1", headers=ks["reviewer"]).data
    assert Image.open(io.BytesIO(shown)).convert("RGB").tobytes() == Image.open(io.BytesIO(page)).convert("RGB").tobytes()
