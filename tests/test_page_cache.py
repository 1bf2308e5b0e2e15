"""Page images for people: the analyzer's view of each page, cached, and pruned when unused."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from PIL import Image

from db.models import Document
from docket import page_cache
from docket.config import Settings
from tests.documents import pdf


def _settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, database_url="sqlite://", redis_url=None, rules_dir=None, max_image_side=800)


def _document(settings: Settings, data: bytes, mime: str, pages: int) -> Document:
    (settings.documents_dir / "ab").mkdir(parents=True, exist_ok=True)
    (settings.documents_dir / "ab" / "doc").write_bytes(data)
    return Document(sha256="ab" * 32, mime_type=mime, size=len(data), page_count=pages, storage_path="ab/doc")


def test_pdf_pages_render_bounded_and_cached(tmp_path):
    settings = _settings(tmp_path)
    doc = _document(settings, pdf(pages=2), "application/pdf", 2)
    first = page_cache.page_png(settings, doc, 1)
    with Image.open(first) as img:
        assert max(img.size) <= 800 and img.format == "PNG"
    mtime = first.stat().st_mtime_ns
    assert page_cache.page_png(settings, doc, 1) == first and first.stat().st_mtime_ns >= mtime
    with pytest.raises(IndexError):
        page_cache.page_png(settings, doc, 2)


def test_prune_removes_only_pages_idle_too_long(tmp_path):
    settings = _settings(tmp_path)
    doc = _document(settings, pdf(pages=2), "application/pdf", 2)
    old, fresh = page_cache.page_png(settings, doc, 0), page_cache.page_png(settings, doc, 1)
    week_ago = time.time() - page_cache.MAX_IDLE_SECONDS - 60
    os.utime(old, (week_ago, week_ago))
    assert page_cache.prune(settings) == 1
    assert not old.exists() and fresh.exists()
    assert page_cache.prune(_settings(tmp_path / "empty")) == 0
