"""Rate limits count per authenticated key, however its header is spelled, and failed
authentication is throttled per client address (review item 3).

Each test comes from an address of its own (REMOTE_ADDR): the failure counters live in the
run's shared Redis for a minute."""
from __future__ import annotations

import dataclasses
import io
import itertools
import secrets
from datetime import date

import pytest

from api import create_app
from db.session import session_scope
from docket.tenants import create_key, revoke_key
from tests.documents import encode, receipt_image

_addresses = itertools.count(1)


@pytest.fixture
def address() -> str:
    return f"198.51.{secrets.randbelow(200)}.{next(_addresses) % 250 + 1}"


def make_client(settings, redis_url, address: str, **overrides):
    app = create_app(dataclasses.replace(settings, **overrides), broker_url=redis_url)
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def new_key(settings, role: str = "reviewer") -> str:
    with session_scope(settings.database_url) as s:
        return create_key(s, "rl-" + role, role)[1]


def guess() -> str:
    """A well-formed key nobody has."""
    return f"dk_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"


def get(client, authorization: str, **environ):
    return client.get("/v1/rules", headers={"Authorization": authorization}, environ_overrides=environ)


SPELLINGS = ["Bearer {}", "bearer {}", "BEARER {}", "Bearer  {}", "BeArEr {} "]


@pytest.mark.parametrize("spelling", SPELLINGS[1:])
def test_another_spelling_of_the_same_key_gets_no_fresh_budget(settings, redis_url, address, spelling):
    client = make_client(settings, redis_url, address, rate_limit="2/minute")
    plaintext = new_key(settings)
    assert [get(client, f"Bearer {plaintext}").status_code for _ in range(2)] == [200, 200]
    limited = get(client, spelling.format(plaintext))
    assert limited.status_code == 429 and limited.mimetype == "application/problem+json"


def test_all_spellings_together_share_one_counter(settings, redis_url, address):
    client = make_client(settings, redis_url, address, rate_limit="4/minute")
    plaintext = new_key(settings)
    codes = [get(client, spelling.format(plaintext)).status_code for spelling in SPELLINGS]
    assert codes == [200, 200, 200, 200, 429]
    assert get(client, f"Bearer {new_key(settings)}").status_code == 200  # another key: its own budget


def submit(client, authorization: str, day: int):
    data = encode(receipt_image(date(2026, 4, day)), "PNG")
    return client.post("/v1/jobs", data={"file": (io.BytesIO(data), "r.png"), "rule": "expense_policy"},
                       content_type="multipart/form-data", headers={"Authorization": authorization})


def test_the_submission_limit_is_shared_by_every_spelling(settings, redis_url, address):
    client = make_client(settings, redis_url, address, submit_rate_limit="2/minute")
    plaintext = new_key(settings, "submitter")
    codes = [submit(client, spelling.format(plaintext), day).status_code
             for day, spelling in enumerate(["Bearer {}", "bearer {}", "BEARER  {}"], start=1)]
    assert codes == [202, 202, 429]


def test_random_keys_are_throttled_per_address(settings, redis_url, address):
    client = make_client(settings, redis_url, address, auth_failure_limit="3/minute")
    assert [get(client, f"Bearer {guess()}").status_code for _ in range(3)] == [401, 401, 401]
    throttled = get(client, f"Bearer {guess()}")
    assert throttled.status_code == 429 and throttled.mimetype == "application/problem+json"
    assert throttled.get_json()["code"] == "too_many_requests" and int(throttled.headers["Retry-After"]) > 0


def test_guesses_in_other_spellings_count_too(settings, redis_url, address):
    client = make_client(settings, redis_url, address, auth_failure_limit="3/minute")
    assert [get(client, f"{scheme} {guess()}").status_code for scheme in ("bearer", "BEARER", "Bearer ")] == [401] * 3
    assert get(client, f"bearer  {guess()}").status_code == 429


def test_malformed_authorization_counts_as_a_failure(settings, redis_url, address):
    client = make_client(settings, redis_url, address, auth_failure_limit="3/minute")
    assert [get(client, value).status_code for value in ("Basic YTpi", "Bearer ", "Token abc")] == [401] * 3
    assert get(client, f"Bearer {guess()}").status_code == 429


def test_a_revoked_key_counts_as_a_failure(settings, redis_url, address):
    client = make_client(settings, redis_url, address, auth_failure_limit="2/minute")
    plaintext = new_key(settings)
    with session_scope(settings.database_url) as s:
        revoke_key(s, plaintext)
    assert [get(client, f"Bearer {plaintext}").status_code for _ in range(2)] == [401, 401]
    assert get(client, f"Bearer {plaintext}").status_code == 429


def test_a_throttled_address_learns_nothing_from_a_right_guess(settings, redis_url, address):
    """Past the budget a key never seen is not looked up: a valid one answers 429 like the rest."""
    client = make_client(settings, redis_url, address, auth_failure_limit="2/minute")
    for _ in range(2):
        get(client, f"Bearer {guess()}")
    assert get(client, f"Bearer {new_key(settings)}").status_code == 429


def test_throttling_is_per_address(settings, redis_url, address):
    client = make_client(settings, redis_url, address, auth_failure_limit="2/minute")
    for _ in range(3):
        get(client, f"Bearer {guess()}")
    elsewhere = "203.0.113.77" if address != "203.0.113.77" else "203.0.113.78"
    assert get(client, f"Bearer {guess()}", REMOTE_ADDR=elsewhere).status_code == 401
    assert get(client, f"Bearer {new_key(settings)}", REMOTE_ADDR=elsewhere).status_code == 200


def test_x_forwarded_for_does_not_reset_the_budget(settings, redis_url, address):
    client = make_client(settings, redis_url, address, auth_failure_limit="2/minute")
    codes = [client.get("/v1/rules", headers={"Authorization": f"Bearer {guess()}",
                                              "X-Forwarded-For": f"192.0.2.{n}"}).status_code for n in range(3)]
    assert codes == [401, 401, 429]


def test_successful_requests_do_not_use_the_failure_budget(settings, redis_url, address):
    client = make_client(settings, redis_url, address, auth_failure_limit="2/minute")
    plaintext = new_key(settings)
    assert all(get(client, f"Bearer {plaintext}").status_code == 200 for _ in range(5))
    assert [get(client, f"Bearer {guess()}").status_code for _ in range(3)] == [401, 401, 429]


def test_a_key_already_in_use_keeps_working_while_its_address_is_throttled(settings, redis_url, address):
    """A client sharing the address with a guesser (a NAT) is not locked out by it: a key that
    authenticated in this process before is no guess, so answering it teaches a guesser nothing."""
    client = make_client(settings, redis_url, address, auth_failure_limit="2/minute")
    plaintext = new_key(settings)
    assert get(client, f"Bearer {plaintext}").status_code == 200
    for _ in range(3):
        get(client, f"Bearer {guess()}")
    assert get(client, f"Bearer {guess()}").status_code == 429
    assert get(client, f"bearer  {plaintext}").status_code == 200


def test_a_key_revoked_after_use_counts_as_a_failure(settings, redis_url, address):
    client = make_client(settings, redis_url, address, auth_failure_limit="2/minute")
    plaintext = new_key(settings)
    assert get(client, f"Bearer {plaintext}").status_code == 200
    with session_scope(settings.database_url) as s:
        revoke_key(s, plaintext)
    assert [get(client, f"Bearer {plaintext}").status_code for _ in range(2)] == [401, 401]
    assert get(client, f"Bearer {guess()}").status_code == 429
