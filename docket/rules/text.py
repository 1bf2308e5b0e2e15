"""Small text helpers shared by the rules package: collapsing an exception or
value to one line, truncating messages to a bounded length (rule errors and
verdict reasons are shown to people and stored), and naming a JSON path
(``checks[2].expr``) for schema errors.
"""

from __future__ import annotations

from typing import Any, Iterable

_MAX_MESSAGE = 300


def _one_line(exc: Any) -> str:
    return " ".join(str(exc).split())


def _truncate(text: str, limit: int = _MAX_MESSAGE) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _json_path(path: Iterable[Any]) -> str:
    parts = list(path)
    if not parts:
        return "top level"
    return ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in parts).replace(".[", "[")
