"""Analyzers turn a prepared document into fields under a rule. Pick one by name."""
from __future__ import annotations

from worker.analyzers.base import Analysis, Analyzer

_registry: dict[str, type] = {}


def register(cls):
    _registry[cls.name] = cls
    return cls


_instances: dict[str, Analyzer] = {}


def get_analyzer(name: str) -> Analyzer:
    """One analyzer instance per process: loading OCR or model weights is the slow part."""
    if name not in _instances:
        if name not in _registry:
            _load_builtin()
        try:
            cls = _registry[name]
        except KeyError:
            raise KeyError(f"unknown analyzer {name!r}; known: {', '.join(sorted(_registry))}") from None
        _instances[name] = cls()
    return _instances[name]


def _load_builtin() -> None:
    from worker.analyzers import ocr  # noqa: F401  (registers itself)


__all__ = ["Analysis", "Analyzer", "get_analyzer", "register"]
