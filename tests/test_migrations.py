"""The Alembic migrations build exactly the schema the models describe, on SQLite and Postgres."""
from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from db.migrate import alembic_config, upgrade
from db.models import Base, include_object
from tests import services


@pytest.fixture(params=["sqlite", "postgres"])
def empty_database(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.db'}"
    else:
        url, drop = services.fresh_database(request.getfixturevalue("postgres_admin_url"))
        yield url
        drop()


def _schema_at(url: str, revision: str = "head"):
    """The database upgraded to `revision`: its engine and its tables as they are at that
    revision (reflected, not the models')."""
    from sqlalchemy import MetaData

    upgrade(url, revision)
    engine = create_engine(url)
    meta = MetaData()
    meta.reflect(engine)
    return engine, meta.tables


def _finished_job(created_at) -> dict:
    """The columns a finished job row needs at revisions 0008-0009, but its id and document."""
    return {"rule_name": "expense_policy", "rule_version": "1", "analyzer": "ocr", "attempts": 1,
            "tenant_id": "default", "status": "succeeded", "created_at": created_at, "review_rank": 1}


def test_migrations_match_models(empty_database):
    upgrade(empty_database)
    engine = create_engine(empty_database)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"render_as_batch": True, "include_object": include_object}), Base.metadata)
    engine.dispose()
    assert diff == [], f"models and migrations disagree: {diff}"


def test_downgrade_to_base_and_up_again(empty_database):
    upgrade(empty_database)
    command.downgrade(alembic_config(empty_database), "base")
    engine = create_engine(empty_database)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()
    upgrade(empty_database)
    engine = create_engine(empty_database)
    assert {"documents", "batches", "jobs", "decisions"} <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_0003_fills_the_queue_columns_of_existing_jobs(empty_database):
    """Jobs decided before 0003 get their current decision, queue rank, decision time, merchant and amount."""
    from datetime import datetime, timezone

    from sqlalchemy import select

    engine, tables = _schema_at(empty_database, "0002")
    jobs, decisions, documents = tables["jobs"], tables["decisions"], tables["documents"]
    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
    common = {"rule_name": "expense_policy", "rule_version": "1", "analyzer": "ocr", "attempts": 1,
              "document_sha256": "a" * 64, "tenant_id": "default"}
    with engine.begin() as conn:
        conn.execute(documents.insert(), [{"sha256": "a" * 64, "mime_type": "image/png", "size": 1, "page_count": 1,
                                           "storage_path": "aa/a.png", "created_at": t0}])
        conn.execute(jobs.insert(), [{"id": "review", "status": "succeeded", "created_at": t0, **common},
                                     {"id": "fine", "status": "succeeded", "created_at": t0, **common},
                                     {"id": "waiting", "status": "queued", "created_at": t0, **common}])
        conn.execute(decisions.insert(), [
            {"job_id": job_id, "decision": decision, "fields": {"merchant_name": "星巴克", "total": 9.5}, "reasons": [],
             "confidence": {}, "evidence": {}, "rule_name": "expense_policy", "rule_version": "1", "analyzer": "ocr",
             "timings": {}, "created_at": t0.replace(minute=minute), "tenant_id": "default"}
            for job_id, decision, minute in (("review", "needs_review", 1), ("fine", "approve", 2))])
    engine.dispose()
    engine, tables = _schema_at(empty_database)
    jobs = tables["jobs"]
    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(jobs))}
        trigram = None
        if engine.dialect.name == "postgresql":
            trigram = set(conn.exec_driver_sql("SELECT indexname FROM pg_indexes WHERE indexname LIKE 'ix_trgm_%%'")
                          .scalars())
    engine.dispose()

    def utc(value):
        return value if value is None or value.tzinfo else value.replace(tzinfo=timezone.utc)

    assert {k: (r.current_decision, r.review_rank, utc(r.decided_at), r.reviewed_at, r.merchant, r.amount)
            for k, r in rows.items()} == {
        "review": ("needs_review", 0, t0.replace(minute=1), None, "星巴克", 9.5),
        "fine": ("approve", 1, t0.replace(minute=2), None, "星巴克", 9.5),
        "waiting": (None, 1, None, None, None, None)}
    if trigram is not None:
        assert trigram == {"ix_trgm_jobs_merchant", "ix_trgm_decisions_text"}


def test_0009_copies_each_documents_hash_onto_its_jobs(empty_database):
    """Jobs from before 0009 carry their document's perceptual hash after it (the near-duplicate
    scan reads only jobs); a job whose document has none stays without."""
    from datetime import datetime, timezone

    from sqlalchemy import select

    engine, tables = _schema_at(empty_database, "0008")
    jobs, documents = tables["jobs"], tables["documents"]
    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
    common = _finished_job(t0)
    with engine.begin() as conn:
        conn.execute(documents.insert(), [
            {"sha256": sha * 64, "mime_type": "image/png", "size": 1, "page_count": 1, "storage_path": f"{sha}.png",
             "created_at": t0, "phash": phash} for sha, phash in (("a", "0123456789abcdef"), ("b", None))])
        conn.execute(jobs.insert(), [{"id": "hashed-1", "document_sha256": "a" * 64, **common},
                                     {"id": "hashed-2", "document_sha256": "a" * 64, **common},
                                     {"id": "unhashed", "document_sha256": "b" * 64, **common}])
    engine.dispose()
    engine, tables = _schema_at(empty_database)
    with engine.connect() as conn:
        copies = dict(conn.execute(select(tables["jobs"].c.id, tables["jobs"].c.phash)).all())
    engine.dispose()
    assert copies == {"hashed-1": "0123456789abcdef", "hashed-2": "0123456789abcdef", "unhashed": None}


def test_0010_postgres_keeps_each_jobs_hash_as_bits(postgres_admin_url):
    """Postgres fills jobs.phash_bits for the jobs there already and keeps it with every write:
    the hash's 64 bits as a signed bigint, none for a hash that is not 16 hex digits."""
    from datetime import datetime, timezone

    from sqlalchemy import text, update

    url, drop = services.fresh_database(postgres_admin_url)
    try:
        engine, tables = _schema_at(url, "0009")
        jobs, documents = tables["jobs"], tables["documents"]
        t0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
        common = {**_finished_job(t0), "document_sha256": "a" * 64}
        with engine.begin() as conn:
            conn.execute(documents.insert(), {"sha256": "a" * 64, "mime_type": "image/png", "size": 1,
                                              "page_count": 1, "storage_path": "a.png", "created_at": t0})
            conn.execute(jobs.insert(), [{"id": "top-bit", "phash": "8000000000000001", **common},
                                         {"id": "odd", "phash": "not-a-hash", **common},
                                         {"id": "later", "phash": None, **common}])
        engine.dispose()
        upgrade(url)
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(update(jobs).where(jobs.c.id == "later").values(phash="00000000000000ff"))
            bits = dict(conn.execute(text("SELECT id, phash_bits FROM jobs")).all())
        engine.dispose()
        assert bits == {"top-bit": -(1 << 63) + 1, "odd": None, "later": 255}
    finally:
        drop()
