"""The control channel of the sandbox's relays (the carriers' UDP relays, the DNS relay):
one JSON object per line over TCP on loopback, a reply line each. A line protocol instead of
an HTTP API: it needs no web framework in the relay and is trivial to test."""
from __future__ import annotations

import asyncio
import hmac
import json
from typing import Callable


def json_lines_server(command: Callable[[dict], dict], token: str | None):
    """A client handler for asyncio.start_server: each line a request to `command`; when
    `token` is set, a request without it is refused."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                try:
                    req = json.loads(line)
                    if not isinstance(req, dict):
                        raise ValueError("a JSON object, please")
                    if token and not hmac.compare_digest(str(req.get("token", "")).encode(),
                                                         token.encode()):
                        reply = {"ok": False, "error": "the relay's token is needed"}
                    else:
                        reply = command(req)
                except ValueError as exc:  # JSONDecodeError included
                    reply = {"ok": False, "error": f"not a JSON object: {exc}"}
                writer.write((json.dumps(reply) + "\n").encode())
                await writer.drain()
        except (ValueError, ConnectionError):  # a line over 64 KiB, a peer gone
            pass
        finally:
            writer.close()
    return serve
