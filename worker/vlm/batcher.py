"""Gathering concurrent jobs into one `generate()` call.

The GPU worker runs Celery's thread pool with as many threads as the batch size B (one
process, one copy of the model). Each thread handles one job exactly like any other Docket
job — claim in the database, prepare, analyze, evaluate, store, then acknowledge its message
(acks_late) — and in "analyze" it hands its prepared request to this batcher and waits. The
batcher's single thread takes the first waiting request, waits at most T ms for up to B - 1
more, runs them as one padded batch (splitting it on out-of-memory), and hands each thread its
own result or error. A job is therefore never lost or decided twice by batching: its message
and its database row are handled by its own thread, as for the CPU analyzer.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

from docket import metrics

log = logging.getLogger(__name__)


@dataclass
class _Item:
    request: object
    future: Future = field(default_factory=Future)
    queued_at: float = field(default_factory=time.perf_counter)


class Batcher:
    def __init__(self, run_batch, *, max_batch: int, max_wait_s: float, name: str = "docket-batcher"):
        """`run_batch(requests) -> list[result | exception]`, one entry per request, never raising."""
        self._run_batch = run_batch
        self.max_batch = max(1, max_batch)
        self.max_wait_s = max(0.0, max_wait_s)
        self._queue: queue.Queue[_Item] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()
        self.batches: list[int] = []  # sizes of the batches run (for logs and tests)

    def submit(self, request) -> Future:
        item = _Item(request)
        self._queue.put(item)
        return item.future

    def _gather(self) -> list[_Item]:
        batch = [self._queue.get()]
        deadline = time.monotonic() + self.max_wait_s
        while len(batch) < self.max_batch:
            remaining = deadline - time.monotonic()
            try:
                batch.append(self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _loop(self) -> None:
        while True:
            batch = self._gather()
            started = time.perf_counter()
            try:
                results = self._run_batch([item.request for item in batch])
            except BaseException as exc:  # run_batch should not raise; never leave a waiter hanging
                log.exception("batch failed")
                results = [exc] * len(batch)
            self.batches.append(len(batch))
            done = [r for r in results if not isinstance(r, BaseException)]
            metrics.model_batch(len(batch), sum(getattr(r, "input_tokens", 0) or 0 for r in done),
                                sum(getattr(r, "output_tokens", 0) or 0 for r in done))
            for item, result in zip(batch, results):
                wait = started - item.queued_at
                if isinstance(result, BaseException):
                    item.future.set_exception(result)
                else:
                    item.future.set_result((result, wait))
