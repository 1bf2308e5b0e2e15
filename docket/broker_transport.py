"""kombu's Redis transport, with one client object per channel for its synchronous commands.

kombu builds a new `redis.Redis` for every publish and every acknowledgement (its connection
pool is shared; only the client object is new), and building one costs a fifth of a publish's
CPU: redis-py fills a table of ~170 response callbacks each time. A `redis.Redis` is safe to
share between threads (each command takes a connection from the pool), so the channel keeps one,
tied to the pool it was made for. Everything else is kombu's own: the broker URL, messages,
queues and acknowledgements are unchanged. Selected with Celery's `broker_transport`
(docket/queues.py), so only Docket's own apps use it.
"""
from __future__ import annotations

from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    _held_client = None

    def _create_client(self, asynchronous=False):
        if asynchronous:  # the event loop's own client: kombu's way, untouched
            return super()._create_client(asynchronous=True)
        held = self._held_client
        if held is None or held.connection_pool is not self.pool:  # first use, or a new pool after close
            held = self._held_client = super()._create_client()
        return held


class Transport(kombu_redis.Transport):
    Channel = Channel
