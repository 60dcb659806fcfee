"""rtpengine's ng control protocol, enough to ask it questions: `ping`, `list`, `statistics`.

A request is `<cookie> <bencoded dictionary>` in one UDP datagram; the reply
repeats the cookie. Bencoding is a few lines (integers, byte strings, lists,
dictionaries), so it is written here rather than taken from a package. The lab
uses it to wait for rtpengine before starting Kamailio, and its truth check reads
rtpengine's own session counts.
"""
from __future__ import annotations

import os
import socket


def encode(v) -> bytes:
    if isinstance(v, bool):
        v = int(v)
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, str):
        v = v.encode()
    if isinstance(v, bytes):
        return b"%d:%s" % (len(v), v)
    if isinstance(v, (list, tuple)):
        return b"l" + b"".join(encode(x) for x in v) + b"e"
    if isinstance(v, dict):
        return b"d" + b"".join(encode(k) + encode(v[k]) for k in sorted(v)) + b"e"
    raise TypeError(f"cannot bencode {type(v).__name__}")


def decode(data: bytes):
    value, end = _decode(data, 0)
    if end != len(data):
        raise ValueError("trailing bytes after a bencoded value")
    return value


def _decode(d: bytes, i: int):
    c = d[i:i + 1]
    if c == b"i":
        end = d.index(b"e", i)
        return int(d[i + 1:end]), end + 1
    if c in (b"l", b"d"):
        i, items = i + 1, []
        while d[i:i + 1] != b"e":
            item, i = _decode(d, i)
            items.append(item)
        if c == b"l":
            return items, i + 1
        if len(items) % 2:
            raise ValueError("a bencoded dictionary with a key and no value")
        return {k if isinstance(k, str) else k.decode(errors="replace"): v
                for k, v in zip(items[::2], items[1::2])}, i + 1
    if c.isdigit():
        colon = d.index(b":", i)
        n = int(d[i:colon])
        raw = d[colon + 1:colon + 1 + n]
        try:
            return raw.decode(), colon + 1 + n
        except UnicodeDecodeError:
            return raw, colon + 1 + n
    raise ValueError(f"not bencode at byte {i}")


def command(addr: tuple[str, int], request: dict, timeout: float = 2.0) -> dict:
    """Send one ng command and return rtpengine's reply dictionary (raises OSError on none)."""
    cookie = os.urandom(6).hex().encode()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(cookie + b" " + encode(request), addr)
        while True:
            data = s.recv(65535)
            head, _, body = data.partition(b" ")
            if head == cookie:
                return decode(body)
