"""The ZIP container: central directory sized up first, entry counts, sizes and ratios capped,
unsafe names refused, references resolved inside the archive only."""
from __future__ import annotations

import posixpath
import re
import struct
import zipfile
import zlib
from pathlib import Path


from docket.errors import DocumentError
from docket.ofd import limits
from docket.ofd.limits import _corrupt


def _normalize(name: str) -> str:
    name = name.replace("\\", "/")
    while name.startswith(("/", "./")):
        name = name[1:] if name.startswith("/") else name[2:]
    return name


def _check_central_directory(fh) -> None:
    """Refuse archives whose central directory is too big before zipfile loads all of it."""
    fh.seek(0, 2)
    size = fh.tell()
    tail_len = min(size, 65_536 + 22)
    fh.seek(size - tail_len)
    tail = fh.read(tail_len)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        raise _corrupt("The OFD is not a readable ZIP archive (no end of central directory).")
    entries, cd_size = struct.unpack("<HI", tail[at + 10:at + 16])
    if entries == 0xFFFF or cd_size == 0xFFFFFFFF:   # ZIP64: the locator sits just before
        loc = tail[at - 20:at] if at >= 20 else b""
        if loc[:4] != b"PK\x06\x07":
            raise _corrupt("The OFD's ZIP64 directory is damaged.")
        (offset,) = struct.unpack("<Q", loc[8:16])
        if offset > size - 56:
            raise _corrupt("The OFD's ZIP64 directory is damaged.")
        fh.seek(offset)
        rec = fh.read(56)
        if rec[:4] != b"PK\x06\x06":
            raise _corrupt("The OFD's ZIP64 directory is damaged.")
        entries, cd_size = struct.unpack("<QQ", rec[32:48])
    if entries > limits.MAX_ENTRIES:
        raise _corrupt(f"The OFD archive lists {entries} files; the limit is {limits.MAX_ENTRIES}.")
    if cd_size > limits.MAX_CENTRAL_DIRECTORY:
        raise _corrupt(f"The OFD archive's directory is {cd_size} bytes; the limit is {limits.MAX_CENTRAL_DIRECTORY}.")
    fh.seek(0)


class _Archive:
    """Read-only, size-capped view of the archive's entries."""

    def __init__(self, path: Path | str):
        try:
            self._fh = open(path, "rb")
        except OSError as exc:
            raise _corrupt(f"The OFD cannot be read: {exc}") from exc
        try:
            _check_central_directory(self._fh)
            self._zip = zipfile.ZipFile(self._fh)
            self._entries = self._index(self._zip.infolist())
        except DocumentError:
            self._fh.close()
            raise
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError, struct.error) as exc:
            self._fh.close()
            raise _corrupt(f"The OFD is not a readable ZIP archive: {exc}") from exc
        self._folded = {}
        for name in self._entries:
            self._folded.setdefault(name.casefold(), name)

    @staticmethod
    def _index(infos: list[zipfile.ZipInfo]) -> dict[str, zipfile.ZipInfo]:
        if len(infos) > limits.MAX_ENTRIES:
            raise _corrupt(f"The OFD archive holds {len(infos)} files; the limit is {limits.MAX_ENTRIES}.")
        total = 0
        entries: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            raw = info.filename
            name = _entry_name(info).replace("\\", "/")
            parts = name.split("/")
            if (name.startswith("/") or "\x00" in name or ".." in parts
                    or re.match(r"^[A-Za-z]:", name)):
                raise _corrupt(f"The OFD archive has an unsafe file name: {raw[:200]!r}.")
            if info.is_dir():
                continue
            total += info.file_size
            if total > limits.MAX_TOTAL_BYTES:
                raise _corrupt(f"The OFD's files would expand to more than {limits.MAX_TOTAL_BYTES} bytes "
                               "(a ZIP bomb?).")
            if info.file_size > (1 << 20) and info.file_size > limits.MAX_RATIO * max(info.compress_size, 1):
                raise _corrupt(f"The OFD's file {name[:200]!r} is compressed {info.file_size // max(info.compress_size, 1)}"
                               f" to 1 (a ZIP bomb?); the limit is {limits.MAX_RATIO} to 1.")
            entries.setdefault(_normalize(name), info)
        return entries

    @property
    def names(self) -> list[str]:
        return list(self._entries)

    def find(self, name: str) -> str | None:
        name = _normalize(name)
        if name in self._entries:
            return name
        return self._folded.get(name.casefold())   # producers get letter case wrong

    def resolve(self, base: str | None, location: str | None) -> str | None:
        """A location written in entry `base` (relative to it, or absolute from the root) as an
        entry name, or None. A location that climbs out of the archive is an error."""
        location = (location or "").strip().replace("\\", "/")
        if not location:
            return None
        if location.startswith("/"):
            candidates = [location.lstrip("/")]
        else:
            base_dir = posixpath.dirname(_normalize(base)) if base else ""
            candidates = [posixpath.join(base_dir, location), location]
        for candidate in candidates:
            normal = posixpath.normpath(_normalize(candidate))
            if normal == ".." or normal.startswith("../"):
                raise _corrupt(f"The OFD refers to {location[:200]!r}, outside the archive.")
            found = self.find(normal)
            if found is not None:
                return found
        return None

    def read(self, name: str, limit: int | None = None) -> bytes:
        limit = limits.MAX_PART_BYTES if limit is None else limit
        info = self._entries.get(name)
        if info is None:
            raise _corrupt(f"The OFD lacks {name[:200]!r}.")
        if info.file_size > limit:
            raise _corrupt(f"The OFD's file {name[:200]!r} is {info.file_size} bytes; the limit is {limit}.")
        try:
            with self._zip.open(info) as stream:
                data = stream.read(limit + 1)
        except (zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError, EOFError, OSError,
                ValueError) as exc:   # RuntimeError: encrypted; NotImplementedError: compression method
            raise _corrupt(f"The OFD's file {name[:200]!r} cannot be read: {exc}") from exc
        if len(data) > limit:
            raise _corrupt(f"The OFD's file {name[:200]!r} inflates past {limit} bytes (a ZIP bomb?).")
        return data

    def close(self) -> None:
        try:
            self._zip.close()
        finally:
            self._fh.close()


def _entry_name(info: zipfile.ZipInfo) -> str:
    """Entry names without the UTF-8 flag are decoded as CP437 by zipfile; Chinese tools
    mostly wrote UTF-8 or GBK there."""
    if info.flag_bits & 0x800:
        return info.filename
    try:
        raw = info.filename.encode("cp437")
    except UnicodeEncodeError:
        return info.filename
    if raw.isascii():
        return info.filename
    for encoding in ("utf-8", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return info.filename


def looks_like_ofd(path: Path | str) -> bool:
    """True when the file is a ZIP archive with an `OFD.xml` at its root. Never raises: a ZIP
    that cannot even be listed is not taken for an OFD (it is refused as unsupported)."""
    try:
        with open(path, "rb") as fh:
            if fh.read(4) not in (b"PK\x03\x04", b"PK\x05\x06"):
                return False
            _check_central_directory(fh)
            with zipfile.ZipFile(fh) as zf:
                names = zf.namelist()
    except (DocumentError, zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError,
            struct.error):
        return False
    return any(_normalize(n.replace("\\", "/")).casefold() == "ofd.xml" for n in names)


def is_zip_head(head: bytes) -> bool:
    """The leading bytes of a ZIP archive (which an OFD is)."""
    return head[:4] in (b"PK\x03\x04", b"PK\x05\x06")
