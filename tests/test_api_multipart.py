"""The multipart decoder (api/multipart.py): Werkzeug's parsing, exactly, without compiling a
pattern per request's boundary, and still lenient about part headers that are not UTF-8."""
from __future__ import annotations

import io
import re

import pytest
from hypothesis import given, settings as hsettings, strategies as st
from werkzeug.sansio.multipart import Epilogue, MultipartDecoder, NeedData

from api import multipart
from api.multipart import BoundarySearch, LenientHeadersDecoder


def werkzeug_patterns(boundary: bytes) -> tuple[re.Pattern, re.Pattern]:
    """The patterns Werkzeug compiles for a boundary (preamble, part end)."""
    stock = MultipartDecoder(boundary)
    return stock.preamble_re, stock.boundary_re


def as_tuple(match):
    return None if match is None else (match.start(), match.end(), match.group(1))


# Boundaries with regex metacharacters and dashes; data made of what matters around a boundary.
boundaries = st.one_of(
    st.sampled_from([b"x", b"-", b"--", b"a.b*c", b"(+)?[]{}|^$\\", b"----WebKitFormBoundary7MA4YWxkTrZu0gW"]),
    st.binary(min_size=1, max_size=12).filter(lambda b: b"\r" not in b and b"\n" not in b))


@st.composite
def around_boundaries(draw):
    boundary = draw(boundaries)
    pieces = st.sampled_from([b"\r\n", b"\r", b"\n", b"--", b"-", b" ", b"\t", b"\x0b", b"a", b"\r\n\r\n",
                              boundary, b"--" + boundary, b"\r\n--" + boundary, b"--" + boundary + b"--"])
    data = b"".join(draw(st.lists(pieces, max_size=14)))
    return boundary, data, draw(st.integers(min_value=0, max_value=len(data)))


@hsettings(max_examples=3000, deadline=None)
@given(around_boundaries())
def test_the_searches_match_werkzeugs_patterns(case):
    boundary, data, pos = case
    preamble, part_end = werkzeug_patterns(boundary)
    for buffer in (data, bytearray(data)):  # the decoder searches its bytearray buffer
        assert as_tuple(BoundarySearch(boundary, break_required=False).search(buffer, pos)) == \
            as_tuple(preamble.search(buffer, pos))
        assert as_tuple(BoundarySearch(boundary, break_required=True).search(buffer)) == \
            as_tuple(part_end.search(buffer))


def events(decoder_class, boundary: bytes, body: bytes, chunk: int) -> list:
    """Every event of decoding `body` fed in chunks of `chunk` bytes; the error, if one is raised."""
    decoder, out = decoder_class(boundary, max_parts=50), []
    try:
        for start in range(0, len(body) + 1, chunk):
            piece = body[start:start + chunk]
            decoder.receive_data(piece if piece else None)
            while True:
                event = decoder.next_event()
                if isinstance(event, NeedData):
                    break
                out.append(event)
                if isinstance(event, Epilogue):
                    return out
        decoder.receive_data(None)
        while not isinstance(event := decoder.next_event(), NeedData):
            out.append(event)
    except ValueError as exc:
        out.append(("error", str(exc)))
    return out


class StrictPatternsDecoder(LenientHeadersDecoder):
    """The lenient decoder with Werkzeug's compiled patterns: what api/multipart.py must equal."""

    def __init__(self, boundary, *args, **kwargs):
        super().__init__(boundary, *args, **kwargs)
        self.preamble_re, self.boundary_re = werkzeug_patterns(boundary)


@st.composite
def bodies(draw):
    boundary = draw(boundaries)
    eol = draw(st.sampled_from([b"\r\n", b"\n", b"\r"]))
    parts = []
    for i in range(draw(st.integers(0, 3))):
        content = draw(st.lists(st.sampled_from([b"x", b"\r\n", b"-", b"--" + boundary, b"\r", b" "]), max_size=8))
        filename = b'; filename="f\xe9.png"' if draw(st.booleans()) else b""
        parts.append(b"--" + boundary + draw(st.sampled_from([b"", b" ", b"\t "])) + eol
                     + b'Content-Disposition: form-data; name="f%d"' % i + filename + eol + eol
                     + b"".join(content) + eol)
    closing = b"--" + boundary + b"--" + draw(st.sampled_from([b"", b" ", eol, b"\t" + eol]))
    body = draw(st.sampled_from([b"", b"preamble" + eol, eol])) + b"".join(parts) + closing \
        + draw(st.sampled_from([b"", b"epilogue"]))
    return boundary, body, draw(st.integers(1, max(1, len(body))))


@hsettings(max_examples=1500, deadline=None)
@given(bodies())
def test_decoding_gives_the_same_events_as_werkzeugs_patterns(case):
    boundary, body, chunk = case
    assert events(LenientHeadersDecoder, boundary, body, chunk) == events(StrictPatternsDecoder, boundary, body, chunk)


def form(boundary: bytes, filename: bytes) -> bytes:
    return (b"--" + boundary + b"\r\n"
            b'Content-Disposition: form-data; name="rule"\r\n\r\nexpense_policy\r\n'
            b"--" + boundary + b"\r\n"
            b'Content-Disposition: form-data; name="file"; filename="' + filename + b'"\r\n'
            b"Content-Type: image/png\r\n\r\n"
            b"\x89PNG-bytes\r\n--not-the-boundary\r\n"
            b"--" + boundary + b"--\r\n")


@pytest.mark.parametrize("boundary", [b"simple123", b"a.b*c+d?(e)[f]{2}|^$", b"--==--", b"-"])
@pytest.mark.parametrize("filename", ["receipt.png".encode(), "收据.png".encode("gbk"), "reçu.png".encode("latin-1")])
def test_a_form_parses_with_any_boundary_and_filename_bytes(boundary, filename):
    from werkzeug.formparser import parse_form_data

    multipart.install()
    body = form(boundary, filename)
    environ = {"REQUEST_METHOD": "POST", "CONTENT_TYPE": f'multipart/form-data; boundary="{boundary.decode()}"',
               "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body)}
    _, fields, files = parse_form_data(environ)
    assert fields["rule"] == "expense_policy"
    assert files["file"].read() == b"\x89PNG-bytes\r\n--not-the-boundary"
    assert files["file"].filename == filename.decode("utf-8", "replace")
