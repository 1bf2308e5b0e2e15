"""The server-side request forgery guard for outgoing webhooks, on by default.

`resolve(url, allow)` checks a URL and resolves its host exactly once; `post(target, ...)` then
connects to that checked address and never resolves again, so a DNS answer that changes between
check and connect (DNS rebinding) cannot move the request onto an internal address.

Rules:
- only `http` and `https`, a host is required, no credentials in the URL;
- every address the host resolves to must be public: loopback, private, link-local (cloud
  metadata 169.254.169.254 included), shared (100.64/10), multicast, reserved, unspecified,
  broadcast, documentation/benchmark ranges and the IPv6 equivalents (ULA fc00::/7, site-local
  fec0::/10, link-local fe80::/10, ...) are refused, and so are IPv6 forms that wrap a refused
  IPv4 address (IPv4-mapped ::ffff:a.b.c.d, IPv4-compatible ::a.b.c.d, 6to4 2002::/16, NAT64
  64:ff9b::/96); one bad address refuses the whole host;
- `allow` (DOCKET_WEBHOOK_ALLOW_HOSTS) exempts hosts by name and addresses by CIDR;
- no redirects (a 3xx is an answer, not an instruction), connect and read timeouts, and at most
  `max_response_bytes` of the response body are read (the rest is never read; see `Result`).
"""
from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from typing import Iterable
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import (ConnectTimeoutError, HTTPError, NewConnectionError, ProtocolError,
                                ReadTimeoutError, SSLError)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

USER_AGENT = "Docket-Webhooks/1"

# Named so the refusal says why; the ipaddress properties below back these up.
_V4_BLOCKED: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "unspecified/'this network'"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared address space (carrier-grade NAT)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local (cloud metadata)"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "6to4 relay anycast"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("255.255.255.255/32", "broadcast"),  # before 240/4, which contains it
    ("240.0.0.0/4", "reserved"),
)
_V6_BLOCKED: tuple[tuple[str, str], ...] = (
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("64:ff9b:1::/48", "local-use NAT64"),
    ("100::/64", "discard-only"),
    ("2001::/23", "IETF protocol assignments (Teredo included)"),
    ("2001:db8::/32", "documentation"),
    ("fc00::/7", "unique local (ULA)"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
)
_V4_NETS = [(ipaddress.IPv4Network(net), why) for net, why in _V4_BLOCKED]
_V6_NETS = [(ipaddress.IPv6Network(net), why) for net, why in _V6_BLOCKED]
_V4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class BlockedDestination(Exception):
    """The URL may not be called: `reason` says why (shown as "blocked: <reason>")."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class DeliveryError(Exception):
    """The request was allowed but did not produce an answer: timeout, refused connection, TLS."""


@dataclass(frozen=True)
class Target:
    """A checked destination: connect to `ip`, speak to `host`."""

    url: str
    scheme: str
    host: str  # as in the URL, lower case, without brackets; sent as Host and used for TLS
    port: int
    ip: str  # the checked address to connect to
    path: str  # path and query, never empty

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


@dataclass(frozen=True)
class Result:
    status_code: int
    latency_ms: float
    body_excerpt: bytes  # at most max_response_bytes
    truncated: bool  # the receiver sent more than max_response_bytes; the rest was not read
    location: str | None = None  # a 3xx's Location, reported, never followed


# --- the address check -------------------------------------------------------------------------

def _embedded_v4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, str] | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped, "IPv4-mapped"
    if ip.sixtofour is not None:
        return ip.sixtofour, "6to4"
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "NAT64"
    if ip in _V4_COMPATIBLE and int(ip) > 1:  # ::/96 minus :: and ::1 (judged as IPv6)
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "IPv4-compatible"
    return None


def blocked_reason(ip: IPAddress) -> str | None:
    """Why connecting to `ip` is refused, or None when it is a public address."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
        wrapped = _embedded_v4(ip)
        if wrapped is not None:
            inner, form = wrapped
            why = blocked_reason(inner)
            return f"{form} {ip} wraps {why}" if why else None
        for net, why in _V6_NETS:
            if ip in net:
                return f"{ip} is {why}"
    else:
        for net, why in _V4_NETS:
            if ip in net:
                return f"{ip} is {why}"
    # Whatever the table misses, the standard library's registry still catches.
    for flag in ("is_loopback", "is_private", "is_link_local", "is_multicast", "is_reserved",
                 "is_unspecified", "is_site_local"):
        if getattr(ip, flag, False):
            return f"{ip} is {flag[3:].replace('_', '-')}"
    if not ip.is_global:
        return f"{ip} is not a global address"
    return None


# --- the allow-list ----------------------------------------------------------------------------

@dataclass(frozen=True)
class AllowList:
    hosts: frozenset[str]
    networks: tuple[IPNetwork, ...]

    @classmethod
    def parse(cls, entries: "AllowList | str | Iterable[str] | None") -> "AllowList":
        if isinstance(entries, AllowList):
            return entries
        if entries is None:
            entries = ()
        elif isinstance(entries, str):
            entries = entries.split(",")
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in entries:
            entry = entry.strip().lower().rstrip(".")
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                hosts.add(entry)
        return cls(frozenset(hosts), tuple(networks))

    def allows_host(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hosts

    def allows_ip(self, ip: IPAddress) -> bool:
        return any(ip.version == net.version and ip in net for net in self.networks)


# --- resolve once, then post to what was checked ------------------------------------------------

def _split(url: str) -> tuple[str, str, int, str]:
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise BlockedDestination(f"invalid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise BlockedDestination(f"scheme {scheme or '(none)'!r} is not http or https")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise BlockedDestination("URL has no host")
    if parts.username is not None or parts.password is not None:
        raise BlockedDestination("credentials in the URL are not supported")
    if port is None:
        port = 443 if scheme == "https" else 80
    if not 0 < port < 65536:
        raise BlockedDestination(f"invalid port {port}")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return scheme, host, port, path


def validate_url(url: str) -> None:
    """The checks that need no DNS (scheme, host, port, credentials; an IP-literal host must be
    public). For refusing an obviously bad `callback_url` at submission; delivery re-checks."""
    _, host, _, _ = _split(url)
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return
    why = blocked_reason(ip)
    if why:
        raise BlockedDestination(why)


def resolve(url: str, allow: "AllowList | str | Iterable[str] | None" = None) -> Target:
    """Check `url` and resolve its host once. Raises BlockedDestination."""
    allow = AllowList.parse(allow)
    scheme, host, port, path = _split(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        raise BlockedDestination(f"cannot resolve {host!r}: {exc}") from None
    addresses: list[IPAddress] = []
    for family, _type, _proto, _canon, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise BlockedDestination(f"{host!r} resolved to no IP address")
    if not allow.allows_host(host):
        for ip in addresses:
            why = None if allow.allows_ip(ip) else blocked_reason(ip)
            if why:
                shown = why if str(ip) == host else f"{host!r} resolves to {why}"
                raise BlockedDestination(shown)
    return Target(url=url, scheme=scheme, host=host, port=port, ip=str(addresses[0]), path=path)


def _default_ca_certs() -> str | None:
    try:
        import certifi
    except ImportError:  # urllib3 then loads the system store
        return None
    return certifi.where()


def post(target: Target, body: bytes, headers: dict[str, str], *, connect_timeout: float,
         read_timeout: float, max_response_bytes: int, ca_certs: str | None = None) -> Result:
    """POST `body` to the checked address of `target`.

    Host header and TLS (SNI and certificate check) use the original host name; the TCP
    connection goes to `target.ip` and nothing is resolved again. No redirects are followed.
    Reads at most `max_response_bytes` of the body: a bigger body is cut, `truncated` is set and
    the status code still decides the outcome. Raises DeliveryError when no answer came.
    """
    timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
    common = dict(host=target.ip, port=target.port, timeout=timeout, retries=False, maxsize=1,
                  block=False)
    if target.scheme == "https":
        pool: urllib3.HTTPConnectionPool = urllib3.HTTPSConnectionPool(
            **common, cert_reqs="CERT_REQUIRED", ca_certs=ca_certs or _default_ca_certs(),
            server_hostname=target.host, assert_hostname=target.host)
    else:
        pool = urllib3.HTTPConnectionPool(**common)
    send_headers = {
        "Host": target.host_header,
        "User-Agent": USER_AGENT,
        "Content-Type": "application/json",
        "Accept-Encoding": "identity",  # never inflate a compressed answer
        "Connection": "close",
        **headers,
    }
    started = time.monotonic()
    # The whole exchange, not just each socket read, is bounded: a receiver dripping one byte
    # per read_timeout must not hold the worker.
    deadline = started + connect_timeout + read_timeout
    try:
        response = pool.urlopen("POST", target.path, body=body, headers=send_headers,
                                redirect=False, retries=False, preload_content=False,
                                assert_same_host=False, release_conn=False)
        try:
            status = response.status
            location = response.headers.get("Location")
            chunks: list[bytes] = []
            size = 0
            truncated = False
            while True:
                if time.monotonic() > deadline:
                    raise DeliveryError(f"timeout: response not complete after "
                                        f"{connect_timeout + read_timeout:g}s")
                # read1: at most one socket read, so the deadline is checked in between.
                chunk = response.read1(min(16384, max_response_bytes + 1 - size),
                                       decode_content=False)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
                if size > max_response_bytes:
                    truncated = True
                    break
            excerpt = b"".join(chunks)[:max_response_bytes]
        finally:
            response.close()  # drop the connection; an unread rest is never drained
    except DeliveryError:
        raise
    except ConnectTimeoutError:
        raise DeliveryError(f"timeout: connect to {target.ip}:{target.port} took over "
                            f"{connect_timeout:g}s") from None
    except ReadTimeoutError:
        raise DeliveryError(f"timeout: no response within {read_timeout:g}s") from None
    except SSLError as exc:
        raise DeliveryError(f"tls: {_reason(exc)}") from None
    except NewConnectionError as exc:
        raise DeliveryError(f"connect: {_reason(exc)}") from None
    except (ProtocolError, HTTPError, OSError) as exc:
        if "timed out" in str(exc):
            raise DeliveryError(f"timeout: {_reason(exc)}") from None
        raise DeliveryError(f"connection: {_reason(exc)}") from None
    finally:
        pool.close()
    latency_ms = (time.monotonic() - started) * 1000.0
    return Result(status_code=status, latency_ms=latency_ms, body_excerpt=excerpt,
                  truncated=truncated, location=location if 300 <= status < 400 else None)


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason or exc)[:500]
