"""SIP messages and framing, RTP packets and statistics: small pure pieces."""
import pytest
from harness.sip import rtp
from harness.sip.message import host_port, parse, response_to, uri_of, via_address


INVITE = (b"INVITE sip:hotline@127.0.0.1:5060 SIP/2.0\r\n"
          b"v: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKabc;rport\r\n"
          b"Via: SIP/2.0/UDP 127.0.0.2:5080;branch=z9hG4bKdef\r\n"
          b"f: <sip:a@b>;tag=1\r\nTo: <sip:hotline@127.0.0.1>\r\ni: xyz\r\n"
          b"CSeq: 7 INVITE\r\nContent-Length: 4\r\n\r\nv=0\r\nEXTRA")


def test_parse_compact_headers_and_body_length():
    m = parse(INVITE)
    assert m.method == "INVITE" and m.call_id == "xyz" and m.cseq == (7, "INVITE")
    assert m.branch == "z9hG4bKabc"
    assert len(m.get_all("via")) == 2
    assert m.body == b"v=0\r"


def test_response_copies_dialog_headers_and_adds_tag():
    r = parse(response_to(parse(INVITE), 180, to_tag="t1").to_bytes())
    assert r.status == 180 and r.reason == "Ringing"
    assert r.get("to").endswith(";tag=t1") and r.call_id == "xyz"
    assert len(r.get_all("via")) == 2


def test_addresses():
    assert via_address("SIP/2.0/UDP 10.0.0.1:5070;branch=x;received=127.0.0.9;rport=4000") == \
        ("127.0.0.9", 4000)
    assert via_address("SIP/2.0/UDP 10.0.0.1;branch=x") == ("10.0.0.1", 5060)
    assert host_port(uri_of('"Sbc" <sip:127.0.0.1:5070;lr>')) == ("127.0.0.1", 5070)
    assert host_port("sip:pbx-1@127.10.0.11") == ("127.10.0.11", 5060)


def test_rtp_stats_loss_jitter_gap_and_wrap():
    s = rtp.RtpStats()
    seqs = [65534, 65535, 0, 2, 3]  # 1 lost across the wrap
    for i, seq in enumerate(seqs):
        s.add(seq, i * 160, 100 + i * 0.02 + (0.5 if seq == 2 else 0))
    assert s.expected == 6 and s.received == 5 and s.lost == 1
    assert s.max_gap == pytest.approx(0.52)
    assert s.jitter > 0
    s.close(end=102.0)
    assert s.max_gap == pytest.approx(102.0 - (100 + 4 * 0.02 + 0))


def test_audio_that_begins_late_is_a_gap_from_the_start_of_the_media():
    """The caller hears silence from the answer until the first packet: a stream whose far
    end stays mute for 1.05 s and then sends is a 1.05 s gap (dead air against 1 s), one
    that answers in 0.95 s is not; the echo's own round trip (ms) is no gap to speak of."""
    for late in (0.95, 1.05, 0.004):
        s = rtp.RtpStats(started=100.0)
        for i in range(10):
            s.add(i, i * 160, 100.0 + late + i * 0.02)
        s.close(end=100.0 + late + 10 * 0.02)
        assert s.max_gap == pytest.approx(max(late, 0.02)), late
    unknown = rtp.RtpStats()  # no start known: only what lies between and after arrivals
    unknown.add(0, 0, 101.0)
    assert unknown.max_gap == 0.0


def test_rtp_packet_roundtrip():
    pkt = rtp.build_packet(5, 800, 0xABCD)
    assert len(pkt) == 12 + 160 and rtp.parse_header(pkt) == (5, 800, 0xABCD)
    assert rtp.parse_header(b"junk") is None


def test_tcp_framing_splits_by_content_length():
    from harness.sip.framing import split_stream
    a = b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 3\r\n\r\nabc"
    b = b"SIP/2.0 200 OK\r\nl: 0\r\n\r\n"
    msgs, rest = split_stream(b"\r\n" + a + b + a[:10])
    assert msgs == [a, b] and rest == a[:10]
    assert split_stream(a[:-1]) == ([], a[:-1])


def test_a_tcp_transport_reads_messages_in_order_when_one_chunk_holds_several():
    import socket
    from harness.sip.transport import TcpTransport
    a = b"SIP/2.0 100 Trying\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    b = a.replace(b"100 Trying", b"180 Ringing")
    c = a.replace(b"100 Trying", b"200 OK")
    server = socket.create_server(("127.0.0.1", 0))
    t = TcpTransport(socket.create_connection(server.getsockname()))
    theirs, _ = server.accept()
    server.close()
    theirs.sendall(a + b + c[:20])  # two whole messages and the start of a third
    assert [t.read(1.0)[0], t.read(1.0)[0]] == [a, b]
    theirs.sendall(c[20:])
    assert t.read(1.0)[0] == c
    t.close(), theirs.close()
