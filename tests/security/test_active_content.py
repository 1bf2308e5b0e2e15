"""Hostile tenants, item 4: no uploaded byte may run or navigate on Docket's origin.

A tenant uploads a document with active content (an XHTML e-invoice with a meta refresh and
script, SVG inside an e-invoice, HTML glued to a PNG, a PDF with /OpenAction JavaScript, an XML
with xml-stylesheet, HTML wearing a PDF header) and a reviewer opens its "original file" in the
dashboard. The original must download, never render; the pages are Docket's own PNGs.

The browser tests drive Debian's Chromium (Playwright) against the app served in-process
(werkzeug, threaded, SQLite, no worker: serving a document needs no analysis), and a receiver on
127.0.0.1 that records every request the hostile content might make."""
from __future__ import annotations

import dataclasses
import re
import threading
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import pytest
import requests
from werkzeug.serving import WSGIRequestHandler, make_server

from api import create_app
from db.models import Document, Job
from db.session import session_scope
from docket.config import Settings
from docket.tenants import create_key
from tests.documents import encode, receipt_image

CII = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
XHTML = "http://www.w3.org/1999/xhtml"
SVG = "http://www.w3.org/2000/svg"
# What a browser may run or render as a document of its own: never sent for an original.
ACTIVE_TYPES = ("text/html", "application/xhtml+xml", "image/svg+xml", "text/xml", "text/xsl",
                "application/xslt+xml", "text/javascript", "application/javascript", "text/plain")


# ---------------------------------------------------------------------------------------------
# Hostile documents. `hook` is the receiver's base URL: anything that reaches it ran or navigated.

def cii(body: str, prolog: str = "") -> bytes:
    """A CII e-invoice (accepted at intake: the root decides) carrying `body`."""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n{prolog}'
            f'<rsm:CrossIndustryInvoice xmlns:rsm="{CII}" xmlns:h="{XHTML}" xmlns:svg="{SVG}">'
            f'<rsm:ExchangedDocument><rsm:ID>INV-1</rsm:ID></rsm:ExchangedDocument>{body}'
            '</rsm:CrossIndustryInvoice>').encode()


def xhtml_invoice(hook: str) -> bytes:
    return cii(f'<h:meta http-equiv="refresh" content="0;url={hook}/meta-refresh"/>'
               f"<h:script>document.title='pwned';window.name='pwned';"
               f"fetch('{hook}/inline-script');location='{hook}/script-navigation'</h:script>"
               f'<h:img src="x" onerror="location=\'{hook}/onerror\'"/>')


def svg_invoice(hook: str) -> bytes:
    return cii(f'<svg:svg width="400" height="400" onload="window.name=\'pwned\';location=\'{hook}/svg-onload\'">'
               f'<svg:a href="{hook}/svg-link"><svg:rect width="400" height="400"/></svg:a>'
               f"<svg:script>location='{hook}/svg-script'</svg:script>"
               f'<svg:image href="{hook}/svg-image" width="10" height="10"/></svg:svg>')


def stylesheet_invoice(hook: str) -> bytes:
    return cii("<rsm:Note>styled</rsm:Note>",
               prolog=f'<?xml-stylesheet type="text/xsl" href="{hook}/stylesheet.xsl"?>\n'
                      f'<?xml-stylesheet type="text/css" href="{hook}/stylesheet.css"?>\n')


def html_page(hook: str) -> bytes:
    return (f"<html><head><meta http-equiv=\"refresh\" content=\"0;url={hook}/html-refresh\">"
            f"<script>window.name='pwned';location='{hook}/html-script'</script></head>"
            f"<body onload=\"location='{hook}/html-onload'\">pwned</body></html>").encode()


def png_with_html(hook: str) -> bytes:
    """A real PNG (accepted as image/png) with an HTML page after its end: a sniffing browser
    would render the page."""
    return encode(receipt_image(date(2026, 1, 5)), "PNG") + html_page(hook)


def pdf(extra_catalog: bytes = b"", objects: tuple[bytes, ...] = (), prefix: bytes = b"") -> bytes:
    """A one-page PDF with a correct xref; `objects` are numbered from 4."""
    content = b"BT /F1 24 Tf 72 700 Td (Invoice INV-1 total 10.00) Tj ET"
    body = [b"<< /Type /Catalog /Pages 2 0 R " + extra_catalog + b" >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R >>" % (4 + len(objects)),
            *objects,
            b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream"]
    out = bytearray(prefix + b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, obj in enumerate(body, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(body) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(body) + 1, xref)
    return bytes(out)


def pdf_open_action(hook: str) -> bytes:
    script = (f"app.alert('pwned'); this.submitForm('{hook}/pdf-submit'); "
              f"app.launchURL('{hook}/pdf-launch', true);").encode()
    return pdf(b"/OpenAction 4 0 R /Names << /JavaScript << /Names [(x) 4 0 R] >> >>",
               (b"<< /Type /Action /S /JavaScript /JS (" + script + b") >>",))


def html_as_pdf(hook: str) -> bytes:
    """HTML with a PDF header inside its first KiB (where PDF readers look for it): sniffed as
    a PDF, and a page in a browser that trusted the bytes over the type."""
    return pdf(prefix=html_page(hook) + b"<!--\n")


# ---------------------------------------------------------------------------------------------
# The app in-process, a receiver, keys.

class Receiver(ThreadingHTTPServer):
    """Records every request (path) made to it: active content that ran or navigated."""

    def __init__(self):
        self.hits: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(handler):  # noqa: N805
                self.hits.append(handler.path)
                handler.send_response(200)
                handler.send_header("Content-Type", "text/html")
                handler.end_headers()
                handler.wfile.write(b"<title>receiver</title>")

            do_POST = do_GET

            def log_message(handler, *args):  # noqa: N805
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


class Quiet(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):
        pass


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from db.migrate import upgrade

    data = tmp_path_factory.mktemp("active-content")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("DOCKET_DATABASE_URL", raising=False)
        mp.setenv("DOCKET_DATA_DIR", str(data))
        settings = dataclasses.replace(Settings.from_env(), login_rate_limit="1000/minute", event_stream_max_s=0.5)
    upgrade(settings.database_url)
    app = create_app(settings, broker_url="memory://")
    http = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Quiet)
    receiver = Receiver()
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (http, receiver)]
    for t in threads:
        t.start()
    with session_scope(settings.database_url) as s:
        submitter = create_key(s, "acme", "submitter")[1]
        reviewer = create_key(s, "acme", "reviewer")[1]
    yield dataclasses.make_dataclass("Stack", ["url", "settings", "app", "receiver", "submitter", "reviewer"])(
        f"http://127.0.0.1:{http.server_port}", settings, app, receiver, submitter, reviewer)
    http.shutdown()
    receiver.shutdown()


def upload(stack, data: bytes, filename: str, content_type: str = "application/octet-stream") -> requests.Response:
    return requests.post(f"{stack.url}/v1/jobs", files={"file": (filename, data, content_type)},
                         data={"rule": "expense_policy", "cache": "false"},
                         headers={"Authorization": f"Bearer {stack.submitter}"}, timeout=30)


def accepted(stack, data: bytes, filename: str, content_type: str = "application/octet-stream") -> str:
    resp = upload(stack, data, filename, content_type)
    assert resp.status_code == 202, resp.text
    return resp.json()["id"]


def bearer(stack) -> dict:
    return {"Authorization": f"Bearer {stack.reviewer}"}


# ---------------------------------------------------------------------------------------------
# In Chromium: a signed-in reviewer opens the original; nothing runs, nothing navigates.

def open_original(page, stack, job_id: str) -> None:
    """Sign in as the reviewer, open the job, click "original file": a download, and the job
    page stays where it is, untouched."""
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{stack.url}/dashboard")
    page.fill("input#key", stack.reviewer)
    page.click("form button[type=submit]")
    page.wait_for_url("**/dashboard/")
    job_url = f"{stack.url}/dashboard/jobs/{job_id}"
    page.goto(job_url)
    title = page.title()
    before = len(stack.receiver.hits)
    downloads = []
    page.on("download", lambda d: downloads.append(d))
    page.locator(f"a[href='/dashboard/jobs/{job_id}/document']").click()
    # Long enough for a 0-second refresh, an onload or a script to have fired.
    page.wait_for_timeout(500)
    assert stack.receiver.hits[before:] == []
    assert page.url == job_url and page.title() == title
    assert page.evaluate("window.name") == "" and dialogs == []
    if not downloads:
        downloads.append(page.wait_for_event("download", timeout=5_000))
    saved = Path(downloads[0].path())
    assert saved.read_bytes() == requests.get(f"{stack.url}/v1/jobs/{job_id}/document", headers=bearer(stack),
                                              timeout=10).content
    # What people look at instead: the pages as Docket rendered them, PNG images.
    first = page.locator(".pages img").first
    first.wait_for()
    assert page.evaluate("img => img.complete && img.naturalWidth > 0", first.element_handle())
    # Opened alone, a page is still shown (inline), under its own locked-down policy.
    assert page.goto(f"{stack.url}/dashboard/jobs/{job_id}/pages/1").headers["content-type"] == "image/png"
    assert page.evaluate("document.images.length === 1 && document.images[0].naturalWidth > 0")


def test_xhtml_einvoice_with_meta_refresh_and_script_downloads(page, stack):
    open_original(page, stack, accepted(stack, xhtml_invoice(stack.receiver.url), "invoice.xml", "application/xml"))


def test_svg_inside_an_einvoice_downloads(page, stack):
    open_original(page, stack, accepted(stack, svg_invoice(stack.receiver.url), "invoice.svg", "image/svg+xml"))


def test_xml_stylesheet_processing_instruction_is_never_applied(page, stack):
    open_original(page, stack, accepted(stack, stylesheet_invoice(stack.receiver.url), "styled.xml", "text/xml"))


def test_html_uploaded_as_an_image_downloads(page, stack):
    open_original(page, stack, accepted(stack, png_with_html(stack.receiver.url), "receipt.html", "text/html"))


def test_pdf_with_openaction_javascript_downloads(page, stack):
    open_original(page, stack, accepted(stack, pdf_open_action(stack.receiver.url), "invoice.pdf", "application/pdf"))


def test_html_with_a_pdf_header_downloads(page, stack):
    open_original(page, stack, accepted(stack, html_as_pdf(stack.receiver.url), "invoice.html", "text/html"))


def test_original_opened_by_address_downloads_too(page, stack):
    # Typed or linked from elsewhere (no `download` attribute to help): still a download.
    job_id = accepted(stack, xhtml_invoice(stack.receiver.url), "direct.xml", "application/xhtml+xml")
    page.goto(f"{stack.url}/dashboard")
    page.fill("input#key", stack.reviewer)
    page.click("form button[type=submit]")
    page.wait_for_url("**/dashboard/")
    before = len(stack.receiver.hits)
    with page.expect_download(timeout=5_000):
        with pytest.raises(Exception, match="Download is starting|ERR_ABORTED"):
            page.goto(f"{stack.url}/dashboard/jobs/{job_id}/document")
    page.wait_for_timeout(400)
    assert stack.receiver.hits[before:] == [] and page.evaluate("window.name") == ""


@pytest.mark.parametrize("make", [xhtml_invoice, svg_invoice, html_as_pdf], ids=["xhtml", "svg", "html-pdf"])
def test_sandbox_holds_where_attachment_is_ignored(page, stack, make):
    # A browser (or extension) that renders instead of downloading: the response's own policy
    # (sandbox, default-src 'none') must still stop the refresh, the scripts and the loads.
    job_id = accepted(stack, make(stack.receiver.url) + b"<!-- sandbox -->", "ignored.xml")
    page.goto(f"{stack.url}/dashboard")
    page.fill("input#key", stack.reviewer)
    page.click("form button[type=submit]")
    page.wait_for_url("**/dashboard/")

    def inline(route):
        resp = route.fetch()
        headers = {k: v for k, v in resp.headers.items() if k.lower() != "content-disposition"}
        route.fulfill(response=resp, headers=headers)

    url = f"{stack.url}/dashboard/jobs/{job_id}/document"
    page.route(url, inline)
    before = len(stack.receiver.hits)
    page.goto(url)
    page.wait_for_timeout(500)
    assert stack.receiver.hits[before:] == []
    assert page.url == url and page.title() != "pwned" and page.evaluate("window.name") == ""


# ---------------------------------------------------------------------------------------------
# HTTP level (fast): the headers of every original and page, what intake refuses.

HOSTILE = {
    "xhtml-invoice.xml": xhtml_invoice,
    "svg-invoice.xml": svg_invoice,
    "stylesheet.xml": stylesheet_invoice,
    "receipt.png.html": png_with_html,
    "openaction.pdf": pdf_open_action,
    "html-header.pdf": html_as_pdf,
}


def assert_original_headers(resp, expected_type: str | None = None) -> None:
    assert resp.status_code == 200
    disposition = resp.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and "filename*=UTF-8''" in disposition
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    policy = resp.headers["Content-Security-Policy"]
    directives = [d.strip() for d in policy.split(";")]
    assert "sandbox" in directives and "default-src 'none'" in directives and "frame-ancestors 'none'" in directives
    assert "script-src" not in policy and "unsafe" not in policy
    assert resp.headers["Cross-Origin-Resource-Policy"] == "same-origin"
    assert resp.mimetype not in ACTIVE_TYPES and not resp.mimetype.startswith("text/")
    assert not resp.mimetype.endswith("+xml") and "html" not in resp.mimetype
    if expected_type:
        assert resp.mimetype == expected_type


def signed_in(stack):
    client = stack.app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"',
                      client.get("/dashboard").get_data(as_text=True)).group(1)
    assert client.post("/dashboard/sign-in", data={"key": stack.reviewer, "csrf_token": token}).status_code == 302
    return client


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_original_is_an_attachment_in_a_sandbox(stack, name):
    job_id = accepted(stack, HOSTILE[name](stack.receiver.url), name)
    dashboard = signed_in(stack)
    for resp in (stack.app.test_client().get(f"/v1/jobs/{job_id}/document", headers=bearer(stack)),
                 dashboard.get(f"/dashboard/jobs/{job_id}/document")):
        assert_original_headers(resp)
    page = dashboard.get(f"/dashboard/jobs/{job_id}/pages/1")
    assert page.status_code == 200 and page.mimetype == "image/png" and page.get_data().startswith(b"\x89PNG")
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Content-Disposition"].startswith("inline")
    assert "sandbox" in page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]


@pytest.mark.parametrize("stored_type", ["text/html", "image/svg+xml", "application/xhtml+xml", "text/xml",
                                         "application/javascript", "text/html; charset=utf-8", ""])
def test_an_active_stored_type_is_never_sent(stack, stored_type):
    # Rows from before today's sniffing, or written by other tools: the type is not trusted.
    job_id = accepted(stack, png_with_html(stack.receiver.url) + b"stored:" + stored_type.encode(), "stored.html")
    with session_scope(stack.settings.database_url) as s:
        s.get(Document, s.get(Job, job_id).document_sha256).mime_type = stored_type
    resp = stack.app.test_client().get(f"/v1/jobs/{job_id}/document", headers=bearer(stack))
    assert_original_headers(resp, "application/octet-stream")


@pytest.mark.parametrize("filename, expected", [
    ('evil".html', "evil_.html.png"),
    ("a\r\nSet-Cookie: x=1.png", None),
    ("../../etc/passwd", "passwd.png"),
    ("发票 2026.png", "发票 2026.png"),
    (".htaccess", None),
    ("receipt.svg", "receipt.svg.png"),
    ("x" * 300 + ".png", None),
])
def test_filename_is_sanitised(stack, filename, expected):
    data = encode(receipt_image(date(2026, 1, 5)), "PNG") + filename.encode()  # one document per name
    job_id = accepted(stack, data, filename)
    resp = stack.app.test_client().get(f"/v1/jobs/{job_id}/document", headers=bearer(stack))
    assert_original_headers(resp, "image/png")
    disposition = resp.headers["Content-Disposition"]
    assert "\r" not in disposition and "\n" not in disposition and "Set-Cookie" not in resp.headers
    sent = unquote(disposition.split("filename*=UTF-8''", 1)[1])
    assert sent.endswith(".png") and "/" not in sent and "\\" not in sent and '"' not in sent
    assert not sent.startswith(".") and len(sent) <= 200
    if expected:
        assert sent == expected
    ascii_name = disposition.split('filename="', 1)[1].split('"', 1)[0]
    assert ascii_name.isascii() and ascii_name.endswith(".png")


@pytest.mark.parametrize("name, data", [
    ("image.svg", f'<svg xmlns="{SVG}" onload="alert(1)"><script>alert(2)</script></svg>'.encode()),
    ("page.html", b"<!doctype html><html><script>alert(1)</script></html>"),
    ("page.xhtml", f'<?xml version="1.0"?><html xmlns="{XHTML}"><script>alert(1)</script></html>'.encode()),
    ("feed.xml", b'<?xml version="1.0"?><?xml-stylesheet type="text/xsl" href="x.xsl"?><rss><a/></rss>'),
    ("script.js", b"alert(document.cookie)"),
    ("mail.eml", b"Content-Type: text/html\r\n\r\n<script>alert(1)</script>"),
    ("page.mht", b"MIME-Version: 1.0\r\nContent-Type: multipart/related; boundary=x\r\n\r\n--x\r\n"),
])
def test_active_formats_are_refused_at_intake(stack, name, data):
    resp = upload(stack, data, name, "text/html")
    assert resp.status_code == 415 and resp.json()["code"] == "unsupported_type"


def test_dashboard_policy_covers_forms_framing_base_and_plugins(stack):
    resp = signed_in(stack).get("/dashboard/")
    directives = {d.strip().split(" ", 1)[0]: d.strip() for d in resp.headers["Content-Security-Policy"].split(";")}
    assert directives["form-action"] == "form-action 'self'"
    assert directives["frame-ancestors"] == "frame-ancestors 'none'"
    assert directives["base-uri"] in ("base-uri 'none'", "base-uri 'self'")
    assert directives["object-src"] == "object-src 'none'"
    assert "unsafe-inline" not in directives["script-src"]


def test_job_page_links_the_original_as_a_download(stack):
    job_id = accepted(stack, xhtml_invoice(stack.receiver.url) + b"<!-- link -->", "link.xml")
    html = signed_in(stack).get(f"/dashboard/jobs/{job_id}").get_data(as_text=True)
    link = re.search(rf'<a [^>]*href="/dashboard/jobs/{job_id}/document"[^>]*>', html).group(0)
    assert " download" in link
    assert f'src="/dashboard/jobs/{job_id}/pages/1"' in html  # the page, as Docket's PNG
