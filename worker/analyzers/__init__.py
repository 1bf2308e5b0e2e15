"""Analyzers turn a prepared document into fields under a rule. Pick one by name.

Built-in: `ocr` (the CPU default) and `model` (a vision-language model, for GPU workers).
Extra analyzers register themselves from the modules named in DOCKET_EXTRA_ANALYZERS
(comma-separated import paths) — how benchmarks plug in their instruments without touching
production code. Registering also declares the name (and queue) in the core's catalogue
(docket/analyzers.py), which is all the API needs to know of an analyzer.
"""
from __future__ import annotations

import importlib
import threading

from docket import analyzers as catalogue
from docket.queues import CPU_QUEUE
from worker.analyzers.base import Analysis, Analyzer

_registry: dict[str, type] = {}
_instances: dict[str, Analyzer] = {}
_loaded = False
# Threads of a fresh process ask for the registry at the same moment: the first loads it under
# this lock, the others wait for the whole of it (never see it half-filled).
_lock = threading.RLock()


def register(cls):
    _registry[cls.name] = cls
    catalogue.declare(cls.name, getattr(cls, "queue", CPU_QUEUE))
    return cls


def _load() -> None:
    global _loaded
    if _loaded:
        return
    with _lock:
        if _loaded:
            return
        importlib.import_module("worker.analyzers.ocr")
        importlib.import_module("worker.analyzers.model")  # cheap: torch loads with the model
        catalogue.load_plugins()
        _loaded = True  # only once every module has registered


def known() -> list[str]:
    _load()
    return sorted(_registry)


def get_analyzer(name: str) -> Analyzer:
    """One analyzer instance per process: loading OCR or model weights is the slow part."""
    _load()
    with _lock:
        if name not in _instances:
            try:
                cls = _registry[name]
            except KeyError:
                raise KeyError(f"unknown analyzer {name!r}; known: {', '.join(sorted(_registry))}") from None
            _instances[name] = cls()
        return _instances[name]


__all__ = ["Analysis", "Analyzer", "get_analyzer", "known", "register"]
