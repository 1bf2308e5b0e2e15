"""Which analyzers exist and which queue their jobs go to, known without loading them.

The analyzers themselves live with the workers (worker/analyzers/); the API validates a
requested name and routes the job from this catalogue alone. Built-in: `ocr` (CPU workers) and
`model` (GPU workers). Extra analyzers come from the modules named in DOCKET_EXTRA_ANALYZERS
(comma-separated import paths; how benchmarks and tests plug in instruments): importing such a
module declares its analyzers here.
"""
from __future__ import annotations

import importlib
import os
import threading

from docket.queues import ANALYZE_TASK, CPU_QUEUE, GPU_QUEUE

BUILTIN = {"ocr": CPU_QUEUE, "model": GPU_QUEUE}

_declared: dict[str, str] = dict(BUILTIN)
_plugins_loaded = False
# Threads of a fresh API process ask at the same moment: the first loads the plugins under this
# lock, the others wait for all of them (never see a half-filled catalogue).
_lock = threading.RLock()


def declare(name: str, queue: str = CPU_QUEUE) -> None:
    _declared[name] = queue


def load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    with _lock:
        if _plugins_loaded:
            return
        for module in filter(None, (m.strip() for m in os.environ.get("DOCKET_EXTRA_ANALYZERS", "").split(","))):
            importlib.import_module(module)
        _plugins_loaded = True  # only once every module has declared its analyzers


def known() -> list[str]:
    load_plugins()
    return sorted(_declared)


def route(analyzer: str) -> tuple[str, str]:
    """The task and queue for a job of this analyzer: models need a GPU worker, OCR does not.
    The model analyzer's jobs run the same task (same claim/ack/retry semantics) on GPU
    workers, which batch the jobs they hold in flight (worker/vlm/batcher.py)."""
    load_plugins()
    return ANALYZE_TASK, _declared.get(analyzer, CPU_QUEUE)
