"""HTTP requests with credentials done properly: a URL's `user:pw@` becomes a basic-auth
header (urllib would otherwise send none and the probe would fail: a false abort)."""
from __future__ import annotations

import base64
import urllib.request
from urllib.parse import unquote, urlsplit, urlunsplit


def request(url: str, data: bytes | None = None, method: str | None = None,
            headers: dict | None = None) -> urllib.request.Request:
    parts = urlsplit(url)
    headers = dict(headers or {})
    if parts.username is not None:
        user, password = unquote(parts.username), unquote(parts.password or "")
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
        host = parts.hostname + (f":{parts.port}" if parts.port else "")
        url = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return urllib.request.Request(url, data=data, method=method, headers=headers)


def open_url(url: str, timeout: float, data: bytes | None = None, method: str | None = None,
             headers: dict | None = None):
    """urllib's urlopen, with the URL's userinfo sent as basic auth."""
    return urllib.request.urlopen(request(url, data, method, headers), timeout=timeout)
