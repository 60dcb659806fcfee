"""The game day's acknowledgement endpoint on a real socket: token, limits, clean text."""
import json
import urllib.error
import urllib.request

import pytest

from harness.gameday.ack import MAX_BODY, AckServer, send_ack


@pytest.fixture
def server():
    s = AckServer("127.0.0.1:0", "gd-1", "right-token").start()
    yield s
    s.close()


def post(url: str, body: bytes, token: str | None) -> int:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body, headers=headers,
                                                           method="POST"), timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_only_the_game_days_token_is_taken(server):
    assert post(server.url, b'{"by": "mallory"}', None) == 401
    assert post(server.url, b'{"by": "mallory"}', "wrong") == 401
    assert server.acks == []
    answer = send_ack(server.url, "on-call", "SBC alarm", token="right-token")
    assert answer["acknowledged"] and [a["by"] for a in server.acks] == ["on-call"]


def test_floods_and_big_bodies_are_refused(server):
    assert post(server.url, json.dumps({"by": "x" * (MAX_BODY + 10)}).encode(), "right-token") == 413
    codes = [post(server.url, b'{"by": "a"}', "right-token") for _ in range(20)]
    assert codes[0] == 200 and set(codes[1:]) == {429}  # one a second at most
    assert len(server.acks) == 1


def test_names_and_notes_cannot_become_markup(server):
    send_ack(server.url, "eve | <b>x</b>", "see `this` [link](http://x) *bold*\n# head",
             token="right-token")
    ack = server.acks[0]
    for mark in "|<>`[]*#\n":
        assert mark not in ack["by"] + ack["note"], mark
