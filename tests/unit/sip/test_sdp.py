"""SDP: the media address read, and rewritten by an anchoring element."""
from harness.sip.sdp import media_address, rewrite_media

OFFER = (b"v=0\r\no=drill 1 1 IN IP4 127.0.0.1\r\ns=drill\r\nc=IN IP4 127.0.0.1\r\n"
         b"t=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")


def test_media_address_and_rewrite():
    assert media_address(OFFER) == ("127.0.0.1", 40000)
    out = rewrite_media(OFFER, "127.20.0.21", 51234)
    assert media_address(out) == ("127.20.0.21", 51234)
    # the origin line and every other line are kept byte for byte
    assert b"o=drill 1 1 IN IP4 127.0.0.1\r\n" in out and out.endswith(b"PCMU/8000\r\n")
    assert out.count(b"\r\n") == OFFER.count(b"\r\n")


def test_unusable_media_addresses():
    assert media_address(b"v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 70000 RTP/AVP 0\r\n") is None
    assert media_address(b"v=0\r\n") is None
    assert media_address(b"\xff\xfe garbage") is None
