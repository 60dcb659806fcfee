"""The Toxiproxy client (toxiproxy-python) pointed at one server's API.

toxiproxy-python keeps the server address in class attributes of its
APIConsumer, so `client()` sets them before every use (one server per call).
"""
from __future__ import annotations

from harness.ops import OpsError


def client(api: str):
    """A toxiproxy-python server handle pointed at `api` (host:port)."""
    from toxiproxy.api import APIConsumer
    from toxiproxy.server import Toxiproxy
    host, _, port = api.rpartition(":")
    APIConsumer.host, APIConsumer.port = host, int(port)
    APIConsumer.base_url = f"http://{host}:{port}"
    return Toxiproxy()


def proxy(api: str, name: str):
    """The named proxy of the server at `api`; OpsError when unreachable or unknown."""
    try:
        found = client(api).get_proxy(name)
    except Exception as exc:  # requests' connection errors and the client's own
        raise OpsError(f"Toxiproxy API at {api} unreachable: {exc}") from exc
    if found is None:
        raise OpsError(f"Toxiproxy at {api} has no proxy named {name!r}")
    return found
