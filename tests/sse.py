"""A small Server-Sent Events reader for tests and benchmarks (the client side of docket/live.py)."""
from __future__ import annotations

import json
from typing import Iterator

import requests


def read_events(resp: requests.Response) -> Iterator[dict]:
    """Events ({"id", "event", "data"}; data parsed as JSON) of a text/event-stream body as they
    arrive; comments (keep-alives) and the `retry:` hint are skipped."""
    current: dict = {}
    for line in resp.iter_lines(decode_unicode=True):
        if line == "":
            if "event" in current:
                yield current
            current = {}
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            current[field] = json.loads(value) if field == "data" else value
