"""Which worker processes are alive, and which jobs each is working on: heartbeat keys in the
broker (Redis), written by a thread in every worker process (worker/heartbeat.py) and read by the
sweeper (docket/recovery.py).

How a dead worker is told from a slow job
-----------------------------------------
A running job names the process that claimed it (`jobs.worker`, "host:pid:nonce"). Every worker
process refreshes its key `docket:worker:<id>` every `heartbeat_interval` seconds with a TTL of
`heartbeat_ttl`; the value lists the jobs the process is working on right now and when the list
was taken. The refresh comes from a thread of its own, not from the task, so it goes on however
long an analysis runs (OCR and model inference run in C and release the GIL; the TTL is several
intervals, so a stall of many seconds is still tolerated). Hence:

- **slow job on a live worker**: the key is refreshed and lists the job, on every beat, for as
  long as the job runs. It is never reclaimed, whether it runs ten seconds or ten minutes. Time
  plays no part in the decision (the task's own time limit ends runaway analyses, and the
  process killed by it stops beating like any dead one).
- **dead worker** (SIGKILL, OOM killer, time-limit kill, lost host): nothing refreshes the key;
  `heartbeat_ttl` seconds after its last beat Redis expires it, and the sweeper's next pass
  reclaims the process's jobs: within TTL + sweep interval (20 s + 10 s by default).
- **live worker that dropped the job** (its task ended without recording an outcome, e.g. the
  database stayed away longer than the worker waits): the key is there but a beat taken after
  the job started does not list it; reclaimed the same way.

A missing key proves death only if Redis kept its keys: a Redis restarted without persistence,
flushed or failed over has lost every heartbeat at once, live workers' too. So the sweeper trusts
an absence only once the broker's current data epoch (`broker_epoch`: the server's run id plus a
marker key that a flush or restart removes) is older than the TTL plus a beat, by which time
every live process has written its key again. A worker cut off from Redis for longer than the
TTL while still running is indistinguishable from a dead one: its job is run again elsewhere,
and the older attempt's result is refused (only the attempt that holds the job may finish it),
so there is still exactly one decision.
"""
from __future__ import annotations

import json
import os
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable

KEY_PREFIX = "docket:worker:"
EPOCH_KEY = "docket:broker-epoch"


def new_worker_id() -> str:
    """host:pid:nonce — the nonce tells apart two processes that reuse a pid."""
    return f"{socket.gethostname()[:120]}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass(frozen=True)
class Beat:
    at: float                 # when the job list was taken (the worker's clock, Unix seconds)
    jobs: frozenset[str]      # the jobs the process was working on (or waiting to claim) then


def beat(client, worker_id: str, at: float, jobs: Iterable[str], ttl: float) -> None:
    """Say that `worker_id` lives and works on `jobs`, for the next `ttl` seconds."""
    client.set(KEY_PREFIX + worker_id, json.dumps({"at": at, "jobs": sorted(jobs)}), px=max(1, int(ttl * 1000)))


def forget(client, worker_id: str) -> None:
    """A process that stops cleanly says so at once instead of letting its key expire."""
    client.delete(KEY_PREFIX + worker_id)


def _parse(raw) -> Beat | None:
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        return Beat(float(data["at"]), frozenset(data.get("jobs") or ()))
    except (ValueError, KeyError, TypeError):
        return Beat(0.0, frozenset())  # unreadable but present: alive, holding nothing we know of


def beats(client, worker_ids: Iterable[str]) -> dict[str, Beat | None]:
    """The latest beat of each worker (None: its key expired or never existed)."""
    ids = list(dict.fromkeys(worker_ids))
    if not ids:
        return {}
    return {worker_id: _parse(raw) for worker_id, raw in zip(ids, client.mget([KEY_PREFIX + i for i in ids]))}


def all_beats(client) -> dict[str, Beat]:
    """Every live worker process's latest beat."""
    keys = list(client.scan_iter(match=KEY_PREFIX + "*", count=500))
    if not keys:
        return {}
    found = {}
    for key, raw in zip(keys, client.mget(keys)):
        name = key.decode() if isinstance(key, bytes) else key
        parsed = _parse(raw)
        if parsed is not None:
            found[name[len(KEY_PREFIX):]] = parsed
    return found


@dataclass(frozen=True)
class Epoch:
    """The broker's current data epoch: since when (Redis clock) its keys are known to have been
    kept, and whether this look found it new (restart, flush or failover since the last look)."""
    run_id: str
    since: float
    now: float
    changed: bool

    @property
    def age(self) -> float:
        return self.now - self.since


def broker_epoch(client) -> Epoch:
    """Compare the server's run id and Docket's marker key with what the last look recorded.

    A restart changes the run id; a restart without persistence, a FLUSHALL/FLUSHDB or a failover
    to a replica that never had it removes the marker. Either way the broker may have lost queue
    messages and heartbeats: the epoch starts again now."""
    run_id = str(client.info("server").get("run_id", ""))
    seconds, micros = client.time()
    now = seconds + micros / 1e6
    raw = client.get(EPOCH_KEY)
    if raw is not None:
        try:
            marker = json.loads(raw)
            if marker.get("run_id") == run_id:
                return Epoch(run_id, float(marker["since"]), now, changed=False)
        except (ValueError, KeyError, TypeError):
            pass
    client.set(EPOCH_KEY, json.dumps({"run_id": run_id, "since": now}))
    return Epoch(run_id, now, now, changed=True)


@dataclass(frozen=True)
class Orphan:
    job_id: str
    attempt: int
    worker: str
    why: str


def _timestamp(value: datetime) -> float:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return (value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value).timestamp()


def orphans(running: Iterable, current: dict[str, Beat | None], *, now: float, ttl: float,
            trusted: bool) -> list[Orphan]:
    """The running jobs (rows of id, worker, started_at, attempts) whose worker is gone or no
    longer works on them; see the module's docstring. `current` holds the latest beat of each
    named worker, `now` is the sweeper's clock, `trusted` whether a missing key proves death."""
    found = []
    for job_id, worker, started_at, attempts in running:
        if worker is None or started_at is None:
            continue  # claimed before workers named themselves: the stale_after rule applies
        started = _timestamp(started_at)
        last = current.get(worker)
        if last is None:
            # Gone: its key expired. `now - ttl` also covers a claim whose first beat is pending.
            if trusted and started < now - ttl:
                found.append(Orphan(job_id, attempts, worker, "worker stopped answering"))
        elif job_id not in last.jobs and last.at > started + 0.5:
            # Alive, but a beat taken after the claim no longer lists the job: its task ended
            # without recording an outcome.
            found.append(Orphan(job_id, attempts, worker, "worker no longer works on it"))
    return found
