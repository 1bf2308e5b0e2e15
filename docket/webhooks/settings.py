"""Webhook settings, read once from the environment (kept apart from docket.config.Settings)."""
from __future__ import annotations

import os
from dataclasses import dataclass


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw not in (None, "") else default


def parse_allow_hosts(raw: str | None) -> tuple[str, ...]:
    """`"a.example, 10.1.0.0/16"` -> `("a.example", "10.1.0.0/16")` (blank entries dropped)."""
    return tuple(part.strip() for part in (raw or "").split(",") if part.strip())


@dataclass(frozen=True)
class WebhookSettings:
    # Hosts (by name) and CIDRs (by resolved address) exempt from the SSRF guard. Empty: none.
    allow_hosts: tuple[str, ...] = ()
    # After this many attempts without a 2xx the delivery is `dead` (replay revives it).
    max_attempts: int = 8
    # Retry n waits uniform(0, min(cap, base * 2**(n-1))) seconds ("full jitter").
    backoff_base: float = 5.0
    backoff_cap: float = 3600.0
    connect_timeout: float = 3.0
    read_timeout: float = 10.0
    max_response_bytes: int = 65536
    # How long a claimed attempt keeps other workers off the delivery. It must outlast one
    # attempt (connect + read timeouts); a worker that dies mid-attempt frees it after this.
    lease_seconds: float = 60.0

    @classmethod
    def from_env(cls) -> "WebhookSettings":
        connect_timeout = _float("DOCKET_WEBHOOK_CONNECT_TIMEOUT", 3.0)
        read_timeout = _float("DOCKET_WEBHOOK_READ_TIMEOUT", 10.0)
        return cls(
            allow_hosts=parse_allow_hosts(os.environ.get("DOCKET_WEBHOOK_ALLOW_HOSTS")),
            max_attempts=max(1, _int("DOCKET_WEBHOOK_MAX_ATTEMPTS", 8)),
            backoff_base=_float("DOCKET_WEBHOOK_BACKOFF_BASE", 5.0),
            backoff_cap=_float("DOCKET_WEBHOOK_BACKOFF_CAP", 3600.0),
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_response_bytes=_int("DOCKET_WEBHOOK_MAX_RESPONSE_BYTES", 65536),
            lease_seconds=_float("DOCKET_WEBHOOK_LEASE",
                                 max(60.0, 2 * (connect_timeout + read_timeout) + 5)),
        )
