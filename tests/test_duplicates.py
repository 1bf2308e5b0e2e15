"""Near-duplicate receipts: perceptual hashes compared within the tenant, nearest first."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import imagehash
import pytest

from db.models import Document, Job, Tenant
from db.session import session_factory
from docket.rules import default_rules_dir, load_rules
from tests.documents import receipt_image
from docket.duplicates import earlier_near_duplicates, hamming, perceptual_hash, record_hash


def test_hamming_matches_imagehash():
    rng = random.Random(7)
    hashes = [f"{rng.getrandbits(64):016x}" for _ in range(200)]
    target = hashes[0]
    expected = [imagehash.hex_to_hash(target) - imagehash.hex_to_hash(h) for h in hashes]
    assert hamming(target, hashes).tolist() == expected


def test_rescaled_receipt_is_near_and_another_receipt_is_not():
    day = datetime(2026, 11, 2).date()
    original = perceptual_hash(receipt_image(day))
    rescan = perceptual_hash(receipt_image(day).resize((500, 420)).rotate(0.5, fillcolor="white"))
    other = perceptual_hash(receipt_image(day, merchant="ANOTHER SHOP", total="99.10",
                                          items=(("LAMP", "60.00"), ("CABLE", "39.10"), ("TAPE", "0.00"))))
    assert hamming(original, [rescan])[0] <= 6
    assert hamming(original, [other])[0] > 6


@pytest.fixture
def session(either_database):
    """The scan on both databases: Postgres computes the distances itself, SQLite in Python."""
    with session_factory(either_database)() as s:
        s.add_all([Tenant(id="acme", webhook_secret="whsec_x"), Tenant(id="other", webhook_secret="whsec_y")])
        s.commit()
        yield s


def _job(session, tenant: str, phash: str, created: datetime, n: int) -> Job:
    doc = Document(sha256=f"{n:064x}", mime_type="image/png", size=1, page_count=1, storage_path=f"x/{n}",
                   phash=phash)
    job = Job(id=f"j{n:031d}", tenant_id=tenant, document_sha256=doc.sha256, phash=phash, rule_name="expense_policy",
              rule_version="v", analyzer="ocr", created_at=created)
    session.add_all([doc, job])
    session.commit()
    return job


def test_earlier_near_duplicates_within_tenant_window_nearest_first(session):
    now = datetime(2026, 11, 20, tzinfo=timezone.utc)
    base = 0x0F0F_F0F0_1234_5678
    far = _job(session, "acme", f"{base ^ 0b111:016x}", now - timedelta(days=3), 1)        # 3 bits
    near = _job(session, "acme", f"{base ^ 0b1:016x}", now - timedelta(days=2), 2)         # 1 bit
    _job(session, "acme", f"{base ^ 0xFFFF:016x}", now - timedelta(days=1), 3)              # 16 bits: not near
    _job(session, "other", f"{base:016x}", now - timedelta(days=1), 4)                      # other tenant
    _job(session, "acme", f"{base:016x}", now - timedelta(days=400), 5)                     # outside the window
    later = _job(session, "acme", f"{base:016x}", now + timedelta(days=1), 6)               # submitted after
    current = _job(session, "acme", f"{base:016x}", now, 7)
    assert earlier_near_duplicates(session, current, f"{base:016x}", 6) == [near.id, far.id]
    assert earlier_near_duplicates(session, current, f"{base:016x}", 2) == [near.id]
    assert later.id not in earlier_near_duplicates(session, current, f"{base:016x}", 64)


def test_high_bits_count_and_equal_distances_come_newest_first(session):
    now = datetime(2026, 11, 20, tzinfo=timezone.utc)
    base = 0xF0F0_0000_0000_000F  # the top bit set: no sign or width surprises
    older = _job(session, "acme", f"{base ^ (1 << 63):016x}", now - timedelta(days=2), 1)  # 1 bit, the top one
    newer = _job(session, "acme", f"{base ^ 1:016x}", now - timedelta(days=1), 2)          # 1 bit, the bottom one
    same = _job(session, "acme", f"{base:016x}", now - timedelta(days=3), 3)
    current = _job(session, "acme", f"{base:016x}", now, 4)
    assert earlier_near_duplicates(session, current, f"{base:016x}", 1) == [same.id, newer.id, older.id]
    assert earlier_near_duplicates(session, current, f"{base:016x}", 0) == [same.id]
    assert earlier_near_duplicates(session, current, f"{base:016x}", 1, most=2) == [same.id, newer.id]  # the nearest


def test_only_policies_that_read_the_flag_pay_for_it():
    rules = load_rules(default_rules_dir())
    assert rules["expense_policy"].reads_document("near_duplicate")
    assert not rules["contract_review"].reads_document("near_duplicate")
    assert not rules["screenshot_moderation"].reads_document("duplicate_of")


def test_a_hash_computed_once_reaches_every_job_of_the_document(session):
    """The worker keeps a new hash on the document and on each of its jobs without a copy (an
    earlier job of the same bytes under a policy that never hashed them): one scan of jobs alone
    finds them all, as a join to the documents would."""
    now = datetime(2026, 11, 20, tzinfo=timezone.utc)
    earlier = _job(session, "acme", None, now - timedelta(days=1), 1)  # same bytes, never hashed
    current = Job(id="j" + "2" * 31, tenant_id="acme", document_sha256=earlier.document_sha256,
                  rule_name="expense_policy", rule_version="v", analyzer="ocr", created_at=now)
    other = _job(session, "acme", "fedcba9876543210", now - timedelta(days=2), 3)  # keeps its own
    session.add(current)
    session.commit()
    record_hash(session, session.get(Document, current.document_sha256), "0123456789abcdef")
    session.commit()
    session.expire_all()
    assert session.get(Document, current.document_sha256).phash == "0123456789abcdef"
    assert (session.get(Job, earlier.id).phash, session.get(Job, current.id).phash,
            session.get(Job, other.id).phash) == ("0123456789abcdef", "0123456789abcdef", "fedcba9876543210")
    assert earlier_near_duplicates(session, session.get(Job, current.id), "0123456789abcdef", 0) == [earlier.id]
