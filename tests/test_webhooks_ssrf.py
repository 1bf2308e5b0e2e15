"""The SSRF guard: which destinations are refused, the allow-list, and that the request goes to
the address that was checked. Only DNS for made-up names is faked (a true external boundary)."""
from __future__ import annotations

import http.server
import ipaddress
import socket
import threading

import pytest

from docket.webhooks import ssrf
from docket.webhooks.settings import WebhookSettings, parse_allow_hosts
from docket.webhooks.ssrf import BlockedDestination, resolve

BLOCKED = [
    ("127.0.0.1", "loopback"),
    ("127.8.9.10", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.254", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"),
    ("100.64.0.1", "shared"),
    ("100.127.255.254", "shared"),
    ("0.0.0.0", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "broadcast"),
    ("198.18.0.1", "benchmarking"),
    ("192.0.2.10", "documentation"),
    ("[::1]", "loopback"),
    ("[::]", "unspecified"),
    ("[fe80::1]", "link-local"),
    ("[fc00::1]", "unique local"),
    ("[fd12:3456::1]", "unique local"),
    ("[fec0::1]", "site-local"),
    ("[ff02::1]", "multicast"),
    ("[::ffff:127.0.0.1]", "IPv4-mapped"),
    ("[::ffff:10.0.0.1]", "IPv4-mapped"),
    ("[::ffff:169.254.169.254]", "IPv4-mapped"),
    ("[::127.0.0.1]", "IPv4-compatible"),
    ("[64:ff9b::a00:1]", "NAT64"),
    ("[64:ff9b::7f00:1]", "NAT64"),
    ("[2002:a00:1::1]", "6to4"),
    ("[2002:a9fe:a9fe::]", "6to4"),
    ("[2001:db8::1]", "documentation"),
    # Other spellings of 127.0.0.1 that resolvers accept.
    ("2130706433", "loopback"),
    ("0x7f000001", "loopback"),
    ("127.1", "loopback"),
]


@pytest.mark.parametrize("host, why", BLOCKED)
def test_blocked_addresses_are_refused(host, why):
    with pytest.raises(BlockedDestination) as err:
        resolve(f"http://{host}:8080/hook")
    assert why in err.value.reason


@pytest.mark.parametrize("url", [
    "ftp://example.com/x", "file:///etc/passwd", "gopher://example.com/", "javascript:alert(1)",
    "example.com/hook", "//example.com/hook", "http:///nohost", "https://", "http://user:pw@8.8.8.8/",
    "http://8.8.8.8:0/", "http://8.8.8.8:99999/",
])
def test_bad_urls_are_refused(url):
    with pytest.raises(BlockedDestination):
        resolve(url)


@pytest.mark.parametrize("url, ip, port", [
    ("https://8.8.8.8/hook", "8.8.8.8", 443),
    ("http://93.184.216.34:8080/a?b=c", "93.184.216.34", 8080),
    ("https://[2001:4860:4860::8888]/x", "2001:4860:4860::8888", 443),
    ("https://[::ffff:8.8.8.8]/x", "::ffff:8.8.8.8", 443),  # a mapped PUBLIC address is fine
    ("https://[64:ff9b::808:808]/x", "64:ff9b::808:808", 443),
])
def test_public_addresses_pass_the_check(url, ip, port):
    target = resolve(url)  # check only: nothing is connected
    assert (ipaddress.ip_address(target.ip), target.port) == (ipaddress.ip_address(ip), port)


def test_localhost_by_name_is_refused():
    with pytest.raises(BlockedDestination) as err:
        resolve("http://localhost:9/hook")
    assert "localhost" in err.value.reason and "loopback" in err.value.reason


def fake_dns(monkeypatch, table: dict[str, list[str]]):
    """Answer made-up names from `table`; everything else goes to the real resolver."""
    real = socket.getaddrinfo
    calls: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        if host in table:
            calls.append(host)
            out = []
            for ip in table[host]:
                if ":" in ip:
                    out.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (ip, port, 0, 0)))
                else:
                    out.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)))
            return out
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return calls


def test_a_name_resolving_to_a_private_address_is_refused(monkeypatch):
    fake_dns(monkeypatch, {"hooks.customer.test": ["10.0.0.7"]})
    with pytest.raises(BlockedDestination) as err:
        resolve("https://hooks.customer.test/x")
    assert "hooks.customer.test" in err.value.reason and "10.0.0.7" in err.value.reason


def test_one_private_address_among_public_ones_refuses_the_host(monkeypatch):
    fake_dns(monkeypatch, {"mixed.test": ["8.8.8.8", "fd00::1"]})
    with pytest.raises(BlockedDestination):
        resolve("https://mixed.test/x")


def test_a_name_resolving_to_public_addresses_passes_and_is_resolved_once(monkeypatch):
    calls = fake_dns(monkeypatch, {"hooks.example.test": ["8.8.4.4", "8.8.8.8"]})
    target = resolve("https://hooks.example.test/in")
    assert (target.host, target.ip, target.path) == ("hooks.example.test", "8.8.4.4", "/in")
    assert calls == ["hooks.example.test"]


def test_unresolvable_names_are_refused(monkeypatch):
    def nxdomain(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    monkeypatch.setattr(socket, "getaddrinfo", nxdomain)
    with pytest.raises(BlockedDestination, match="cannot resolve"):
        resolve("https://nowhere.test/")


def test_allow_list_by_host_name(monkeypatch):
    fake_dns(monkeypatch, {"receiver.internal": ["127.0.0.1"]})
    with pytest.raises(BlockedDestination):
        resolve("http://receiver.internal:8000/")
    target = resolve("http://receiver.internal:8000/", ["Receiver.Internal"])
    assert target.ip == "127.0.0.1"
    # A name entry exempts that name only, not other names for the same address.
    with pytest.raises(BlockedDestination):
        resolve("http://localhost:8000/", ["receiver.internal"])


def test_allow_list_by_cidr():
    assert resolve("http://127.0.0.1:8000/", "127.0.0.0/8").ip == "127.0.0.1"
    assert resolve("http://localhost:8000/", parse_allow_hosts(" 127.0.0.0/8 , ::1/128 ")).host == "localhost"
    assert resolve("http://10.9.8.7/", "10.9.8.7").ip == "10.9.8.7"  # a bare IP is a /32
    with pytest.raises(BlockedDestination):
        resolve("http://10.9.8.6/", "10.9.8.7")
    with pytest.raises(BlockedDestination):
        resolve("http://169.254.169.254/", "127.0.0.0/8")


def test_allow_hosts_setting_from_env(monkeypatch):
    monkeypatch.setenv("DOCKET_WEBHOOK_ALLOW_HOSTS", "receiver.internal, 127.0.0.0/8,,")
    monkeypatch.delenv("DOCKET_WEBHOOK_MAX_ATTEMPTS", raising=False)
    settings = WebhookSettings.from_env()
    assert settings.allow_hosts == ("receiver.internal", "127.0.0.0/8")
    assert (settings.max_attempts, settings.backoff_base, settings.backoff_cap) == (8, 5.0, 3600.0)
    assert (settings.connect_timeout, settings.read_timeout, settings.max_response_bytes) == (3.0, 10.0, 65536)
    monkeypatch.delenv("DOCKET_WEBHOOK_ALLOW_HOSTS")
    assert WebhookSettings.from_env().allow_hosts == ()


def test_validate_url_refuses_literals_without_dns():
    ssrf.validate_url("https://hooks.example.com/x")
    for url in ("http://169.254.169.254/latest/meta-data/", "http://[::ffff:127.0.0.1]/", "ftp://x.com/"):
        with pytest.raises(BlockedDestination):
            ssrf.validate_url(url)


# --- post() talks to the checked address ------------------------------------------------------

class _Echo(http.server.BaseHTTPRequestHandler):
    seen: list[dict] = []

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        type(self).seen.append({"host": self.headers["Host"], "body": self.rfile.read(length),
                                "path": self.path})
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def echo_server():
    _Echo.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_post_connects_to_the_checked_address_and_never_resolves_again(monkeypatch, echo_server):
    port = echo_server.server_address[1]
    fake_dns(monkeypatch, {"receiver.test": ["127.0.0.1"]})
    target = resolve(f"http://receiver.test:{port}/in?x=1", "127.0.0.0/8")

    # DNS rebinding: the name now points elsewhere (or nowhere). post() must not care.
    real = socket.getaddrinfo

    def rebound(host, *args, **kwargs):
        if host == "receiver.test":
            raise AssertionError("post() resolved the host name again")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebound)
    result = ssrf.post(target, b'{"a":1}', {"webhook-id": "msg_1"}, connect_timeout=2,
                       read_timeout=2, max_response_bytes=1024)
    assert result.status_code == 204
    assert _Echo.seen == [{"host": f"receiver.test:{port}", "body": b'{"a":1}', "path": "/in?x=1"}]


def test_connection_refused_is_a_delivery_error():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    target = resolve(f"http://127.0.0.1:{port}/", "127.0.0.1")
    with pytest.raises(ssrf.DeliveryError, match="connect"):
        ssrf.post(target, b"{}", {}, connect_timeout=1, read_timeout=1, max_response_bytes=10)


@pytest.fixture
def tls_echo_server(tmp_path):
    """An HTTPS receiver on 127.0.0.1 whose certificate names only `receiver.test`."""
    import shutil
    import ssl
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=receiver.test",
                    "-addext", "subjectAltName=DNS:receiver.test"], check=True, capture_output=True)
    _Echo.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, str(cert)
    server.shutdown()
    server.server_close()


def test_https_verifies_the_certificate_against_the_original_host_name(monkeypatch, tls_echo_server):
    server, ca = tls_echo_server
    port = server.server_address[1]
    fake_dns(monkeypatch, {"receiver.test": ["127.0.0.1"], "impostor.test": ["127.0.0.1"]})
    kwargs = dict(connect_timeout=2, read_timeout=2, max_response_bytes=1024, ca_certs=ca)

    # Connected to 127.0.0.1, yet verified (and SNI sent) as receiver.test: the cert matches.
    target = resolve(f"https://receiver.test:{port}/in", "127.0.0.0/8")
    assert ssrf.post(target, b"{}", {}, **kwargs).status_code == 204
    assert _Echo.seen[-1]["host"] == f"receiver.test:{port}"

    # Same address, another name: the certificate does not match, nothing is sent.
    target = resolve(f"https://impostor.test:{port}/in", "127.0.0.0/8")
    with pytest.raises(ssrf.DeliveryError, match="tls"):
        ssrf.post(target, b"{}", {}, **kwargs)
    # And a certificate nobody vouches for is refused too.
    target = resolve(f"https://receiver.test:{port}/in", "127.0.0.0/8")
    with pytest.raises(ssrf.DeliveryError, match="tls"):
        ssrf.post(target, b"{}", {}, connect_timeout=2, read_timeout=2, max_response_bytes=1024)
    assert len(_Echo.seen) == 1
