"""Languages: English (``en``, the source language) and Simplified Chinese (``zh_Hans``).

One set of gettext catalogs (``docket/translations/<locale>/LC_MESSAGES/messages.po|.mo``,
made and updated by ``scripts/i18n.sh``) serves the dashboard and API (through Flask-Babel, see
api/i18n.py), the CLI, the worker and webhooks (through :func:`translations` here, no Flask).

The locale in force is a context variable: the API sets it per request, a webhook delivery to
its subscription's language, the CLI from ``--lang`` or the environment. Code that builds text
for people (problem details, reasons) asks :func:`current` — never a global setting.
"""
from __future__ import annotations

import contextlib
import contextvars
import os
from functools import lru_cache
from pathlib import Path
from typing import Iterable

from babel import Locale, UnknownLocaleError
from babel.support import NullTranslations, Translations

DEFAULT = "en"
#: Babel's names of the locales Docket ships, and the language tags people write for them.
LOCALES = ("en", "zh_Hans")
TAGS = {"en": "en", "zh_Hans": "zh-Hans"}
TRANSLATIONS_DIR = Path(__file__).with_name("translations")
DOMAIN = "messages"

_current: contextvars.ContextVar = contextvars.ContextVar("docket_locale", default=DEFAULT)


def normalize(tag: str | None) -> str | None:
    """A language tag or POSIX locale (``zh-Hans``, ``zh-CN``, ``zh_CN.UTF-8``, ``zh``, ``en-GB``)
    -> one of :data:`LOCALES`, or None when it names none of them. Traditional Chinese
    (zh-Hant, zh-TW, zh-HK) is not Simplified Chinese: None."""
    if not tag or not isinstance(tag, str):
        return None
    tag = tag.strip().split(".", 1)[0].split("@", 1)[0].replace("_", "-").lower()
    if len(tag) > 35 or not tag:
        return None
    parts = tag.split("-")
    if parts[0] == "en":
        return "en"
    if parts[0] == "zh":
        rest = set(parts[1:])
        if rest & {"hant", "tw", "hk", "mo"}:
            return None
        return "zh_Hans"
    if tag in ("c", "posix"):
        return "en"
    return None


def tag(locale: str) -> str:
    """The BCP 47 tag for ``Content-Language`` and ``<html lang>``: ``en`` or ``zh-Hans``."""
    return TAGS.get(locale, locale.replace("_", "-"))


def from_accept_language(header: str | None) -> str | None:
    """The best of :data:`LOCALES` for an ``Accept-Language`` header (q-values honoured), or None."""
    if not header:
        return None
    ranked = []
    for position, item in enumerate(header.split(",")[:50]):
        name, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            ranked.append((-quality, position, name.strip()))
    for _, _, name in sorted(ranked):
        found = normalize(name)
        if found:
            return found
    return None


def from_environment(environ: dict | None = None) -> str | None:
    """The locale of ``LC_ALL``, ``LC_MESSAGES``, ``LANG`` or ``LANGUAGE`` (POSIX order), or None."""
    environ = os.environ if environ is None else environ
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        if environ.get(name):
            return normalize(environ[name])
    for item in (environ.get("LANGUAGE") or "").split(":"):
        found = normalize(item)
        if found:
            return found
    return None


def choose(*candidates: str | None) -> str:
    """The first candidate that names a shipped locale, else English."""
    for candidate in candidates:
        found = normalize(candidate)
        if found:
            return found
    return DEFAULT


def current() -> str:
    value = _current.get()
    if callable(value):  # chosen lazily (a web request's language), once
        value = normalize(value()) or DEFAULT
        _current.set(value)
    return value


def set_current(locale: str | None) -> contextvars.Token:
    return _current.set(normalize(locale) or DEFAULT)


def set_current_lazy(choose_locale) -> contextvars.Token:
    """The locale is ``choose_locale()``, asked the first time someone needs it."""
    return _current.set(choose_locale)


@contextlib.contextmanager
def using(locale: str | None):
    """``with i18n.using("zh_Hans"): ...`` — text built inside is in that language."""
    token = set_current(locale)
    try:
        yield
    finally:
        _current.reset(token)


@lru_cache(maxsize=None)
def translations(locale: str) -> NullTranslations:
    """The compiled catalog of ``locale`` (English: the source strings themselves)."""
    if locale == DEFAULT:
        return NullTranslations()
    return Translations.load(str(TRANSLATIONS_DIR), [locale], DOMAIN)


def gettext(message: str, **variables) -> str:
    """``message`` in the current locale, with ``%(name)s`` variables filled in (Flask-Babel's style)."""
    text = translations(current()).gettext(message)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, n: int, **variables) -> str:
    variables.setdefault("num", n)
    return translations(current()).ngettext(singular, plural, n) % variables


def N_(message: str) -> str:
    """Marks a string for extraction; translated later, where it is shown."""
    return message


#: Values shown as words: decisions, job statuses, policy statuses, stages (the values never change;
#: their labels do). The dashboard's script gets the same labels (dashboard/base.html).
LABELS = {
    "approve": N_("approve"), "needs_review": N_("needs review"), "reject": N_("reject"), "pending": N_("pending"),
    "none": N_("pending"), "queued": N_("queued"), "running": N_("running"), "succeeded": N_("succeeded"),
    "failed": N_("failed"), "reading": N_("reading"), "checking": N_("checking"), "uploading": N_("uploading"),
    "rejected": N_("rejected"), "draft": N_("draft"), "active": N_("active"), "archived": N_("archived"),
    "builtin": N_("built-in"), "inactive": N_("inactive"), "added": N_("added"), "removed": N_("removed"),
    "changed": N_("changed"), "activate": N_("activate"), "rollback": N_("rollback"), "roll_back": N_("roll back"),
    "prompt": N_("prompt"), "fields": N_("fields schema"), "document_type": N_("document type"),
    "unknown version": N_("unknown version"), "unchanged": N_("unchanged"),
    # expense categories (fields.expense_category)
    "travel": N_("travel"), "meals": N_("meals"), "lodging": N_("lodging"), "transport": N_("transport"),
    "office": N_("office"), "other": N_("other"), "open": N_("open"), "decided": N_("decided"), "submitter": N_("submitter"), "reviewer": N_("reviewer"), "admin": N_("admin"),
}


def label(value) -> str:
    """A decision, status or stage as a word in the request's language (unknown values as they are)."""
    if value is None:
        value = "pending"
    text = LABELS.get(str(value))
    return gettext(text) if text else str(value).replace("_", " ")


def value_word(value) -> str:
    """A decision or status inside a sentence: the value itself in English (needs_review, as the
    English pages always showed it), its word in other languages."""
    return str(value) if current() == DEFAULT else label(value)


def babel_locale(locale: str | None = None) -> Locale:
    try:
        return Locale.parse(locale or current())
    except (UnknownLocaleError, ValueError):
        return Locale.parse(DEFAULT)


def pick(messages: dict | str | None, locale: str | None = None) -> str | None:
    """From a ``{locale tag: text}`` map (``en``, ``zh-Hans``, ``zh-CN``… as written in a rule file),
    the text for ``locale`` (default: the current one), else the English, else any; a plain
    string is itself."""
    if messages is None or isinstance(messages, str):
        return messages
    wanted = locale or current()
    fallback = None
    for key, text in messages.items():
        found = normalize(key)
        if found == wanted:
            return text
        if found == DEFAULT and fallback is None:
            fallback = text
    if fallback is not None:
        return fallback
    return next(iter(messages.values()), None)


def shipped(names: Iterable[str]) -> list[str]:
    return [n for n in names if normalize(n)]
