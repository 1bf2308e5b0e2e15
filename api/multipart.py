"""Werkzeug's multipart decoder, made lenient and cheaper.

Lenient: part headers that are not UTF-8 (a filename in GBK or Latin-1 from an old client) are
read, not dropped: Werkzeug decodes part headers strictly, and one undecodable filename made the
whole form vanish (a rule that was sent came back as missing_rule). Undecodable bytes become
U+FFFD; the filename is then cleaned like any other.

Cheaper: Werkzeug compiles two regular expressions per request, each containing that request's
random boundary, so Python's pattern cache never hits; that compile was ~6% of the API's CPU per
submission. `BoundarySearch` finds the same matches with `bytes.find` and one pattern compiled
once (tests/test_api_multipart.py checks it against Werkzeug's own patterns).
"""
from __future__ import annotations

import re

from werkzeug import formparser
from werkzeug.sansio.multipart import LINE_BREAK, MultipartDecoder

# What follows "--boundary" in Werkzeug's patterns: "--" (the closing one) with optional trailing
# horizontal whitespace and line break, or trailing whitespace and a line break.
_AFTER_BOUNDARY = re.compile(rb"--[^\S\n\r]*%s?|[^\S\n\r]*%s" % (LINE_BREAK, LINE_BREAK))


class BoundaryMatch:
    """The parts of an `re.Match` the decoder reads: start(), end() and group(1)."""

    __slots__ = ("_start", "_end", "_tail")

    def __init__(self, start: int, end: int, tail: bytes):
        self._start, self._end, self._tail = start, end, tail

    def start(self) -> int:
        return self._start

    def end(self) -> int:
        return self._end

    def group(self, index: int) -> bytes:
        if index != 1:
            raise IndexError("no such group")
        return self._tail


class BoundarySearch:
    """`search()` as Werkzeug's per-boundary patterns do it, without compiling one:
    `LINE_BREAK?--boundary(tail)` (the preamble's end; `break_required=False`) or
    `LINE_BREAK--boundary(tail)` (a part's end), with the leftmost match winning."""

    __slots__ = ("_marker", "_break_required")

    def __init__(self, boundary: bytes, *, break_required: bool):
        self._marker = b"--" + boundary
        self._break_required = break_required

    def search(self, data, pos: int = 0) -> BoundaryMatch | None:
        marker = self._marker
        at = data.find(marker, pos)
        while at != -1:
            tail = _AFTER_BOUNDARY.match(data, at + len(marker))
            if tail is not None:
                # The match starts at the line break before the marker (the longest, as the
                # pattern's alternation \r\n|\n|\r tries it), never before `pos`.
                if at - 2 >= pos and data[at - 2:at] == b"\r\n":
                    return BoundaryMatch(at - 2, tail.end(), tail.group())
                if at - 1 >= pos and data[at - 1:at] in (b"\r", b"\n"):
                    return BoundaryMatch(at - 1, tail.end(), tail.group())
                if not self._break_required:
                    return BoundaryMatch(at, tail.end(), tail.group())
            at = data.find(marker, at + 1)
        return None


class LenientHeadersDecoder(MultipartDecoder):
    def __init__(self, boundary: bytes, *args, **kwargs):
        # Werkzeug's __init__ with a constant boundary (its patterns then come from re's cache),
        # then the real boundary and searches that need no compiling.
        super().__init__(b"-", *args, **kwargs)
        self.boundary = boundary
        self.preamble_re = BoundarySearch(boundary, break_required=False)
        self.boundary_re = BoundarySearch(boundary, break_required=True)

    def _parse_headers(self, data):
        return super()._parse_headers(bytes(data).decode("utf-8", "replace").encode("utf-8"))


def install() -> None:
    # Werkzeug's MultiPartParser names its decoder class at module level, with no hook to pass
    # another: this replaces that one name, for this process, with the lenient subclass.
    formparser.MultipartDecoder = LenientHeadersDecoder
