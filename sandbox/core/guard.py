"""The sandbox answers only to this machine's own pages and tools.

It listens on 127.0.0.1, but a web page a developer has open can still reach it: through DNS
rebinding (the page's own name made to resolve to 127.0.0.1, so the browser sends
`Host: evil.test:4000`), or by a cross-site request from its own origin (a form POST is sent
without a CORS preflight). Local development servers people trust refuse both, as the sandbox
does here:

- a request whose `Host` is not a loopback name or address (`localhost`, `127.0.0.1`, `[::1]`,
  any port) is refused with 403, unless `--allow-host` named it (Vite and webpack's dev server
  check `Host` the same way);
- a request carrying a browser's `Origin` from elsewhere is refused on the sandbox's own APIs:
  the AWS endpoint and the console (Jupyter checks `Origin` the same way). The app's REST APIs
  are exempt: they keep the CORS behaviour their template defines, because AWS serves them to
  any origin. No answer of the sandbox's own APIs carries a CORS grant.

Each refused host or origin is logged once.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from urllib.parse import urlsplit

from sandbox.core.wire import Response

LOOPBACK = ("localhost", "127.0.0.1", "::1")


def hostname(value: str) -> str:
    """The name in a `Host` header, without its port: `[::1]:4000` -> `::1`."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class Guard:
    def __init__(self, allowed_hosts: tuple[str, ...] = (),
                 log: Callable[[str], None] = print) -> None:
        self.allowed = set(LOOPBACK) | {hostname(h) for h in allowed_hosts}
        self._log = log
        self._logged: set[str] = set()
        self._lock = threading.Lock()

    def host_allowed(self, host: str | None) -> bool:
        # HTTP/1.0 clients may send no Host; browsers always send one.
        return host is None or hostname(host) in self.allowed

    def origin_allowed(self, origin: str | None) -> bool:
        """No Origin (a tool, or a same-origin GET) or one of this machine's pages."""
        if origin is None:
            return True
        parts = urlsplit(origin.strip())
        return parts.scheme in ("http", "https") and (parts.hostname or "") in self.allowed

    def refuse_host(self, host: str) -> Response:
        name = hostname(host)
        self._once(f"host {host}", f"sandbox: refused a request for host {host}: not this "
                                   f"machine (allow it with --allow-host {name})")
        return _forbidden(f"The sandbox answers only requests for localhost, 127.0.0.1 or [::1], "
                          f"not for host {host}. Start it with --allow-host {name} to allow it.")

    def refuse_origin(self, origin: str) -> Response:
        self._once(f"origin {origin}", f"sandbox: refused a request from origin {origin}: the "
                                       "sandbox's own APIs answer only this machine's pages")
        return _forbidden(f"The sandbox's own APIs answer only pages of this machine, not pages "
                          f"from {origin}.")

    def _once(self, key: str, line: str) -> None:
        with self._lock:
            if key in self._logged:
                return
            self._logged.add(key)
        self._log(line)


def _forbidden(message: str) -> Response:
    body = json.dumps({"message": message}).encode()
    return 403, [("Content-Type", "application/json"), ("x-amzn-ErrorType", "Forbidden")], body
