"""SDES lines (RFC 4568) and one call's SRTP contexts (libsrtp2 through pylibsrtp)."""
import base64
import os

from harness.sip import rtp, srtp
from harness.sip.sdp import Audio, audio_profile, media_address, with_crypto

# RFC 4568 §4's example key (with a lifetime), and the same with an MKI
RFC_KEY = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"
OFFER = ("v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
         "m=audio 4000 RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
         f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{RFC_KEY}|2^20|1:32\r\n"
         f"a=crypto:2 F8_128_HMAC_SHA1_80 inline:{RFC_KEY}\r\n"
         f"a=crypto:3 AES_CM_128_HMAC_SHA1_32 inline:{RFC_KEY}|2^20\r\n"
         "a=crypto:4 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ=\r\n"
         "a=sendrecv\r\n").encode()


def test_offer_lines_parse_back_and_only_usable_ones_are_taken():
    lines = srtp.offer()
    assert [c.suite for c in lines] == ["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"]
    assert [c.tag for c in lines] == [1, 2] and len({c.key for c in lines}) == 2
    body = Audio("10.0.0.2", 4002, attributes=tuple(c.attribute() for c in lines),
                 profile="RTP/SAVP").encode()
    assert srtp.parse(body) == lines and audio_profile(body) == "RTP/SAVP"
    # an MKI (1:32), an unknown suite (F8) and a short key are skipped; a lifetime is allowed
    got = srtp.parse(OFFER)
    assert [(c.tag, c.suite) for c in got] == [(3, "AES_CM_128_HMAC_SHA1_32")]
    assert got[0].key == base64.b64decode(RFC_KEY)


def test_the_answer_takes_the_first_usable_line_and_the_offerer_finds_it():
    ours = srtp.offer()
    theirs, answer = srtp.answer(ours[::-1])
    assert theirs == ours[1] and (answer.tag, answer.suite) == (2, ours[1].suite)
    assert answer.key != theirs.key
    assert srtp.chosen(ours, [answer]) == (ours[1], answer)
    # an answer naming a tag we did not offer, or another suite under our tag, is no agreement
    assert srtp.chosen(ours, [srtp.Crypto(7, answer.suite, answer.key)]) is None
    assert srtp.chosen(ours, [srtp.Crypto(1, "AES_CM_128_HMAC_SHA1_32", answer.key)]) is None
    assert srtp.answer([]) is None


def _packet(seq: int) -> bytes:
    return rtp.build_packet(seq, seq * 160, 0x1234, rtp.caller_payload(seq))


def test_both_ends_read_each_other_and_a_wrong_key_is_counted_not_read():
    a_key, b_key = srtp.offer()[0], srtp.Crypto.fresh(1, "AES_CM_128_HMAC_SHA1_80")
    a, b = srtp.SrtpContext(a_key, b_key), srtp.SrtpContext(b_key, a_key)
    sent = [a.protect(_packet(i)) for i in range(5)]
    assert all(len(p) == len(_packet(0)) + 10 for p in sent)  # the 80-bit tag
    assert [b.unprotect(p) for p in sent] == [_packet(i) for i in range(5)]
    assert b.unprotect(sent[2]) is None and b.replayed == 1 and b.auth_failed == 0
    # a far end sending with a key other than the one it gave
    wrong = srtp.SrtpContext(srtp.Crypto.fresh(1, "AES_CM_128_HMAC_SHA1_80"), a_key)
    assert [a.unprotect(wrong.protect(_packet(i))) for i in range(3)] == [None] * 3
    assert a.auth_failed == 3 and a.replayed == 0
    # a mangled packet fails authentication too
    bad = bytearray(b.protect(_packet(9)))
    bad[20] ^= 1
    assert a.unprotect(bytes(bad)) is None and a.auth_failed == 4
    assert srtp.SrtpContext(a_key, b_key).protect(_packet(1)) is not None
    assert a.protect(_packet(1)) is None  # a sequence number protected twice: dropped


def test_the_32_bit_tag_suite():
    k = srtp.Crypto.fresh(1, "AES_CM_128_HMAC_SHA1_32")
    tx, rx = srtp.SrtpContext(k, k), srtp.SrtpContext(k, k)
    p = tx.protect(_packet(3))
    assert len(p) == len(_packet(3)) + 4 and rx.unprotect(p) == _packet(3)


def test_a_border_element_strips_and_adds_keys_keeping_the_rest():
    stripped = with_crypto(OFFER, [], "RTP/AVP")
    assert b"a=crypto" not in stripped and audio_profile(stripped) == "RTP/AVP"
    assert media_address(stripped) == ("10.0.0.1", 4000) and stripped.endswith(b"a=sendrecv\r\n")
    key = srtp.Crypto(5, "AES_CM_128_HMAC_SHA1_80", os.urandom(30))
    back = with_crypto(stripped, [key.attribute()], "RTP/SAVP")
    assert srtp.parse(back) == [key] and audio_profile(back) == "RTP/SAVP"
    assert back.count(b"\r\n") == stripped.count(b"\r\n") + 1  # line ends kept as they were
