"""Bad input gets a clear 4xx problem+json, never a 500, and nothing is queued for it."""
from __future__ import annotations

import base64
import dataclasses
import io
from datetime import date

import pytest
from PIL import Image

from api import create_app
from db.models import Job
from db.session import session_scope
from docket.tenants import create_key
from tests.documents import encode, pdf, receipt_image


@pytest.fixture
def settings(settings):
    return dataclasses.replace(settings, max_upload_bytes=2_000_000, max_image_pixels=4_000_000, max_pdf_pages=3)


@pytest.fixture
def client(settings, redis_url):
    # A separate Redis database: no worker consumes these, and e2e tests must not see them.
    app = create_app(settings, broker_url=redis_url.rsplit("/", 1)[0] + "/14")
    with session_scope(settings.database_url) as session:
        _, key = create_key(session, "acme", "admin")
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    return client


def post_file(client, data: bytes, name="doc.png", rule="expense_policy", **form):
    return client.post("/v1/jobs", data={"file": (io.BytesIO(data), name), "rule": rule, **form},
                       content_type="multipart/form-data")


def assert_problem(resp, status: int, code: str):
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/problem+json"
    body = resp.get_json()
    assert body["code"] == code and body["status"] == status
    assert body["type"].endswith("/" + code) and body["title"] and body["detail"]
    return body


def job_count(settings) -> int:
    with session_scope(settings.database_url) as s:
        return s.query(Job).count()


GOOD = receipt_image(date(2026, 1, 5))


@pytest.mark.parametrize("fmt,kw", [("JPEG", {}), ("PNG", {}), ("WEBP", {}), ("TIFF", {}), ("BMP", {}),
                                    ("GIF", {})])
def test_every_accepted_image_format(client, settings, fmt, kw):
    resp = post_file(client, encode(GOOD, fmt, **kw), name="receipt.bin")  # the name says nothing
    assert resp.status_code == 202, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["status"] == "queued" and resp.headers["Location"].endswith(body["id"])
    assert body["document"]["mime_type"] == "image/" + fmt.lower()


def test_pdf_accepted_and_page_count_recorded(client):
    resp = post_file(client, pdf(pages=2), name="c.pdf", rule="contract_review")
    assert resp.status_code == 202
    assert resp.get_json()["document"] == {**resp.get_json()["document"], "mime_type": "application/pdf",
                                            "page_count": 2}


def test_json_base64_submission(client):
    data = encode(GOOD, "PNG")
    resp = client.post("/v1/jobs", json={"rule": "expense_policy", "filename": "r.png",
                                         "content_base64": base64.b64encode(data).decode()})
    assert resp.status_code == 202
    assert resp.get_json()["filename"] == "r.png"


def test_same_bytes_stored_once(client, settings):
    data = encode(GOOD, "PNG")
    a = post_file(client, data).get_json()
    b = post_file(client, data).get_json()
    assert a["id"] != b["id"] and a["document"]["sha256"] == b["document"]["sha256"]
    stored = [p for p in settings.documents_dir.rglob("*") if p.is_file()]
    assert len(stored) == 1


@pytest.mark.parametrize("case,status,code", [
    ("empty", 400, "empty_file"),
    ("text", 415, "unsupported_type"),
    ("exe_named_png", 415, "unsupported_type"),
    ("truncated_png", 422, "corrupt_document"),
    ("truncated_jpeg", 422, "corrupt_document"),
    ("corrupt_pdf", 422, "corrupt_document"),
    ("too_many_pages", 422, "too_many_pages"),
    ("too_many_pixels", 422, "image_too_large"),
    ("too_big", 413, "file_too_large"),
])
def test_bad_documents(client, settings, case, status, code):
    png = encode(GOOD, "PNG")
    data = {
        "empty": b"",
        "text": b"just some words, not a document\n",
        "exe_named_png": b"MZ\x90\x00" + b"\x00" * 200,
        "truncated_png": png[: len(png) // 2],
        "truncated_jpeg": encode(GOOD, "JPEG")[:3000],
        "corrupt_pdf": b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF",
        "too_many_pages": pdf(pages=4),
        # 3000x3000 = 9 MP over the 4 MP limit, yet a tiny file: a decompression bomb's shape
        "too_many_pixels": encode(Image.new("L", (3000, 3000)), "PNG"),
        "too_big": b"\x89PNG\r\n\x1a\n" + b"\x00" * 2_100_000,
    }[case]
    before = job_count(settings)
    assert_problem(post_file(client, data, name="x.png"), status, code)
    assert job_count(settings) == before  # no job, nothing queued


def test_rule_errors(client):
    data = encode(GOOD, "PNG")
    assert_problem(post_file(client, data, rule="no_such_policy"), 422, "unknown_rule")
    resp = client.post("/v1/jobs", data={"file": (io.BytesIO(data), "a.png")}, content_type="multipart/form-data")
    assert_problem(resp, 400, "missing_rule")
    assert_problem(post_file(client, data, analyzer="telepathy"), 422, "unknown_analyzer")


def test_request_shape_errors(client):
    assert_problem(client.post("/v1/jobs", data="x", content_type="text/plain"), 415, "unsupported_content_type")
    assert_problem(client.post("/v1/jobs", data={"rule": "expense_policy"}, content_type="multipart/form-data"),
                   400, "missing_file")
    assert_problem(client.post("/v1/jobs", json={"rule": "expense_policy", "content_base64": "%%%"}),
                   400, "invalid_base64")
    assert_problem(client.post("/v1/jobs", data="{nope", content_type="application/json"), 400, "invalid_json")


def test_lookup_errors(client):
    assert_problem(client.get("/v1/jobs/doesnotexist"), 404, "not_found")
    assert_problem(client.get("/v1/batches/doesnotexist"), 404, "not_found")
    assert_problem(client.get("/v1/jobs?status=done"), 400, "invalid_query")
    assert_problem(client.get("/v1/jobs?cursor=garbage"), 400, "invalid_cursor")
    assert_problem(client.get("/v1/jobs?limit=0"), 400, "invalid_query")
    assert_problem(client.get("/v1/jobs?created_since=yesterday"), 400, "invalid_query")
    assert_problem(client.get("/v1/nothing-here"), 404, "not_found")


def test_batch_accepts_good_files_and_reports_bad_ones(client):
    files = [(io.BytesIO(encode(GOOD, "PNG")), "a.png"), (io.BytesIO(b""), "empty.png"),
             (io.BytesIO(encode(GOOD, "JPEG")), "b.jpg")]
    resp = client.post("/v1/batches", data={"files": files, "rule": "expense_policy"},
                       content_type="multipart/form-data")
    assert resp.status_code == 202
    body = resp.get_json()
    assert len(body["job_ids"]) == 2
    assert [(r["index"], r["code"]) for r in body["rejected"]] == [(1, "empty_file")]
    batch = client.get(resp.headers["Location"]).get_json()
    assert batch["total"] == 2 and batch["counts"]["queued"] == 2 and batch["done"] is False


def test_batch_with_only_bad_files(client):
    resp = client.post("/v1/batches", data={"files": [(io.BytesIO(b"nope"), "a.txt")], "rule": "expense_policy"},
                       content_type="multipart/form-data")
    body = assert_problem(resp, 422, "invalid_batch")
    assert body["rejected"][0]["code"] == "unsupported_type"


def test_listing_pages_with_a_cursor(client):
    ids = [post_file(client, encode(receipt_image(date(2026, 1, d)), "PNG")).get_json()["id"] for d in range(1, 6)]
    seen, cursor = [], None
    while True:
        url = "/v1/jobs?limit=2&rule=expense_policy" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url).get_json()
        seen += [j["id"] for j in page["jobs"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(ids))  # newest first, each once
    assert client.get("/v1/jobs?status=succeeded").get_json()["jobs"] == []
    assert len(client.get("/v1/jobs?status=queued&limit=500").get_json()["jobs"]) == 5
