"""The client's address behind trusted proxies (DOCKET_TRUSTED_PROXIES).

Off by default: REMOTE_ADDR is the peer's address and X-Forwarded-For is never read, since any
client can send one. Behind nginx or a load balancer every request comes from the proxy, so
per-address budgets (failed authentications, sign-in attempts, a keyless caller's rate limit)
would be one budget for everybody; the setting says whom to believe:

- a count N (e.g. `1` for one nginx): the N proxies nearest the API append to X-Forwarded-For;
  werkzeug's ProxyFix takes the Nth entry from the right (entries further left are the client's
  own claims and are ignored). X-Forwarded-Proto is read the same way.
- CIDRs (e.g. `10.0.0.0/8,fd00::/8`): X-Forwarded-For is read only when the peer is in them, and
  walked from the right past every trusted address; the first address that is not a proxy's is
  the client's (a Kubernetes ingress, whose hops vary).

The original peer is kept in environ["werkzeug.proxy_fix.orig"] as ProxyFix does."""
from __future__ import annotations

import ipaddress
from typing import Callable, Iterable

from werkzeug.middleware.proxy_fix import ProxyFix

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def wrap(wsgi_app: Callable, trusted: int | tuple[Network, ...]) -> Callable:
    """The app reading the client's address as Settings.trusted_proxies says (docket/config.py)."""
    if not trusted:
        return wsgi_app
    if isinstance(trusted, int):
        return ProxyFix(wsgi_app, x_for=trusted, x_proto=trusted, x_host=0, x_port=0, x_prefix=0)
    return TrustedNetworks(wsgi_app, trusted)


def _address(text: str):
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


class TrustedNetworks:
    """X-Forwarded-For believed hop by hop, as far as the hops are trusted proxies."""

    def __init__(self, app: Callable, networks: Iterable[Network]):
        self.app, self.networks = app, tuple(networks)

    def trusted(self, address) -> bool:
        return address is not None and any(address in network for network in self.networks)

    def __call__(self, environ, start_response):
        peer = environ.get("REMOTE_ADDR")
        environ["werkzeug.proxy_fix.orig"] = {"REMOTE_ADDR": peer,
                                              "wsgi.url_scheme": environ.get("wsgi.url_scheme")}
        if self.trusted(_address(peer or "")):
            hops = [hop.strip() for hop in environ.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
            client = None
            for hop in reversed(hops):
                address = _address(hop)
                if address is None:
                    break  # garbage in the chain: believe nothing beyond it
                client = str(address)
                if not self.trusted(address):
                    break
            if client is not None:
                environ["REMOTE_ADDR"] = client
            proto = environ.get("HTTP_X_FORWARDED_PROTO", "").split(",")[-1].strip().lower()
            if proto in ("http", "https"):
                environ["wsgi.url_scheme"] = proto
        return self.app(environ, start_response)
