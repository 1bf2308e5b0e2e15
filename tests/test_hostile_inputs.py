"""Hostile and broken input, one case per file in tests/hostile/, sent through the API: each
gets the answer its case names (a 4xx with a stable `code`, or acceptance for input that is
odd but legitimate, like a very long filename), and nothing anywhere answers 5xx."""
from __future__ import annotations

import base64
import io
import json
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from api import create_app
from db.session import session_scope
from docket.tenants import create_key
from tests.documents import encode

CASES = sorted((Path(__file__).parent / "hostile").glob("*.json"))


def content(spec) -> bytes:
    """The bytes a case describes: {"image": [w, h]} (a PNG, optionally "truncate"d to a
    fraction), {"text": "..."}, or {"zip": {name: text}}."""
    if isinstance(spec, str):
        return spec.encode()
    if "image" in spec:
        width, height = spec["image"]
        data = encode(Image.new("RGB", (width, height), (250, 250, 245)), "PNG")
        return data[: int(len(data) * spec["truncate"])] if "truncate" in spec else data
    if "text" in spec:
        return spec["text"].encode()
    if "zip" in spec:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, text in spec["zip"].items():
                archive.writestr(name, text)
        return buffer.getvalue()
    raise ValueError(f"unknown content spec {spec!r}")


def send(client, request: dict):
    method, path = request["method"], request["path"]
    if "json" in request:
        body = {k: (base64.b64encode(content(v)).decode() if k == "content_base64" and isinstance(v, dict) else v)
                for k, v in request["json"].items()}
        return client.open(path, method=method, json=body)
    if "raw" in request:
        return client.open(path, method=method, data=request["raw"]["body"], content_type=request["raw"]["content_type"])
    if "raw_multipart" in request:
        spec = request["raw_multipart"]
        name = bytes.fromhex(spec["filename_bytes_hex"])
        body = (b'--B0uNd\r\nContent-Disposition: form-data; name="rule"\r\n\r\n' + spec["rule"].encode() + b"\r\n"
                b'--B0uNd\r\nContent-Disposition: form-data; name="file"; filename="' + name + b'"\r\n'
                b"Content-Type: application/octet-stream\r\n\r\n" + content(spec["content"]) + b"\r\n--B0uNd--\r\n")
        return client.open(path, method=method, data=body, content_type="multipart/form-data; boundary=B0uNd")
    form = dict(request.get("form", {}))
    if "file" in request:
        form["file"] = (io.BytesIO(content(request["file"]["content"])), request["file"]["name"])
    if "files" in request:
        form["files"] = [(io.BytesIO(content(f["content"])), f["name"]) for f in request["files"]]
    if form:
        return client.open(path, method=method, data=form, content_type="multipart/form-data")
    return client.open(path, method=method)


@pytest.fixture
def client(settings, redis_url):
    # A Redis database no worker consumes: these jobs are only recorded and queued.
    app = create_app(settings, broker_url=redis_url.rsplit("/", 1)[0] + "/14")
    with session_scope(settings.database_url) as session:
        _, key = create_key(session, "hostile", "admin")
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    return client


def test_the_corpus_is_there():
    assert len(CASES) >= 20


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_hostile_input(client, path):
    case = json.loads(path.read_text())
    expect = case["expect"]
    resp = send(client, case["request"])
    assert resp.status_code < 500, (case["about"], resp.get_data(as_text=True)[:500])
    allowed = expect.get("status_in") or [expect["status"]]
    assert resp.status_code in allowed, (case["about"], resp.status_code, resp.get_data(as_text=True)[:500])
    if resp.status_code >= 400:
        assert resp.mimetype == "application/problem+json"
        body = resp.get_json()
        assert body["code"] and body["status"] == resp.status_code and body["detail"]
        if "code" in expect:
            assert body["code"] == expect["code"], body
    if "filename_max" in expect:
        filename = resp.get_json()["filename"]
        assert filename and len(filename) <= expect["filename_max"] and filename.endswith(".png")


def test_degenerate_page_shapes_are_read_safely():
    # A page a pixel thin made rapidocr raise ResizeImgError (the job ended as analysis_error).
    from docket.pages import bound
    from worker import ocr

    for size in [(1, 40000), (40000, 1), (2560, 2)]:
        assert ocr.recognise(bound(Image.new("RGB", size, "black"), 2560)) == []
