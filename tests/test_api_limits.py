"""Rate limits (api/limits.py): one Redis round trip per limited request, the same counters, the
same X-RateLimit-* headers and the same 429 as limits' own Redis storage gives."""
from __future__ import annotations

import dataclasses
import time

from limits.storage import RedisStorage, storage_from_string
from redis.connection import AbstractConnection

from api import create_app
from api.limits import CountingRedisStorage
from db.session import session_scope
from docket.tenants import create_key


def make_app(settings, redis_url, **overrides):
    return create_app(dataclasses.replace(settings, **overrides), broker_url=redis_url)


def key(settings, role: str, tenant: str) -> dict:
    with session_scope(settings.database_url) as s:
        _, plaintext = create_key(s, tenant, role)
    return {"Authorization": f"Bearer {plaintext}"}


def limiter_of(app):
    return next(iter(app.extensions["limiter"]))


def test_the_limiter_counts_in_redis_with_the_counting_storage(settings, redis_url):
    app = make_app(settings, redis_url)
    assert isinstance(limiter_of(app).storage, CountingRedisStorage)
    assert isinstance(storage_from_string("docket+" + redis_url), RedisStorage)
    # Without a Redis (memory://), limits' own storage as before.
    assert not isinstance(limiter_of(make_app(settings, "memory://")).storage, CountingRedisStorage)


def test_headers_and_429_are_those_of_the_counter(settings, redis_url, monkeypatch):
    app = make_app(settings, redis_url, rate_limit="3/minute")
    client = app.test_client()
    headers = key(settings, "reviewer", "rl-headers")
    client.get("/v1/rules", headers=headers)  # warm: the access stamp, the key cache
    sent: list[bytes] = []
    real = AbstractConnection.send_packed_command

    def spy(self, command, check_health=True):
        sent.append(command if isinstance(command, bytes) else b"".join(command))
        return real(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", spy)
    resp = client.get("/v1/rules", headers=headers)
    limit_commands = [c for c in sent if b"LIMITS" in c]
    assert len(limit_commands) == 1 and b"EVALSHA" in limit_commands[0]  # no GET, no TTL after it
    assert resp.status_code == 200
    assert resp.headers["X-RateLimit-Limit"] == "3" and resp.headers["X-RateLimit-Remaining"] == "1"
    # What limits' own storage reads from Redis for the same counter, now.
    stock = storage_from_string(redis_url)
    key_id = headers["Authorization"].split()[1].split("_")[1]  # api.limits.rate_key: the key's id
    [counter] = [k.decode() for k in stock.storage.keys(f"LIMITS:*key:{key_id}*")]
    bare = counter.removeprefix(stock.prefixed_key(""))
    assert stock.get(bare) == 2 and 3 - stock.get(bare) == int(resp.headers["X-RateLimit-Remaining"])
    assert abs(int(resp.headers["X-RateLimit-Reset"]) - int(stock.get_expiry(bare) + 1)) <= 1
    assert 0 < int(resp.headers["Retry-After"]) <= 60

    assert client.get("/v1/rules", headers=headers).headers["X-RateLimit-Remaining"] == "0"
    limited = client.get("/v1/rules", headers=headers)
    assert limited.status_code == 429 and limited.mimetype == "application/problem+json"
    assert limited.headers["X-RateLimit-Remaining"] == "0" and 0 < int(limited.headers["Retry-After"]) <= 60
    assert abs(int(limited.headers["X-RateLimit-Reset"]) - (time.time() + int(limited.headers["Retry-After"]))) <= 2


def test_submissions_are_limited_per_key(settings, redis_url):
    import io
    from datetime import date

    from tests.documents import encode, receipt_image

    client = make_app(settings, redis_url, submit_rate_limit="2/minute").test_client()
    headers = key(settings, "submitter", "rl-submit")

    def submit(day):
        data = encode(receipt_image(date(2026, 2, day)), "PNG")
        return client.post("/v1/jobs", data={"file": (io.BytesIO(data), "r.png"), "rule": "expense_policy"},
                           content_type="multipart/form-data", headers=headers)

    first, second, third = submit(1), submit(2), submit(3)
    assert [first.status_code, second.status_code, third.status_code] == [202, 202, 429]
    assert [r.headers["X-RateLimit-Remaining"] for r in (first, second, third)] == ["1", "0", "0"]
    assert third.get_json()["code"] == "too_many_requests" and int(third.headers["Retry-After"]) > 0
    other = key(settings, "submitter", "rl-submit")  # another key: its own budget
    assert client.post("/v1/jobs", data={"rule": "expense_policy"}, content_type="multipart/form-data",
                       headers=other).status_code == 400
