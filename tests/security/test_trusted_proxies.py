"""Per-address budgets behind a proxy (DOCKET_TRUSTED_PROXIES, api/proxies.py): off by default,
X-Forwarded-For is never believed; with a proxy count or trusted CIDRs, each client behind the
proxy has its own failed-authentication budget, and a client cannot pick its address by sending
an X-Forwarded-For of its own. Addresses are random per test (the counters live in the shared
Redis for a minute)."""
from __future__ import annotations

import dataclasses
import secrets

import pytest

from api import create_app
from docket.config import Settings


def client_address() -> str:
    return f"203.0.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"


def make_client(settings, redis_url, peer: str, trusted):
    app = create_app(dataclasses.replace(settings, auth_failure_limit="2/minute", trusted_proxies=trusted),
                     broker_url=redis_url)
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = peer
    return client


def guess(client, forwarded: str | None = None) -> int:
    headers = {"Authorization": f"Bearer dk_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"}
    if forwarded is not None:
        headers["X-Forwarded-For"] = forwarded
    return client.get("/v1/rules", headers=headers).status_code


def test_the_setting(monkeypatch):
    for value, parsed in (("", 0), ("1", 1), (" 2 ", 2)):
        monkeypatch.setenv("DOCKET_TRUSTED_PROXIES", value)
        assert Settings.from_env().trusted_proxies == parsed
    monkeypatch.setenv("DOCKET_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1")
    assert [str(n) for n in Settings.from_env().trusted_proxies] == ["10.0.0.0/8", "127.0.0.1/32"]
    monkeypatch.setenv("DOCKET_TRUSTED_PROXIES", "10.0.0.0/8,proxy.local")
    with pytest.raises(ValueError, match="proxy.local"):
        Settings.from_env()
    monkeypatch.delenv("DOCKET_TRUSTED_PROXIES")
    assert Settings.from_env().trusted_proxies == 0  # off unless configured


def test_off_by_default_x_forwarded_for_is_never_believed(settings, redis_url):
    assert settings.trusted_proxies == 0
    client = make_client(settings, redis_url, client_address(), settings.trusted_proxies)
    # A guesser rotating X-Forwarded-For still spends one budget: its own address's.
    assert [guess(client, client_address()) for _ in range(3)] == [401, 401, 429]


def test_one_proxy_each_client_has_its_own_budget(settings, redis_url):
    proxy = client_address()
    client = make_client(settings, redis_url, proxy, 1)
    alice, bob = client_address(), client_address()
    assert [guess(client, alice) for _ in range(3)] == [401, 401, 429]
    assert guess(client, bob) == 401  # another client behind the same proxy: not throttled
    # Alice prepends an address of her choice; nginx appends hers: still Alice's budget.
    assert guess(client, f"{client_address()}, {alice}") == 429
    # The proxy itself (nothing forwarded) is one more address of its own.
    assert [guess(client) for _ in range(3)] == [401, 401, 429]
    assert guess(client, client_address()) == 401


def test_trusted_networks(settings, redis_url):
    import ipaddress

    trusted = (ipaddress.ip_network("10.0.0.0/8"),)
    carol = client_address()
    behind = make_client(settings, redis_url, "10.1.2.3", trusted)
    # Two trusted hops (ingress, then a sidecar) in front: the first untrusted address is Carol's.
    assert [guess(behind, f"{client_address()}, {carol}, 10.9.9.9") for _ in range(3)] == [401, 401, 429]
    assert guess(behind, f"{client_address()}, 10.9.9.9") == 401  # somebody else
    # A peer outside the trusted networks: its X-Forwarded-For is ignored, it spends its own budget.
    outsider = client_address()
    direct = make_client(settings, redis_url, outsider, trusted)
    assert [guess(direct, carol if i % 2 else client_address()) for i in range(3)] == [401, 401, 429]
