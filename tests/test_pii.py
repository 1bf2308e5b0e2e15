"""Personal-data detection: checksums, formats, masking and things that must not match."""
from __future__ import annotations

import pytest

from worker.extract.pii import cn_resident_id_valid, find_personal_data, luhn_valid, mask

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def make_resident_id(first17: str) -> str:
    """A PRC resident ID with its ISO 7064 MOD 11-2 check character, computed here independently."""
    return first17 + "10X98765432"[sum(int(c) * w for c, w in zip(first17, _WEIGHTS)) % 11]


def luhn_complete(body: str) -> str:
    """body + the Luhn check digit."""
    for d in "0123456789":
        digits = body + d
        total = 0
        for i, ch in enumerate(reversed(digits)):
            n = int(ch) * (2 if i % 2 else 1)
            total += n - 9 if n > 9 else n
        if total % 10 == 0:
            return digits
    raise AssertionError


def types(text: str) -> list[str]:
    return [f["type"] for f in find_personal_data(text)]


VALID_ID = make_resident_id("44030519900307123")  # Shenzhen, born 1990-03-07
VALID_ID_X = next(make_resident_id(f"1101051949123100{d}") for d in "0123456789"
                  if make_resident_id(f"1101051949123100{d}").endswith("X"))


def test_mask_keeps_last_four():
    assert mask("13812345678") == "*******5678"
    assert mask("abc") == "abc"


def test_luhn():
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")
    assert luhn_valid(luhn_complete("622202123456789012"))


def test_valid_resident_ids_are_found_and_masked():
    for rid in (VALID_ID, VALID_ID_X, VALID_ID_X.lower()):
        found = find_personal_data(f"身份证号码：{rid}，请核对")
        assert [f["type"] for f in found] == ["cn_resident_id"], rid
        assert found[0]["value"] == "*" * 14 + rid[-4:].upper()
        assert found[0]["span"] == (6, 24)


def test_invalid_resident_ids_are_rejected():
    wrong_check = VALID_ID[:-1] + ("0" if VALID_ID[-1] != "0" else "1")
    bad_date = make_resident_id("44030519901307123")  # month 13, checksum right
    future = make_resident_id("44030521990307123")  # born 2199
    bad_region = make_resident_id("99030519900307123")
    for rid in (wrong_check, bad_date, future, bad_region):
        assert not cn_resident_id_valid(rid)
        assert "cn_resident_id" not in types(f"ID: {rid}")
    assert cn_resident_id_valid(VALID_ID)


@pytest.mark.parametrize("card", [
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
    "5500000000000004",
    "3782 822463 10005",  # Amex grouping
])
def test_luhn_valid_cards_are_found(card):
    found = find_personal_data(f"Card number: {card} exp 12/27")
    assert [f["type"] for f in found] == ["bank_card"]
    digits = card.replace(" ", "").replace("-", "")
    assert found[0]["value"] == "*" * (len(digits) - 4) + digits[-4:]


def test_chinese_19_digit_card():
    card = luhn_complete("622202123456789012")
    grouped = " ".join(card[i:i + 4] for i in range(0, 19, 4))
    assert types(f"银行卡号：{grouped}") == ["bank_card"]


@pytest.mark.parametrize("card", ["4111 1111 1111 1112", "5500000000000005", "1234 5678 9012 3456"])
def test_luhn_invalid_cards_are_rejected(card):
    assert types(f"Card number: {card}") == []


@pytest.mark.parametrize("text,expected", [
    ("手机：13812345678", "*******5678"),
    ("手机 138 1234 5678", "*******5678"),
    ("电话 +86 139-1234-5678", "**********5678"),
    ("(+86)15012345678", "*********5678"),
    ("座机 010-12345678", "*******5678"),
    ("深圳 (0755) 8765 4321", "********4321"),
    ("Call +1 (415) 555-0100 today", "********0100"),
    ("US office 415-555-0100.", "******0100"),
    ("London +44 20 7946 0018", "*********0018"),
    ("UK 020 7946 0018", "*******0018"),
    ("Berlin +49 30 1234567", "********4567"),
])
def test_phones(text, expected):
    found = find_personal_data(text)
    assert [f["type"] for f in found] == ["phone"], found
    assert found[0]["value"] == expected


def test_emails():
    found = find_personal_data("联系 zhang.san+work@mail.example.com.cn 或 Bob@Example.org.")
    assert [f["type"] for f in found] == ["email", "email"]
    assert found[1]["value"] == "*" * (len("Bob@Example.org") - 4) + ".org"
    assert types("not an email: user@ or @domain.com or a@b") == []


@pytest.mark.parametrize("text", [
    "Date: 2023-05-01 14:30:00",
    "日期：2023年5月1日，2023/05/01",
    "Total: $13,812,345.67",
    "金额：¥13812345678.00",
    "合计 13812345678元",
    "Order No. 4111111111111111",
    "订单号：202305011234567890",
    "Tracking #13812345678",
    "Invoice 20230501-0001",
    "Serial 123456789012345678901234",  # digits inside a longer number
    "Version 1.3812345678",
    "Growth of 13.8% over 2022-2023",
    "ISBN 978-3-16-148410-0",
])
def test_false_positives_do_not_match(text):
    assert find_personal_data(text) == [], text


def test_multiple_findings_in_text_order_with_spans():
    text = f"张三 13812345678 zhang@example.com {VALID_ID} 4111111111111111"
    found = find_personal_data(text)
    assert [f["type"] for f in found] == ["phone", "email", "cn_resident_id", "bank_card"]
    for f in found:
        start, end = f["span"]
        assert text[start:end].replace(" ", "")[-4:].upper() == f["value"][-4:].upper()


def test_luhn_invalid_card_is_not_read_as_phone_fragments():
    assert find_personal_data("银行卡：6222 0212 3456 7890") == []
    assert find_personal_data("Card 4111 1111 1111 1112") == []


def test_no_space_between_chinese_and_data():
    # OCR of Chinese chat screenshots drops the space: 号码13812345678, 邮箱a@b.com
    found = find_personal_data("我的手机号是13812345678，邮箱lina.work@example.com谢谢")
    assert sorted(f["type"] for f in found) == ["email", "phone"]
