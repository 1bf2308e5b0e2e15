"""Receipt field extraction on hand-built OCR lines (no OCR engine involved)."""
from __future__ import annotations

import datetime as dt

import pytest

from worker.extract.receipt import extract_receipt, find_amounts, parse_date
from worker.ocr import OcrLine

ROW_H = 30.0
ROW_STEP = 40.0
CHAR_W = 14.0


def layout(rows: list, top: float = 20.0, score: float = 0.99) -> list[OcrLine]:
    """OCR lines from rows; a row is a string (one box at x=40) or a list of (text, x0) boxes
    on the same line. Optional third element of a box tuple: its height multiplier."""
    lines = []
    for i, row in enumerate(rows):
        y0 = top + i * ROW_STEP
        boxes = [(row, 40.0)] if isinstance(row, str) else row
        for box in boxes:
            text, x0 = box[0], float(box[1])
            scale = box[2] if len(box) > 2 else 1.0
            lines.append(OcrLine(text, (x0, y0, x0 + CHAR_W * scale * len(text), y0 + ROW_H * scale), score))
    return lines


ENGLISH = [
    "KEDAI BUKU MAJU SDN BHD (123456-X)",
    "NO. 8, JALAN TUN RAZAK,",
    "50400 KUALA LUMPUR",
    "TEL: 03-2161 0000",
    "GST REG NO: 001234567890",
    "TAX INVOICE",
    [("Date:", 40), ("25/12/2018 10:15", 200)],
    [("Description", 40), ("Qty", 300), ("Amount", 420)],
    [("NOTEBOOK A5", 40), ("1", 300), ("12.50", 420)],
    [("PEN BLUE", 40), ("2 X 10.00", 250), ("20.00", 420)],
    [("Total Qty: 3", 40)],
    [("Sub Total", 40), ("32.50", 420)],
    [("GST 6%", 40), ("1.95", 420)],
    [("Rounding Adj", 40), ("0.05", 420)],
    [("TOTAL", 40), ("RM 34.50", 400)],
    [("CASH", 40), ("RM 50.00", 400)],
    [("CHANGE", 40), ("RM 15.50", 400)],
    "GST SUMMARY",
    [("SR @ 6%", 40), ("32.50", 300), ("1.95", 420)],
    [("Total", 40), ("32.50", 300), ("1.95", 420)],
    "THANK YOU",
]


def test_english_receipt_fields():
    ex = extract_receipt(layout(ENGLISH), default_currency="USD")
    f = ex.fields
    assert f["merchant_name"] == "KEDAI BUKU MAJU SDN BHD"  # registration number dropped
    assert f["merchant_address"] == "NO. 8, JALAN TUN RAZAK, 50400 KUALA LUMPUR"
    assert f["transaction_date"] == "2018-12-25"
    assert f["total"] == 34.5
    assert f["subtotal"] == 32.5
    assert f["tax"] == 1.95
    assert f["currency"] == "MYR"  # printed RM beats the default
    assert [i["description"] for i in f["items"]] == ["NOTEBOOK A5", "PEN BLUE"]
    assert [i["amount"] for i in f["items"]] == [12.5, 20.0]
    assert f["items"][0].get("quantity") == 1.0 and f["items"][1]["quantity"] == 2.0


def test_confidence_and_evidence_cover_every_field():
    lines = layout(ENGLISH)
    ex = extract_receipt(lines, default_currency="MYR")
    assert set(ex.confidence) == set(ex.fields)
    assert all(0.0 <= c <= 1.0 for c in ex.confidence.values())
    for name in ("merchant_name", "merchant_address", "transaction_date", "total", "subtotal", "tax"):
        assert ex.evidence[name], name
        for box in ex.evidence[name]:
            assert len(box) == 5 and box[4] == 0
    # the total's evidence is its label and its amount, both on the TOTAL row
    total_boxes = {(b[0], b[1], b[2], b[3]) for b in ex.evidence["total"]}
    expected = {l.box for l in lines if l.text in ("TOTAL", "RM 34.50")}
    assert total_boxes == expected


def test_total_with_label_and_amount_in_one_box_and_rounding():
    rows = [
        "RESTORAN SELERA KITA",
        "12, JALAN MAWAR 2, 43000 KAJANG",
        "Date: 01-06-2018 18:21",
        [("Nasi Goreng", 40), ("8.00", 420)],
        "Total Amount: RM12.32",
        "Rounding: -RM0.02",
        "Nett Total: RM12.30",
    ]
    f = extract_receipt(layout(rows)).fields
    assert f["total"] == 12.3
    assert f["transaction_date"] == "2018-06-01"


def test_paid_minus_change_picks_between_total_lines():
    rows = [
        "KEDAI RUNCIT AMAN",
        [("Total Sales (Incl GST)", 40), ("15.56", 420)],
        [("Total", 40), ("15.55", 420)],
        [("Grand Total", 40), ("99.00", 420)],  # a misread, contradicted by paid − change
        [("Cash", 40), ("20.00", 420)],
        [("Change", 40), ("4.45", 420)],
    ]
    assert extract_receipt(layout(rows)).fields["total"] == 15.55


def test_skewed_photo_matches_amount_on_the_tilted_row():
    # Every amount sits 12 px higher than its label (a photo taken at an angle) and the rows
    # overlap: the box under the label's centre line is the next row's amount, not its own.
    lines = [OcrLine("KEDAI SENGET", (40, 100, 300, 140), 0.99)]
    rows = [("Item A", "10.00"), ("Item B", "5.00"), ("Total", "15.00"), ("Service", "99.00")]
    for i, (label, amount) in enumerate(rows):
        y = 200 + i * 36
        lines.append(OcrLine(label, (40, y, 140, y + 40), 0.99))
        lines.append(OcrLine(amount, (500, y - 12, 580, y + 28), 0.99))
    assert extract_receipt(lines).fields["total"] == 15.0


def test_name_skips_handwriting_and_stamps_and_joins_a_wrapped_name():
    rows = [
        [("3180303", 10), ("CHECKED", 200, 2.0)],
        "tan ah kow",  # handwritten note, all lower case
        "HOME MASTER HARDWARE &",
        "ELECTRICAL",
        "NO.113G, JALAN SETIA 1,",
        "40170 SHAH ALAM,",
        "SELANGOR.",
        "GST ID: 001637511168",
        [("Total", 40), ("15.90", 420)],
    ]
    f = extract_receipt(layout(rows)).fields
    assert f["merchant_name"] == "HOME MASTER HARDWARE & ELECTRICAL"
    assert f["merchant_address"] == "NO.113G, JALAN SETIA 1, 40170 SHAH ALAM, SELANGOR."


def test_company_suffix_on_the_next_line_joins_the_name():
    rows = [
        "POPULAR BOOK",
        "CO. (M) SDN BHD",
        "(Company No. 113825-W)",
        "No 8, Jalan 7/118B, Desa Tun Razak",
        "56000 Kuala Lumpur",
        "Tel: 03-41424540",
    ]
    f = extract_receipt(layout(rows)).fields
    assert f["merchant_name"] == "POPULAR BOOK CO. (M) SDN BHD"
    assert f["merchant_address"] == "No 8, Jalan 7/118B, Desa Tun Razak 56000 Kuala Lumpur"


def test_glued_header_words_are_split():
    rows = ["MAJUHARDWARESHOP", "NO. 3, JALAN BESAR, 45600 BATANG", [("TOTAL", 40), ("5.00", 420)]]
    assert extract_receipt(layout(rows)).fields["merchant_name"] == "MAJU HARDWARE SHOP"


@pytest.mark.parametrize(
    "printed, iso",
    [
        ("Date: 25/12/2018", "2018-12-25"),
        ("DATE 22-05-16 10:02", "2016-05-22"),
        ("22-05-1610:02", "2016-05-22"),  # two-digit year glued to the time
        ("30 DEC 17", "2017-12-30"),
        ("12 Mar 2018 18:19", "2018-03-12"),
        ("2018-12-25", "2018-12-25"),
        ("[Sales]2018-01-0522:55:25", "2018-01-05"),
        ("Date :01-06-201818:21:09", "2018-06-01"),
        ("DATE: 12/03/202510:15", "2025-03-12"),
        ("07.05.2018", "2018-05-07"),
        ("日期：2023年5月4日 19:32", "2023-05-04"),
        ("Dec 30, 2017", "2017-12-30"),
        ("12/25/2018", "2018-12-25"),  # only a month-first reading is a valid date
    ],
)
def test_date_formats(printed, iso):
    rows = ["KEDAI MAJU", printed, [("TOTAL", 40), ("5.00", 420)]]
    assert extract_receipt(layout(rows)).fields["transaction_date"] == iso


def test_labelled_date_beats_other_dates():
    rows = ["KEDAI MAJU", "Promo valid until 31/12/2019", [("Date:", 40), ("02/03/2018", 200)], [("TOTAL", 40), ("5.00", 420)]]
    assert extract_receipt(layout(rows)).fields["transaction_date"] == "2018-03-02"


def test_phone_numbers_are_not_dates():
    rows = ["RELAIS DU NORD", "Tel.:05.22.95.66.66", "Le 30/03/2018 a 12:36", [("TOTAL", 40), ("5.00", 420)]]
    assert extract_receipt(layout(rows)).fields["transaction_date"] == "2018-03-30"


def test_parse_date_helper():
    assert parse_date("22-05-16") == dt.date(2016, 5, 22)
    assert parse_date("31/02/2018") is None
    assert parse_date("no date here") is None


@pytest.mark.parametrize(
    "rows, default, expected",
    [
        ([[("TOTAL", 40), ("RM 9.90", 400)]], None, "MYR"),
        ([[("TOTAL", 40), ("9.90", 400)], "Amount (RM)"], None, "MYR"),
        ([[("合计", 40), ("¥58.00", 400)]], "MYR", "CNY"),
        ([[("合计", 40), ("58元", 400)]], None, "CNY"),
        ([[("TOTAL", 40), ("RMB 58.00", 400)]], None, "CNY"),
        ([[("TOTAL", 40), ("S$ 12.00", 400)]], "MYR", "SGD"),
        ([[("TOTAL", 40), ("$12.00", 400)]], None, "USD"),
        ([[("TOTAL", 40), ("$12.00", 400)]], "SGD", "SGD"),
        (["ANGKASA FOODS SDN BHD", [("TOTAL", 40), ("$12.00", 400)]], None, "MYR"),
        ([[("TOTAL", 40), ("€ 12,50", 400)]], None, "EUR"),
        ([[("TOTAL", 40), ("£12.50", 400)]], None, "GBP"),
        ([[("TOTAL", 40), ("12.50 EUR", 400)]], "MYR", "EUR"),
        ([[("TOTAL", 40), ("12.50", 400)]], "MYR", "MYR"),
        ([[("TOTAL", 40), ("12.50", 400)]], None, None),
    ],
)
def test_currency(rows, default, expected):
    ex = extract_receipt(layout(["SOME SHOP"] + rows), default_currency=default)
    if expected is None:
        assert "currency" not in ex.fields
    else:
        assert ex.fields["currency"] == expected


def test_european_decimal_comma_amount():
    ex = extract_receipt(layout(["CAFE DE LA GARE", [("TOTAL", 40), ("€ 12,50", 400)]]))
    assert ex.fields["total"] == 12.5


CHINESE = [
    "海底捞火锅(望京店)",
    "地址：北京市朝阳区望京街10号",
    "电话：010-64701234",
    "日期：2023年5月4日 19:32",
    [("品名", 40), ("数量", 250), ("金额", 420)],
    [("番茄锅底", 40), ("1", 250), ("38.00", 420)],
    [("青岛啤酒x2", 40), ("22.00", 420)],
    [("小计", 40), ("60.00", 420)],
    [("税额", 40), ("3.40", 420)],
    [("合计", 40), ("¥63.40", 400)],
    [("优惠", 40), ("-3.40", 420)],
    [("实付", 40), ("¥60.00", 400)],
    "谢谢惠顾",
]


def test_chinese_receipt():
    f = extract_receipt(layout(CHINESE), default_currency="MYR").fields
    assert f["merchant_name"] == "海底捞火锅(望京店)"
    assert f["merchant_address"] == "北京市朝阳区望京街10号"
    assert f["transaction_date"] == "2023-05-04"
    assert f["total"] == 60.0  # 实付 (paid after the discount) beats 合计
    assert f["subtotal"] == 60.0
    assert f["tax"] == 3.4
    assert f["currency"] == "CNY"
    assert f["items"][0] == {"description": "番茄锅底", "amount": 38.0, "quantity": 1.0}
    assert f["items"][1] == {"description": "青岛啤酒x2", "amount": 22.0, "quantity": 2.0}


def test_chinese_total_only_heji():
    rows = ["便利店", "日期：2024年3月5日", [("合计：", 40), ("128.00", 300)]]
    f = extract_receipt(layout(rows), default_currency="CNY").fields
    assert f["total"] == 128.0 and f["transaction_date"] == "2024-03-05" and f["currency"] == "CNY"


def test_missing_fields_are_absent():
    ex = extract_receipt(layout(["KEDAI MAJU SDN BHD", "THANK YOU"]))
    assert set(ex.fields) == {"merchant_name"}
    assert set(ex.confidence) == {"merchant_name"} and set(ex.evidence) == {"merchant_name"}
    assert all(v not in (None, "", []) for v in ex.fields.values())


def test_no_lines_gives_no_fields():
    for lines in ([], None):
        ex = extract_receipt(lines, default_currency="MYR")
        assert ex.fields == {} and ex.confidence == {} and ex.evidence == {}


def test_subtotal_and_quantity_lines_are_not_the_total():
    rows = [
        "KEDAI MAJU",
        [("Total Qty", 40), ("3.00", 420)],
        [("Sub-Total", 40), ("50.00", 420)],
        [("Total Discount", 40), ("5.00", 420)],
        [("Total", 40), ("45.00", 420)],
        [("Total Tax", 40), ("2.55", 420)],
    ]
    f = extract_receipt(layout(rows)).fields
    assert f["total"] == 45.0 and f["subtotal"] == 50.0 and f["tax"] == 2.55


def test_gst_summary_total_is_not_the_receipt_total():
    rows = [
        "KEDAI MAJU",
        [("TOTAL", 40), ("18.00", 420)],
        "GST SUMMARY",
        [("TOTAL:", 40), ("16.98", 300), ("1.02", 420)],
    ]
    assert extract_receipt(layout(rows)).fields["total"] == 18.0


def test_stray_ocr_accents_are_folded_in_an_ascii_document():
    rows = ["Gerbang Alaf Restäurants Sdn Bhd", "Level 6, Jalan SS21/39, 47400 Petaling Jaya"] + [
        f"ITEM NUMBER {i} SOMETHING" for i in range(8)
    ] + [[("TOTAL", 40), ("5.00", 420)]]
    assert extract_receipt(layout(rows)).fields["merchant_name"] == "Gerbang Alaf Restaurants Sdn Bhd"


def test_accents_kept_in_a_language_that_uses_them():
    rows = ["Café Crème Évian", "12 rue de l'Église, 75001 Paris", "Thé glacé", "Crêpe sucrée",
            [("TOTAL", 40), ("5,00 €", 420)]]
    assert extract_receipt(layout(rows)).fields["merchant_name"] == "Café Crème Évian"


def test_find_amounts():
    vals = lambda s: [a.value for a in find_amounts(s)]  # noqa: E731
    assert vals("RM 1,234.50") == [1234.5]
    assert vals("13,00") == [13.0]
    assert vals("-RM0.02") == [-0.02]
    assert vals(".00") == [0.0]
    assert vals("58元") == [58.0]
    assert vals("¥58") == [58.0]
    assert vals("15.50SR") == [15.5]
    assert vals("Date 30.03.2018") == []  # a date, not 30.03
    assert vals("Qty 3") == []  # a bare integer is not money
    assert vals("GST @6%: $0.46") == [0.46]


# --------------------------------------------------------------------------------------------
# Address and name: OCR slips the printed text does not have, and the extent of the blocks


def _address_of(rows: list) -> str:
    return extract_receipt(layout(rows), default_currency="MYR").fields["merchant_address"]


def test_postcode_glued_to_the_town_is_split():
    rows = ["RESTAURANT MAJU", "13, JLN TASIK UTAMA 8", "MEDAN NIAGA DAMAI", "57000KL", "TEL: 03-1234 5678"]
    assert _address_of(rows) == "13, JLN TASIK UTAMA 8 MEDAN NIAGA DAMAI 57000 KL"


def test_street_abbreviation_glued_to_its_name_is_split():
    rows = ["KEDAI MAJU S/B", "LOT 5, JALAN ANGSA,", "1558-TMNPUSAT KEPONG", "GST ID: 000123456789"]
    assert _address_of(rows) == "LOT 5, JALAN ANGSA, 1558-TMN PUSAT KEPONG"


def test_words_glued_in_mixed_case_type_are_split_but_names_are_not():
    rows = ["Kedai Maju Sdn Bhd", "No. 1 Jalan Euro 1", "Sungai Buloh Seksyen U3Shah Alam", "Tel: 03-1234 5678"]
    assert _address_of(rows) == "No. 1 Jalan Euro 1 Sungai Buloh Seksyen U3 Shah Alam"
    rows = ["Kedai Maju Sdn Bhd", "Lot 2, McDonald's Building,", "47400 Petaling Jaya", "Tel: 03-1234 5678"]
    assert _address_of(rows) == "Lot 2, McDonald's Building, 47400 Petaling Jaya"


def test_house_number_glued_to_no_is_split():
    rows = ["SYARIKAT MAJU", "NO290, JALAN AIR PANAS,", "53200 KUALA LUMPUR.", "TEL:03-40210276"]
    assert _address_of(rows) == "NO 290, JALAN AIR PANAS, 53200 KUALA LUMPUR."


def test_street_abbreviations_read_with_i_for_l_are_fixed():
    rows = ["KEDAI MAJU SDN BHD", "No: G3, BIk G, JIn PJU 1A/3, Jalan Bin Ali,", "47301 Petaling Jaya", "Tel: 03-1234 5678"]
    assert _address_of(rows) == "No: G3, Blk G, Jln PJU 1A/3, Jalan Bin Ali, 47301 Petaling Jaya"


def test_full_stop_after_a_number_in_an_address_is_a_comma():
    rows = ["KEDAI MAJU SDN BHD", "NO.32 & 33. JALAN SR 1/9, SEKSYEN 9. TAMAN RAYA,", "8, JALAN JASA 3. 40150 SHAH ALAM", "TEL: 03-1234 5678"]
    assert _address_of(rows) == "NO.32 & 33, JALAN SR 1/9, SEKSYEN 9, TAMAN RAYA, 8, JALAN JASA 3, 40150 SHAH ALAM"


def test_address_without_commas_had_them_read_as_full_stops():
    rows = ["KEDAI MAJU SDN BHD", "NO.32 & 33. JALAN SR 1/9. SEKSYEN 9.", "TAMAN SERDANG RAYA.", "43300 SERI KEMBANGAN. SELANGOR", "GST ID : 002139201536"]
    assert _address_of(rows) == "NO.32 & 33, JALAN SR 1/9, SEKSYEN 9, TAMAN SERDANG RAYA, 43300 SERI KEMBANGAN, SELANGOR"
    # an address that does print commas keeps a full stop it prints after a word
    rows = ["ABC TRADING", "NO.2&4, JALAN HARMONI 3/2,", "TAMAN DESA HARMONI.", "81100 JOHOR BAHRU. JOHOR", "07-355 2616"]
    assert _address_of(rows) == "NO.2&4, JALAN HARMONI 3/2, TAMAN DESA HARMONI. 81100 JOHOR BAHRU. JOHOR"


def test_sdn_bhd_abbreviation_read_as_digits_is_fixed():
    rows = ["99 SPEED MART 5/8 (519537-X)", "LOT P.T. 2811, JALAN ANGSA,", "41150 KLANG, SELANGOR", "GST ID. NO: 000181747712"]
    assert extract_receipt(layout(rows)).fields["merchant_name"] == "99 SPEED MART S/B"


def test_name_wrapped_over_three_rows_of_the_same_type_ends_at_its_suffix():
    rows = ["AIK HUAT HARDWARE", "ENTERPRISE (SETIA", "ALAM) SDN BHD", "822737-X", "NO. 17-G, JALAN SETIA INDAH",
            "40170 SHAH ALAM", "TEL: 012-6651783"]
    f = extract_receipt(layout(rows)).fields
    assert f["merchant_name"] == "AIK HUAT HARDWARE ENTERPRISE (SETIA ALAM) SDN BHD"
    assert f["merchant_address"] == "NO. 17-G, JALAN SETIA INDAH 40170 SHAH ALAM"
    # without a suffix row below, a second row of the same type is not joined
    rows = ["MAJU HARDWARE", "QUALITY TOOLS", "NO 12, JALAN 3,", "43000 KAJANG", "TEL 012-3456789"]
    assert extract_receipt(layout(rows)).fields["merchant_name"] == "MAJU HARDWARE"


def test_tagline_above_a_numbered_address_is_not_part_of_it():
    rows = ["MAJU HARDWARE", "MACHINERY & TOOLS", "NO 12, JALAN 3,", "43000 KAJANG", "TEL 012-3456789"]
    assert _address_of(rows) == "NO 12, JALAN 3, 43000 KAJANG"
    # a building's name above the house number is part of the address
    rows = ["MAJU HARDWARE", "WISMA MAJU", "NO 12, JALAN 3,", "43000 KAJANG", "TEL 012-3456789"]
    assert _address_of(rows) == "WISMA MAJU NO 12, JALAN 3, 43000 KAJANG"
    # and an address that does not start with its number keeps the line below the name
    rows = ["CAFE MAJU", "Car Park Office", "Basement 1, Lebuhraya Sprint,", "47400 Petaling Jaya", "Tel: 03-1234 5678"]
    assert _address_of(rows) == "Car Park Office Basement 1, Lebuhraya Sprint, 47400 Petaling Jaya"


def test_total_is_surer_when_other_amounts_add_up_to_it():
    """Arithmetic is independent evidence: a total that subtotal + tax reproduce is more likely
    read right than the same total alone; one they contradict gains nothing."""
    head = ["SHOP SDN BHD", [("Date:", 40), ("25/12/2018", 200)]]
    alone = extract_receipt(layout(head + [[("TOTAL", 40), ("106.00", 420)]], score=0.9))
    agreeing = extract_receipt(layout(head + [[("SUBTOTAL", 40), ("100.00", 420)], [("TAX 6%", 40), ("6.00", 420)],
                                              [("TOTAL", 40), ("106.00", 420)]], score=0.9))
    contradicting = extract_receipt(layout(head + [[("SUBTOTAL", 40), ("100.00", 420)],
                                                   [("TAX 6%", 40), ("6.00", 420)],
                                                   [("TOTAL", 40), ("160.00", 420)]], score=0.9))
    assert agreeing.fields["total"] == alone.fields["total"] == 106.0
    assert agreeing.confidence["total"] > alone.confidence["total"]
    assert contradicting.confidence["total"] <= alone.confidence["total"]


def test_one_item_at_the_total_price_corroborates_it():
    head = ["SHOP SDN BHD", [("Date:", 40), ("25/12/2018", 200)]]
    alone = extract_receipt(layout(head + [[("TOTAL", 40), ("45.00", 420)]], score=0.95))
    twice = extract_receipt(layout(head + [[("NASI LEMAK SET", 40), ("45.00", 420)], [("TOTAL", 40), ("45.00", 420)]],
                                   score=0.95))
    assert twice.fields["total"] == 45.0 and twice.fields["items"][0]["amount"] == 45.0
    assert twice.confidence["total"] > alone.confidence["total"]
