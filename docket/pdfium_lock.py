"""PDFium may only be called from one thread at a time in a process — not even on different
documents — or it corrupts its heap (seen here: "corrupted double-linked list" when the
dashboard rendered two pages of one PDF at once). Every use of pypdfium2 goes through
`open_pdf`, which holds one process-wide lock and closes what it opened before letting go."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PDFIUM = threading.RLock()


@contextmanager
def open_pdf(path: Path | str) -> Iterator:
    """The open PdfDocument, with the lock held until it is closed. Close every page, bitmap
    and text page taken from it inside the block: a finalizer running later, on another
    thread, would be a call outside the lock."""
    import pypdfium2 as pdfium

    with PDFIUM:
        pdf = pdfium.PdfDocument(str(path))
        try:
            yield pdf
        finally:
            pdf.close()
