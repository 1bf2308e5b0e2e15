"""Plain view models for the dashboard's pages (no Flask here): what a template shows."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from db.models import Job
from db.queries import as_utc
from docket import i18n
from docket.i18n import N_
from docket.representation import current_fields
from docket.rules import Rule

SCALAR_TYPES = {"string", "number", "integer"}


@dataclass
class FieldRow:
    name: str
    value: Any
    shown: str
    kind: str  # "string" | "number" | "integer" | "json": how the correction input parses it
    confidence: float | None
    boxes: list[list[float]] = field(default_factory=list)  # [x0, y0, x1, y1, page]
    corrected: bool = False
    source: str | None = None  # embedded_xml, qr, text_layer, ocr, model; "review" when a person set it

    @property
    def multiline(self) -> bool:
        return self.kind == "json" or "\n" in self.shown or len(self.shown) > 80


# What each field source means, for the dashboard's tooltips (translated where shown).
SOURCE_TITLES = {
    "embedded_xml": N_("read from the e-invoice's own data (exact)"),
    "qr": N_("read from the invoice's QR code"),
    "text_layer": N_("read from the PDF's text"),
    "ocr": N_("read from the page image (OCR)"),
    "model": N_("read by the vision-language model"),
    "review": N_("set by a reviewer"),
}
# The sources' short names, as the page shows them (English: the value itself).
SOURCE_NAMES = (N_("embedded_xml"), N_("qr"), N_("text_layer"), N_("ocr"), N_("model"), N_("review"))


def _shown(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def field_rows(job: Job, rule: Rule | None) -> list[FieldRow]:
    """Every field the rule declares (in its order), then any extra the analyzer returned."""
    decision = job.decision
    fields = current_fields(job)
    original = decision.fields if decision else {}
    properties = (rule.fields_schema.get("properties", {}) if rule else {}) or {}
    names = list(properties) + [n for n in fields if n not in properties]
    rows = []
    for name in names:
        schema_type = properties.get(name, {}).get("type")
        value = fields.get(name)
        if schema_type in SCALAR_TYPES:
            kind = schema_type
        elif schema_type is None and isinstance(value, (str, int, float)) and not isinstance(value, bool):
            kind = "number" if isinstance(value, (int, float)) else "string"
        else:
            kind = "json"
        rows.append(FieldRow(
            name=name, value=value, shown=_shown(value), kind=kind,
            confidence=(decision.confidence or {}).get(name) if decision else None,
            boxes=[list(b) for b in ((decision.evidence or {}).get(name) or [])] if decision else [],
            corrected=original.get(name) != value,
            source=("review" if original.get(name) != value and value is not None
                    else (decision.sources or {}).get(name) if decision and name in fields else None),
        ))
    return rows


def parse_corrections(form, rows: list[FieldRow]) -> dict[str, Any] | str:
    """Form inputs `field:NAME` → corrections for the fields that changed, or an error message."""
    corrections: dict[str, Any] = {}
    for row in rows:
        raw = form.get(f"field:{row.name}")
        if raw is None:
            continue
        raw = raw.replace("\r\n", "\n").strip()  # browsers send textarea lines as CRLF
        if raw == row.shown.strip():
            continue
        if raw == "":
            corrections[row.name] = None  # cleared: remove the field
            continue
        try:
            if row.kind == "number":
                corrections[row.name] = float(raw)
            elif row.kind == "integer":
                corrections[row.name] = int(raw)
            elif row.kind == "json":
                corrections[row.name] = json.loads(raw)
            else:
                corrections[row.name] = raw
        except ValueError:
            return i18n.gettext("%(field)s: '%(value)s' is not a valid %(kind)s value.", field=row.name, value=raw[:60],
                                kind=row.kind)
    return corrections


@dataclass
class TrailEntry:
    at: datetime | None
    what: str
    who: str = ""
    detail: str = ""
    changes: list[tuple[str, str, str]] = field(default_factory=list)  # (field, before, after)
    policy: dict | None = None  # the checks on corrected fields


def trail(job: Job) -> list[TrailEntry]:
    """The job's history, oldest first: submitted, picked up, decided, then every review (in the
    request's language: docket.i18n)."""
    _ = i18n.gettext

    label = i18n.value_word  # English keeps the values themselves (needs_review), as it always showed them
    entries = [TrailEntry(as_utc(job.created_at), _("submitted"), detail=job.filename or "")]
    if job.cached_from:
        entries.append(TrailEntry(as_utc(job.finished_at), _("decision reused"),
                                  detail=_("identical to job %(job)s", job=job.cached_from)))
    elif job.started_at:
        entries.append(TrailEntry(as_utc(job.started_at), _("analysis started"),
                                  detail=_("attempt %(n)s", n=job.attempts)))
    if job.status == "failed":
        entries.append(TrailEntry(as_utc(job.finished_at), label("failed"), detail=f"{job.error_code}: {job.error_message}"))
    previous = None
    for decision in reversed(job.decisions):  # oldest first
        if decision.kind == "redecision":
            what = (_("re-decided: %(before)s → %(after)s", before=label(previous), after=label(decision.decision))
                    if previous and previous != decision.decision
                    else _("re-decided: %(decision)s (unchanged)", decision=label(decision.decision)))
            entries.append(TrailEntry(as_utc(decision.created_at), what, who=decision.created_by or "",
                                      detail=_("policy %(name)s %(version)s", name=decision.rule_name,
                                               version=decision.rule_version[:19])))
        else:
            what = (_("decided: %(decision)s", decision=label(decision.decision)) if previous is None
                    else _("re-analysed: %(decision)s", decision=label(decision.decision)))
            entries.append(TrailEntry(as_utc(decision.created_at), what,
                                      who=decision.analyzer + (f" · {decision.model}" if decision.model else ""),
                                      detail="" if previous is None else
                                      _("policy %(name)s %(version)s", name=decision.rule_name,
                                        version=decision.rule_version[:19])))
        previous = decision.decision
    for review in job.reviews:
        changes = [(name, _shown(review.fields_before.get(name)), _shown(review.fields_after.get(name)))
                   for name in review.changed_fields]
        entries.append(TrailEntry(as_utc(review.created_at),
                                  _("reviewed: %(before)s → %(after)s", before=label(review.decision_before),
                                    after=label(review.decision_after)),
                                  who=review.reviewer, detail=review.comment, changes=changes,
                                  policy=review.policy_after))
    # Re-decisions can come after reviews: in time order (stable, so same-instant entries keep theirs).
    entries.sort(key=lambda e: e.at or datetime.max.replace(tzinfo=timezone.utc))
    return entries


@dataclass
class Bar:
    x: float
    y: float
    height: float
    decision: str
    count: int
    day: str


def day_bars(per_day: list[dict], since: date, until: date, *, width: float = 720, height: float = 180) -> dict:
    """Stacked bars (one per UTC day, all rules together) as SVG geometry."""
    totals: dict[str, dict[str, int]] = {}
    for entry in per_day:
        day = totals.setdefault(entry["day"], {"approve": 0, "needs_review": 0, "reject": 0})
        for decision in day:
            day[decision] += entry.get(decision, 0)
    days = []
    d = since
    while d <= until:
        days.append(d.isoformat())
        d += timedelta(days=1)
    peak = max([sum(v.values()) for v in totals.values()] + [1])
    step = width / max(len(days), 1)
    bars = []
    for i, day in enumerate(days):
        y = height
        for decision in ("approve", "needs_review", "reject"):
            n = totals.get(day, {}).get(decision, 0)
            if not n:
                continue
            h = n / peak * (height - 10)
            y -= h
            bars.append(Bar(x=round(i * step + 1, 2), y=round(y, 2), height=round(h, 2), decision=decision, count=n, day=day))
    labels = [(round(i * step + step / 2, 2), day[5:]) for i, day in enumerate(days) if i % max(1, len(days) // 8) == 0]
    return {"bars": bars, "bar_width": round(max(step - 2, 1), 2), "width": width, "height": height, "peak": peak,
            "labels": labels}


def rule_totals(per_day: list[dict]) -> list[dict]:
    rules: dict[str, dict[str, int]] = {}
    for entry in per_day:
        r = rules.setdefault(entry["rule"], {"approve": 0, "needs_review": 0, "reject": 0, "total": 0})
        for key in r:
            r[key] += entry.get(key, 0)
    peak = max([r["total"] for r in rules.values()] + [1])
    return [{"rule": name, **counts, "share": {k: counts[k] / peak * 100 for k in ("approve", "needs_review", "reject")}}
            for name, counts in sorted(rules.items())]


WHEN = {"now": N_("now"), "simulated": N_("simulated")}


def simulation_chart(result: dict, *, width: float = 640, bar: float = 26, gap: float = 10) -> dict:
    """Jobs per decision now (each job's newest decision) and under the simulated version, as
    pairs of horizontal SVG bars, plus one bar per transition."""
    transitions = result.get("transitions") or {}
    unchanged = result.get("unchanged") or {}
    before = {d: unchanged.get(d, 0) for d in ("approve", "needs_review", "reject")}
    after = dict(before)
    for key, n in transitions.items():
        source, _, target = key.partition("→")
        before[source] = before.get(source, 0) + n
        after[target] = after.get(target, 0) + n
    peak = max(list(before.values()) + list(after.values()) + list(transitions.values()) + [1])
    label, scale = 150.0, (width - 150.0 - 50) / peak
    rows, y = [], 0.0
    for decision in ("approve", "needs_review", "reject"):
        for when, counts in (("now", before), ("simulated", after)):
            n = counts.get(decision, 0)
            rows.append({"y": y, "w": round(n * scale, 2), "n": n, "cls": decision, "when": when,
                         "label": f"{i18n.label(decision)} · {i18n.gettext(WHEN[when])}"})
            y += bar
        y += gap
    moves = []
    for key, n in sorted(transitions.items(), key=lambda kv: -kv[1]):
        source, _, target = key.partition("→")
        moves.append({"y": y, "w": round(n * scale, 2), "n": n, "cls": target, "label": f"{i18n.label(source)} → {i18n.label(target)}",
                      "key": key})
        y += bar
    return {"rows": rows, "moves": moves, "height": y + 4, "width": width, "label_width": label, "bar": bar - 6}
