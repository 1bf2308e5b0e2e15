"""Documents in an S3-compatible store (DOCKET_STORAGE_URL=s3://bucket/prefix): an API process and
a worker process that share no folder, only Postgres, Redis and the bucket, take a job from upload
to decision and serve its document and page image.

The store is a real HTTP S3 endpoint started here (moto's server, test-only) on 127.0.0.1."""
from __future__ import annotations

import hashlib
import io
import os
import subprocess
import time
import uuid

import pytest
from PIL import Image

from docket import page_cache, storage
from db.models import Document
from docket.config import Settings
from tests import services
from tests.conftest import DOCKET, ROOT, Server, base_env
from tests.documents import encode, receipt_image
from tests.test_e2e import recent_weekday, submit

boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def s3():
    """(endpoint URL, a boto3 client) of a local S3-compatible server."""
    port = services.free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing",
                          aws_secret_access_key="testing", region_name="us-east-1")
    yield endpoint, client
    server.stop()


@pytest.fixture
def bucket(s3):
    endpoint, client = s3
    name = "docket-" + uuid.uuid4().hex[:8]
    client.create_bucket(Bucket=name)
    return name


def _env(data_dir, endpoint: str, bucket: str) -> dict:
    env = base_env(data_dir)
    env.update(CREDENTIALS, DOCKET_STORAGE_URL=f"s3://{bucket}/tenant-docs", DOCKET_S3_ENDPOINT_URL=endpoint)
    return env


def _keys(client, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_storage_url_must_be_s3(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKET_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DOCKET_STORAGE_URL", "ftp://somewhere/x")
    with pytest.raises(ValueError, match="s3://bucket"):
        Settings.from_env()
    monkeypatch.delenv("DOCKET_STORAGE_URL")
    assert Settings.from_env().storage_url is None  # the local folder stays the default


def test_put_is_content_addressed_and_local_path_is_cached(s3, bucket, tmp_path, monkeypatch):
    endpoint, client = s3
    for k, v in CREDENTIALS.items():
        monkeypatch.setenv(k, v)
    settings = Settings(data_dir=tmp_path / "a", database_url="sqlite://", redis_url=None, rules_dir=None,
                        storage_url=f"s3://{bucket}/p", s3_endpoint_url=endpoint)
    data = b"%PDF-1.4 not really" * 1000
    keys = []
    for _ in range(2):  # the same bytes twice: one object
        upload = storage.receive(io.BytesIO(data), settings.uploads_dir, 10**6)
        keys.append(storage.put(settings, upload))
        assert not upload.temp_path.exists()
    sha = hashlib.sha256(data).hexdigest()
    assert keys == [f"{sha[:2]}/{sha}"] * 2
    assert _keys(client, bucket) == [f"p/{sha[:2]}/{sha}"]
    assert not settings.documents_dir.exists()  # nothing kept in the local folder

    other = Settings(data_dir=tmp_path / "b", database_url="sqlite://", redis_url=None, rules_dir=None,
                     storage_url=f"s3://{bucket}/p", s3_endpoint_url=endpoint)
    path = storage.local_path(other, keys[0])
    assert path.read_bytes() == data and path.is_relative_to(other.data_dir)
    client.delete_object(Bucket=bucket, Key=f"p/{keys[0]}")
    assert storage.local_path(other, keys[0]) == path  # a second read is free: no fetch
    with pytest.raises(ValueError):
        storage.local_path(other, "../../etc/passwd")


def test_page_images_are_kept_in_the_bucket(s3, bucket, tmp_path, monkeypatch):
    endpoint, client = s3
    for k, v in CREDENTIALS.items():
        monkeypatch.setenv(k, v)
    one, two = (Settings(data_dir=tmp_path / d, database_url="sqlite://", redis_url=None, rules_dir=None,
                         max_image_side=400, storage_url=f"s3://{bucket}", s3_endpoint_url=endpoint) for d in "ab")
    data = encode(receipt_image(recent_weekday()), "PNG")
    key = storage.put(one, storage.receive(io.BytesIO(data), one.uploads_dir, 10**7))
    doc = Document(sha256=key.split("/")[1], mime_type="image/png", size=len(data), page_count=1, storage_path=key)
    first = page_cache.page_png(one, doc, 0)
    with pytest.raises(IndexError):
        page_cache.page_png(one, doc, 1)
    client.delete_object(Bucket=bucket, Key=key)  # the second machine can only fetch the rendered page
    second = page_cache.page_png(two, doc, 0)
    assert second.read_bytes() == first.read_bytes() and second.is_relative_to(two.data_dir)


def test_api_and_worker_share_only_the_bucket(s3, bucket, tmp_path, postgres_url, redis_url):
    endpoint, client = s3
    api_env = _env(tmp_path / "api", endpoint, bucket)
    worker_env = _env(tmp_path / "worker", endpoint, bucket)
    for env in (api_env, worker_env):
        env.update(DOCKET_DATABASE_URL=postgres_url, DOCKET_REDIS_URL=redis_url)
    api = Server(api_env, workers=0)  # migrates the database; runs no worker of its own
    worker = subprocess.Popen([DOCKET, "worker", "--concurrency", "1", "--pool", "solo"], env=worker_env, cwd=ROOT)
    try:
        data = encode(receipt_image(recent_weekday()), "PNG")
        sha = hashlib.sha256(data).hexdigest()
        # cache=false: the session's Postgres may have decided these bytes before.
        job = submit(api, data, "expense_policy", "receipt.png", cache="false")
        assert _keys(client, bucket) == [f"tenant-docs/{sha[:2]}/{sha}"]
        done = api.wait_job(job["id"], timeout=60)
        assert done["status"] == "succeeded", done
        assert done["decision"] in {"approve", "needs_review", "reject"}

        doc = api.http.get(f"{api.url}/v1/jobs/{job['id']}/document", timeout=10)
        assert doc.status_code == 200 and doc.content == data
        assert doc.headers["Content-Type"] == "image/png" and doc.headers["ETag"] == f'"{sha}"'
        assert int(doc.headers["Content-Length"]) == len(data)
        again = api.http.get(f"{api.url}/v1/jobs/{job['id']}/document", headers={"If-None-Match": f'"{sha}"'},
                             timeout=10)
        assert again.status_code == 304

        page = api.http.get(f"{api.url}/v1/jobs/{job['id']}/pages/1", timeout=10)
        assert page.status_code == 200 and page.headers["Content-Type"] == "image/png"
        assert Image.open(io.BytesIO(page.content)).size[0] > 0
        assert api.http.get(f"{api.url}/v1/jobs/{job['id']}/pages/2", timeout=10).status_code == 404
        assert any(k.startswith(f"tenant-docs/pages/{sha[:2]}/{sha}-") for k in _keys(client, bucket))
    finally:
        worker.terminate()
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        api.stop()
    # Neither process kept documents in a local folder; the worker read its copy from the bucket.
    assert not (tmp_path / "api" / "documents").exists() and not (tmp_path / "worker" / "documents").exists()
    assert (tmp_path / "worker" / "object-cache" / sha[:2] / sha).read_bytes() == data


def test_an_unreachable_store_is_a_503_not_a_crash(tmp_path, monkeypatch):
    for k, v in CREDENTIALS.items():
        monkeypatch.setenv(k, v)
    settings = Settings(data_dir=tmp_path, database_url="sqlite://", redis_url=None, rules_dir=None,
                        storage_url="s3://nowhere/p", s3_endpoint_url=f"http://127.0.0.1:{services.free_port()}")
    upload = storage.receive(io.BytesIO(b"bytes"), settings.uploads_dir, 100)
    with pytest.raises(storage.StorageUnavailable) as caught:
        storage.put(settings, upload)
    assert caught.value.status == 503 and not upload.temp_path.exists()
    with pytest.raises(storage.StorageUnavailable):
        storage.local_path(settings, "ab/" + "ab" * 32)
    assert not [p for p in (tmp_path / "object-cache").rglob("*") if p.is_file()]  # no partial file left


def test_prune_drops_idle_fetched_documents(tmp_path):
    settings = Settings(data_dir=tmp_path, database_url="sqlite://", redis_url=None, rules_dir=None,
                        storage_url="s3://b/p")
    cached = storage.cache_dir(settings) / "ab" / ("ab" * 32)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"x")
    old = time.time() - page_cache.MAX_IDLE_SECONDS - 60
    os.utime(cached, (old, old))
    assert page_cache.prune(settings) == 1 and not cached.exists()
