"""Multipart uploads whose part headers are not UTF-8 (a filename in GBK or Latin-1 from an old
client) are read, not dropped: Werkzeug decodes part headers strictly, and one undecodable
filename made the whole form vanish (a rule that was sent came back as missing_rule).
Undecodable bytes become U+FFFD; the filename is then cleaned like any other."""
from __future__ import annotations

from werkzeug import formparser
from werkzeug.sansio.multipart import MultipartDecoder


class LenientHeadersDecoder(MultipartDecoder):
    def _parse_headers(self, data):
        return super()._parse_headers(bytes(data).decode("utf-8", "replace").encode("utf-8"))


def install() -> None:
    # Werkzeug's MultiPartParser names its decoder class at module level, with no hook to pass
    # another: this replaces that one name, for this process, with the lenient subclass.
    formparser.MultipartDecoder = LenientHeadersDecoder
