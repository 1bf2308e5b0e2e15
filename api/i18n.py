"""The language of each request (Flask-Babel over docket/i18n.py's catalogs).

Chosen, first match wins: the signed-in dashboard user's choice (the language switch, or a page
opened with ``?lang=``: kept in the session and on the key), ``?lang=`` on an API call,
``Accept-Language`` (``zh-Hans``, ``zh-CN``, ``zh`` -> 简体中文), the tenant's default
(``tenants.default_locale``), else English. Every answer says which in ``Content-Language``.
Templates format dates, numbers and money for it with Flask-Babel's filters (``format_date``,
``format_decimal``, ``format_currency``; see :func:`money`).
"""
from __future__ import annotations

import json
import re
import time
from functools import lru_cache
from pathlib import Path

from flask import Flask, g, request, session
from flask_babel import Babel, get_locale

from docket import i18n
from docket.i18n import N_
from docket.reasons import localize_all

STATIC_DIR = Path(__file__).with_name("static") / "dashboard"
#: The query parameter that picks a language (``?lang=zh-Hans``).
LANG_PARAM = "lang"
_TENANT_DEFAULTS: dict[str, tuple[float, str | None]] = {}
_TENANT_TTL = 60.0


def _tenant_default(tenant_id: str) -> str | None:
    """The tenant's default language, cached for a minute per process."""
    hit = _TENANT_DEFAULTS.get(tenant_id)
    now = time.monotonic()
    if hit and now - hit[0] < _TENANT_TTL:
        return hit[1]
    from api import context
    from db.models import Tenant

    try:
        tenant = context.db().get(Tenant, tenant_id)
        value = getattr(tenant, "default_locale", None) if tenant is not None else None
    except Exception:  # an unavailable database is answered elsewhere; the language is not worth a 500
        return None
    _TENANT_DEFAULTS[tenant_id] = (now, value)
    return value


def select_locale() -> str:
    if "docket_locale" in g:
        return g.docket_locale
    chosen = None
    if request.path.startswith("/dashboard"):
        # The dashboard user's choice: ?lang= on any page sets it for the session.
        asked = i18n.normalize(request.args.get(LANG_PARAM))
        if asked:
            if session.get("lang") != asked:
                session["lang"] = asked
                _remember_on_key(asked)
            chosen = asked
        else:
            chosen = i18n.normalize(session.get("lang"))  # set at sign-in from the key's last choice
    if chosen is None:
        chosen = i18n.normalize(request.args.get(LANG_PARAM))
    if chosen is None:
        chosen = i18n.from_accept_language(request.headers.get("Accept-Language"))
    if chosen is None:
        principal = g.get("principal")
        if principal is not None:
            chosen = i18n.normalize(_tenant_default(principal.tenant_id))
    g.docket_locale = chosen or i18n.DEFAULT
    return g.docket_locale


def _remember_on_key(locale: str) -> None:
    """The dashboard's language switch is kept on the signed-in key too: the same person's other
    browsers (and next sign-in) open in it. Written only when nothing else is pending."""
    if not session.get("sid"):
        return
    from api import context
    from api.dashboard.session import current
    from db.models import ApiKey

    who = current()
    db = context.db()
    if who is None or not who.key_id or db.new or db.dirty or db.deleted:
        return
    key = db.get(ApiKey, who.key_id)
    if key is not None and key.locale != locale:
        key.locale = locale
        db.commit()


def _job_error(job) -> str | None:
    from docket.representation import error_message

    return error_message(job)


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", i18n.DEFAULT)
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(i18n.TRANSLATIONS_DIR)
    Babel(app, locale_selector=select_locale)

    @app.before_request
    def _core_locale():
        # Text built below Flask (problem details, reasons) asks docket.i18n.current(): chosen
        # lazily, on first use, so a request that shows no words costs no look-up.
        i18n.set_current_lazy(select_locale)

    @app.after_request
    def _content_language(response):
        if "Content-Language" not in response.headers:
            try:
                response.headers["Content-Language"] = i18n.tag(select_locale())
            except Exception:  # outside a request's usual life (e.g. the database just went away)
                response.headers["Content-Language"] = i18n.tag(i18n.DEFAULT)
        vary = response.headers.get("Vary", "")
        if "accept-language" not in vary.lower():
            response.headers["Vary"] = f"{vary}, Accept-Language" if vary else "Accept-Language"
        return response

    @app.teardown_request
    def _forget_locale(_exc=None):
        i18n.set_current(i18n.DEFAULT)

    app.jinja_env.globals.update(
        current_locale=lambda: str(get_locale() or i18n.DEFAULT),
        html_lang=lambda: i18n.tag(str(get_locale() or i18n.DEFAULT)),
        locales=[(code, i18n.tag(code), NATIVE_NAMES[code]) for code in i18n.LOCALES],
        lang_url=lang_url,
    )
    app.jinja_env.filters["money"] = money
    app.jinja_env.filters["localized_reasons"] = localize_all
    app.jinja_env.globals["label"] = i18n.label
    app.jinja_env.filters["label"] = i18n.label
    app.jinja_env.globals["js_strings"] = js_strings
    app.jinja_env.globals["job_error"] = _job_error


def lang_url(locale: str) -> str:
    """This page in another language (the switch's links): the same path and query, ``lang`` replaced."""
    from urllib.parse import urlencode

    args = [(k, v) for k, v in request.args.items(multi=True) if k != LANG_PARAM]
    args.append((LANG_PARAM, i18n.tag(locale)))
    return f"{request.path}?{urlencode(args)}"


_JS_CALL = re.compile(r"""\bt\(\s*"((?:[^"\\]|\\.)*)"\s*[,)]""")


@lru_cache(maxsize=1)
def js_messages() -> tuple[str, ...]:
    """The strings the dashboard's scripts show, as written in them: ``t("…")`` calls."""
    out = []
    for path in sorted(STATIC_DIR.glob("*.js")):
        for match in _JS_CALL.finditer(path.read_text(encoding="utf-8")):
            text = json.loads(f'"{match.group(1)}"')
            if text not in out:
                out.append(text)
    return tuple(out)


def js_strings() -> dict:
    """English -> the request's language for every script string (dashboard/base.html puts it in
    the page as JSON; the scripts' t() reads it). Empty in English."""
    locale = str(get_locale() or i18n.DEFAULT)
    if locale == i18n.DEFAULT:
        return {}
    catalog = i18n.translations(locale)
    out = {text: catalog.gettext(text) for text in js_messages()}
    out.update({value: i18n.label(value) for value in i18n.LABELS})  # decisions, statuses, stages
    return out


#: Each language's name in itself, for the switch.
NATIVE_NAMES = {"en": "English", "zh_Hans": "简体中文"}


def money(amount, currency: str | None = None) -> str:
    """``¥1,234.50`` / ``MYR 1,234.50`` for the request's locale; a missing amount stays empty."""
    from babel.numbers import format_currency, format_decimal

    if amount is None or amount == "":
        return ""
    locale = str(get_locale() or i18n.DEFAULT)
    try:
        if currency:
            return format_currency(amount, currency, locale=locale)
        return format_decimal(amount, format="#,##0.00", locale=locale)
    except (ValueError, TypeError, ArithmeticError):
        return str(amount)
