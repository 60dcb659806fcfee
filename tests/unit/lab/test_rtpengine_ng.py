"""The ng protocol's bencoding, against hand-encoded values."""
import pytest

from harness.lab.rtpengine_ng import decode, encode


def test_encode_known_values():
    assert encode({"command": "ping"}) == b"d7:command4:pinge"
    assert encode({"b": [1, "x"], "a": -3}) == b"d1:ai-3e1:bli1e1:xee"  # keys sorted


def test_round_trip_and_binary_strings():
    value = {"result": "ok", "totals": {"n": 12, "list": ["a", "bc"]}}
    assert decode(encode(value)) == value
    assert decode(b"3:\xff\xfe\x00") == b"\xff\xfe\x00"


@pytest.mark.parametrize("bad", [b"", b"i12", b"5:abc", b"x", b"d1:ae", b"i1ei2e"])
def test_malformed_replies_raise_value_errors(bad):
    with pytest.raises((ValueError, IndexError)):
        decode(bad)
