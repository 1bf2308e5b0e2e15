"""Per-key rate limits (flask-limiter, counters in Redis), failed authentications per client
address, and the queue-depth guard."""
from __future__ import annotations

import logging
import math
import threading
import time

from flask import current_app, g, has_request_context, request, session
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import parse
from limits.storage import RedisStorage
from sqlalchemy import func, select

from api import auth, context
from db.models import Job
from docket.errors import DocketError

log = logging.getLogger(__name__)


def rate_key() -> str:
    """The authenticated key's id: every spelling of its header, its API calls and its dashboard
    session share one budget. Runs before authenticate, which then reuses the verdict (no second
    lookup); anything not a known key (no key, refused, throttled) counts against its address."""
    try:
        if request.blueprint and request.blueprint.startswith("dashboard"):  # a session, not a header
            if session:
                from api.dashboard.session import current

                who = current()
                if who is not None:
                    return "key:" + who.key_id
        elif request.headers.get("Authorization"):
            who = auth.bearer()
            if isinstance(who, auth.Principal) and who.key_id:
                return "key:" + who.key_id
    except Exception:  # e.g. the database is down: the route's own check answers it, not the limiter
        log.debug("rate_key: no identity", exc_info=True)
    return "ip:" + get_remote_address()


class AuthFailures:
    """Failed authentications (unknown, revoked or malformed keys) per client address, in the
    limiter's storage: past the budget, the address's guesses get 429 without a lookup. The
    address is the peer's, or behind DOCKET_TRUSTED_PROXIES the client's (api/proxies.py); an
    X-Forwarded-For is never believed otherwise. A Redis that fails counts nothing,
    as the limiter itself (swallow_errors)."""

    def __init__(self, limiter: Limiter, limit: str, max_known: int = 4096):
        self.limiter, self.item = limiter, parse(limit)
        # Digests of keys that authenticated in this process: they need no failure check (a
        # revoked one is still refused by its lookup, and then counts as a failure).
        self._known: dict[str, None] = {}
        self._max_known, self._lock = max_known, threading.Lock()

    def known(self, digest: str | None) -> bool:
        return digest is not None and digest in self._known

    def vouch(self, digest: str | None) -> None:
        if digest is None or digest in self._known:
            return
        with self._lock:
            if len(self._known) >= self._max_known:
                del self._known[next(iter(self._known))]  # the oldest
            self._known[digest] = None

    def _identity(self) -> tuple[str, str, str]:
        return "docket-limits", "auth-failures", get_remote_address()

    def exceeded(self) -> int | None:
        """Seconds until the address may try again; None while it is within its budget."""
        try:
            strategy = self.limiter.limiter
            if strategy.test(self.item, *self._identity()):
                return None
            reset, _ = strategy.get_window_stats(self.item, *self._identity())
            return max(1, math.ceil(reset - time.time()))
        except Exception:
            log.warning("auth failure limit unavailable", exc_info=True)
            return None

    def count(self) -> None:
        try:
            self.limiter.limiter.hit(self.item, *self._identity())
        except Exception:
            log.warning("auth failure limit unavailable", exc_info=True)


class CountingRedisStorage(RedisStorage):
    """limits' Redis storage, plus: a request's counter increment also returns the counter's TTL,
    and both are remembered for the rest of the request. The X-RateLimit-* headers flask-limiter
    adds to every response then need no GET and TTL of their own (three Redis round trips per
    request became one); they say what the request's own increment left, as documented ("remaining
    after deduction for the current request"). The same counters, keys, expiry and limits."""

    STORAGE_SCHEME = ["docket+redis", "docket+rediss"]

    INCR_EXPIRE_TTL = """
        local amount = tonumber(ARGV[2])
        local current = redis.call("incrby", KEYS[1], amount)
        if tonumber(current) == amount then
            redis.call("expire", KEYS[1], ARGV[1])
        end
        return {current, redis.call("ttl", KEYS[1])}
    """

    def __init__(self, uri: str, **options):
        super().__init__(uri.removeprefix("docket+"), **options)

    def initialize_storage(self, uri: str) -> None:
        super().initialize_storage(uri)
        self.lua_incr_expire_ttl = self.get_connection().register_script(self.INCR_EXPIRE_TTL)

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        current, ttl = self.lua_incr_expire_ttl([self.prefixed_key(key)], [expiry, amount])
        if has_request_context():
            g.setdefault("rate_counters", {})[key] = (int(current), max(ttl, 0) + time.time())
        return int(current)

    def _seen(self, key: str):
        return g.get("rate_counters", {}).get(key) if has_request_context() else None

    def get(self, key: str) -> int:
        seen = self._seen(key)
        return seen[0] if seen else super().get(key)

    def get_expiry(self, key: str) -> float:
        seen = self._seen(key)
        return seen[1] if seen else super().get_expiry(key)


def _counting(storage_uri: str) -> str:
    return "docket+" + storage_uri if storage_uri.startswith(("redis://", "rediss://")) else storage_uri


def init_limits(app, settings, storage_uri: str) -> Limiter:
    """One limiter per app: a default budget per key on every route, a tighter one on submissions."""
    limiter = Limiter(key_func=rate_key, app=app, storage_uri=_counting(storage_uri),
                      storage_options={"socket_connect_timeout": 1, "socket_timeout": 2},
                      default_limits=[settings.rate_limit], headers_enabled=True, key_prefix="docket-limits",
                      # Redis down must not take the API down: the broker-down path still records jobs.
                      swallow_errors=True,
                      # ...nor slow every request by a connect timeout: after one failure the counters
                      # live in memory, and Redis is probed again after 1, 2, 4 ... 32 s.
                      in_memory_fallback_enabled=True)
    for endpoint in ("jobs.create_job", "batches.create_batch", "dashboard.upload_post"):
        app.view_functions[endpoint] = limiter.limit(settings.submit_rate_limit)(app.view_functions[endpoint])
    limiter.exempt(app.view_functions["health.healthz"])
    # Guessing keys through the sign-in form is throttled per address.
    app.view_functions["dashboard.sign_in_post"] = limiter.limit(settings.login_rate_limit, key_func=get_remote_address)(
        app.view_functions["dashboard.sign_in_post"])
    limiter.exempt(app.view_functions["static"])
    app.extensions["docket_auth_failures"] = AuthFailures(limiter, settings.auth_failure_limit)
    return limiter


class RecentCount:
    """The queued-job count, re-counted at most every `max_age` seconds while it is far below
    the limit: a count(*) per submission would grow with the very queue it guards. Between
    counts, this process adds what it accepted itself; near the limit (`margin`) every
    submission counts afresh, so the limit itself stays exact. One per app (app.extensions)."""

    def __init__(self, max_age: float = 1.0, margin: float = 0.8):
        self.max_age, self.margin = max_age, margin
        self._value, self._at, self._lock = 0, float("-inf"), threading.Lock()

    def before_adding(self, limit: int, incoming: int) -> int:
        """The number queued now; counts `incoming` in already when they fit under `limit`."""
        with self._lock:
            value, fresh = self._value, time.monotonic() - self._at < self.max_age
        if not (fresh and value + incoming < limit * self.margin):
            value = context.db().scalar(select(func.count()).select_from(Job).where(Job.status == "queued"))
            fresh = False
        with self._lock:
            if not fresh:
                self._at = time.monotonic()
            self._value = value + incoming if value + incoming <= limit else value
        return value


class Overloaded(DocketError):
    status = 503
    code = "queue_full"
    title = "Service overloaded"


def check_queue_depth(incoming: int = 1) -> None:
    """Refuse work the workers cannot get to: better a 503 now than a job stuck for hours."""
    settings = context.settings()
    counter = current_app.extensions.setdefault("docket_queued_count", RecentCount())
    queued = counter.before_adding(settings.max_queue_depth, incoming)
    if queued + incoming > settings.max_queue_depth:
        raise Overloaded(f"{queued} jobs are waiting (limit {settings.max_queue_depth}); try again later.",
                         headers={"Retry-After": "30"})
