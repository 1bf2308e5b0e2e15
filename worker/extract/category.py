"""Which kind of expense a document is — "is this receipt a travel expense?" — from its kind,
its merchant and its items. Chinese VAT invoices name each item's tax category between
asterisks (*餐饮服务*餐费, *住宿服务*住宿费, *运输服务*客运服务费), which says it exactly."""
from __future__ import annotations

import re
from typing import Any

CATEGORIES = ("travel", "meals", "lodging", "transport", "office", "other")

# Checked in this order; the first that matches wins. Patterns are words, not merchants.
_PATTERNS: list[tuple[str, re.Pattern]] = [
    ("lodging", re.compile(r"住宿|酒店|宾馆|賓館|旅馆|旅館|客栈|民宿|hotel|motel|\binn\b|lodging|hostel|resort"
                           r"|accommodation|übernachtung|hébergement", re.I)),
    ("travel", re.compile(r"机票|機票|航空|航班|火车票|铁路|鐵路|高铁|动车|旅客运输|代订|携程|去哪儿|"
                          r"airline|airways|\bflight|air ?ticket|boarding|railway|\brail\b|bahn|sncf|travel agen", re.I)),
    ("transport", re.compile(r"运输服务|客运|出租|打车|网约车|滴滴|快车|专车|通行费|过路|停车|加油|汽油|柴油|"
                             r"地铁|公交|租车|经营租赁|\btaxi|\bcab\b|\buber\b|\bgrab\b|lyft|parking|\btoll|petrol|"
                             r"gasoline|\bfuel|diesel|metro|subway|\bbus\b|car rental|tankstelle|parken", re.I)),
    ("meals", re.compile(r"餐饮|餐费|餐廳|餐厅|饭店|酒楼|酒家|食品|小吃|咖啡|茶餐|外卖|美团|饿了么|"
                         r"restaurant|restoran|caf[eé]|coffee|kopitiam|bistro|diner|eatery|canteen|food|bakery|"
                         r"\bmeals?\b|lunch|dinner|breakfast|catering|pizza|burger|bewirtung", re.I)),
    ("office", re.compile(r"办公|辦公|文具|纸张|打印|复印|耗材|电脑|计算机|软件|书籍|图书|stationery|office|"
                          r"\bpaper\b|printer|toner|\bink\b|software|computer|notebook|\bpens?\b|books?\b|"
                          r"bürobedarf|papeterie", re.I)),
]


def categorize(fields: dict[str, Any]) -> str:
    """One of CATEGORIES for the extracted fields (never fails: `other` when nothing says)."""
    if fields.get("document_kind") == "train_ticket" or fields.get("travel"):
        return "travel"
    items = [str(i.get("description", "")) for i in fields.get("items") or [] if isinstance(i, dict)]
    # Tax categories first (*住宿服务*…), then every item, then the merchant's name.
    tax_categories = " ".join(m for d in items for m in re.findall(r"\*([^*]{1,20})\*", d))
    for text in (tax_categories, " ".join(items), str(fields.get("merchant_name") or "")):
        if not text.strip():
            continue
        for category, pattern in _PATTERNS:
            if pattern.search(text):
                return category
    return "other"
