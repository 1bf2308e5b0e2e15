"""Screenshot extraction over OCR lines (Chinese and English)."""
from __future__ import annotations

from worker.extract.screenshot import extract_screenshot
from worker.ocr import OcrLine

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def _resident_id(first17: str) -> str:
    return first17 + "10X98765432"[sum(int(c) * w for c, w in zip(first17, _WEIGHTS)) % 11]


def line(text: str, y: float, score: float = 0.95) -> OcrLine:
    return OcrLine(text=text, box=(10.0, y, 300.0, y + 20.0), score=score)


def test_chinese_screenshot_with_personal_data():
    rid = _resident_id("32010619851122004")
    lines = [
        line("个人信息", 0),
        line("姓名：张三", 30),
        line("手机号：138 1234 5678", 60, 0.9),
        line(f"身份证：{rid}", 90, 0.8),
        line("银行卡：6222 0212 3456 7890", 120),  # Luhn-invalid: not a card
        line("注册时间：2023-05-01", 150),
    ]
    ex = extract_screenshot(lines)
    assert ex.fields["text"] == "\n".join(l.text for l in lines)
    assert ex.fields["personal_data"] == [
        {"type": "phone", "value": "*******5678"},
        {"type": "cn_resident_id", "value": "*" * 14 + rid[-4:]},
    ]
    assert ex.fields["personal_data_types"] == ["cn_resident_id", "phone"]
    assert ex.evidence["personal_data"] == [(10.0, 60.0, 300.0, 80.0, 0), (10.0, 90.0, 300.0, 110.0, 0)]
    assert ex.confidence["personal_data"] == 0.8


def test_english_screenshot_with_email_card_and_phone():
    lines = [
        line("Account settings", 0),
        line("Email: jane.doe@example.com", 25),
        line("Card on file: 4111 1111 1111 1111", 50),
        line("Support: +1 (415) 555-0100", 75),
        line("Order #4111111111111111 shipped on 2024-02-03", 100),
    ]
    ex = extract_screenshot(lines)
    assert [p["type"] for p in ex.fields["personal_data"]] == ["email", "bank_card", "phone"]
    assert ex.fields["personal_data"][1]["value"] == "************1111"
    assert ex.fields["personal_data_types"] == ["bank_card", "email", "phone"]
    assert [box[1] for box in ex.evidence["personal_data"]] == [25.0, 50.0, 75.0]
    assert all(set(p) == {"type", "value"} for p in ex.fields["personal_data"])


def test_screenshot_without_personal_data_still_answers():
    ex = extract_screenshot([line("Weather today: sunny, 23°C", 0), line("2024年3月5日 星期二", 30)])
    assert ex.fields["personal_data"] == []
    assert ex.fields["personal_data_types"] == []
    assert ex.fields["text"] == "Weather today: sunny, 23°C\n2024年3月5日 星期二"
    assert "personal_data" not in ex.evidence


def test_empty_screenshot():
    ex = extract_screenshot([])
    assert ex.fields == {"text": "", "personal_data": [], "personal_data_types": []}


def test_numbers_do_not_join_across_lines():
    # two 8-digit fragments on separate lines must not combine into one 16-digit card number
    ex = extract_screenshot([line("41111111", 0), line("11111111", 30)])
    assert ex.fields["personal_data"] == []
