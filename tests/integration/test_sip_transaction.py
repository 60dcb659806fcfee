"""The SIP seam (transport, client transaction, dialog) against a scripted far end on real
sockets of 127.0.0.1: retransmission over UDP and not over TCP, the ACK of a failure sent by
the transaction, and the one hook where a 401/407 challenge is answered."""
import socket
import threading
import time

from harness.sip.dialog import Dialog
from harness.sip.message import parse, response_to
from harness.sip.transaction import T1, ClientTransaction
from harness.sip.transport import open_transport


def udp_far_end():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    return sock


def read(sock):
    data, addr = sock.recvfrom(65535)
    return parse(data), addr


def test_udp_retransmits_until_a_provisional_then_acks_a_failure_in_the_transaction():
    far = udp_far_end()
    t = open_transport("udp", far.getsockname(), "127.0.0.1", 2.0)
    d = Dialog(t, far.getsockname(), callee="hotline", call_id="c1@test")
    invite = d.request("INVITE", b"v=0\r\n")
    seen = []

    def script():
        first, addr = read(far)
        seen.append(time.monotonic())
        again, _ = read(far)  # timer A: the same request again after T1
        seen.append(time.monotonic())
        assert again.branch == first.branch
        far.sendto(response_to(first, 100).to_bytes(), addr)
        far.sendto(response_to(first, 486, to_tag="x").to_bytes(), addr)
        ack, _ = read(far)
        seen.append(ack)

    th = threading.Thread(target=script)
    th.start()
    final = ClientTransaction(t, invite, far.getsockname()).run(4.0)
    th.join(5)
    assert final is not None and final.status == 486
    assert T1 * 0.8 <= seen[1] - seen[0] <= T1 * 2
    ack = seen[2]
    # RFC 3261 §17.1.1.3: same branch and CSeq number, the response's To (with its tag)
    assert ack.method == "ACK" and ack.branch == invite.branch and ack.cseq == (1, "ACK")
    assert "tag=x" in ack.get("to") and ack.uri == invite.uri and ack.call_id == "c1@test"
    t.close(), far.close()


def test_tcp_sends_a_request_once():
    server = socket.create_server(("127.0.0.1", 0))
    t = open_transport("tcp", server.getsockname(), "127.0.0.1", 2.0)
    peer, _ = server.accept()
    d = Dialog(t, server.getsockname(), callee="hotline", call_id="c2@test")
    req = d.request("OPTIONS")
    assert ";transport=tcp" in req.get("contact") and "SIP/2.0/TCP" in req.top_via
    final = ClientTransaction(t, req, server.getsockname()).run(3 * T1 + 0.2)
    assert final is None
    peer.settimeout(0.5)
    got = b""
    try:
        while chunk := peer.recv(65535):
            got += chunk
    except socket.timeout:
        pass
    assert got.count(b"OPTIONS sip:") == 1  # a reliable transport: never retransmitted
    t.close(), peer.close(), server.close()


class OneCredential:
    """The challenge hook as digest authentication will fill it: the request again with
    the next CSeq, the same Call-ID and From tag, and a header answering the challenge."""

    def __init__(self):
        self.challenges = []

    def answer(self, request, challenge, dialog):
        self.challenges.append(challenge.status)
        if len(self.challenges) > 1:
            return None
        again = dialog.request(request.method, request.body)
        again.headers.append(("Proxy-Authorization", "Digest username=\"drill\""))
        return again


def test_a_challenge_goes_to_the_dialogs_hook_and_the_answer_is_a_new_transaction():
    far = udp_far_end()
    t = open_transport("udp", far.getsockname(), "127.0.0.1", 2.0)
    creds = OneCredential()
    d = Dialog(t, far.getsockname(), callee="hotline", call_id="c3@test", challenges=creds)
    got = []

    def script():
        first, addr = read(far)
        far.sendto(response_to(first, 407, to_tag="a").to_bytes(), addr)
        got.append(read(far)[0])  # the ACK of the challenge
        second, _ = read(far)
        got.append(second)
        far.sendto(response_to(second, 200, to_tag="b").to_bytes(), addr)

    th = threading.Thread(target=script)
    th.start()
    sent, final = d.transact(d.request("INVITE", b"v=0\r\n"), 4.0)
    th.join(5)
    ack, second = got
    assert final is not None and final.status == 200 and creds.challenges == [407]
    assert ack.method == "ACK" and ack.cseq == (1, "ACK")
    assert second.cseq == (2, "INVITE") and second.call_id == "c3@test"
    assert second.get("from") == sent.get("from") and second.branch != ack.branch
    assert second.get("proxy-authorization") and d.challenged and sent is not None
    assert sent.cseq == (2, "INVITE")  # the ACK of the 2xx and the BYE follow from here
    d.ack_2xx(sent)
    assert read(far)[0].cseq == (2, "ACK")
    assert d.request("BYE").cseq == (3, "BYE")
    t.close(), far.close()


def test_without_credentials_a_challenge_is_the_final_response():
    far = udp_far_end()
    t = open_transport("udp", far.getsockname(), "127.0.0.1", 2.0)
    d = Dialog(t, far.getsockname(), callee="hotline", call_id="c4@test")

    def script():
        first, addr = read(far)
        far.sendto(response_to(first, 401, to_tag="a").to_bytes(), addr)
        read(far)  # its ACK

    th = threading.Thread(target=script)
    th.start()
    _, final = d.transact(d.request("INVITE", b"v=0\r\n"), 4.0)
    th.join(5)
    assert final.status == 401 and not d.challenged
    t.close(), far.close()


def challenge_407(req, nonce, stale=False):
    resp = response_to(req, 407, to_tag="a")
    resp.headers.append(("Proxy-Authenticate", f'Digest realm="sbc", nonce="{nonce}", '
                         f'qop="auth", algorithm=SHA-256' + (", stale=true" if stale else "")))
    return resp


def test_digest_answers_a_stale_nonce_again_and_gives_up_on_refused_credentials():
    from harness.sip.digest import Credential, DigestCredentials, parse_challenge, response
    far = udp_far_end()
    t = open_transport("udp", far.getsockname(), "127.0.0.1", 2.0)
    creds = DigestCredentials([Credential("drill", "s3cret", realm="sbc")])
    d = Dialog(t, far.getsockname(), callee="hotline", call_id="c5@test", challenges=creds)
    seen = []

    def script():
        first, addr = read(far)
        far.sendto(challenge_407(first, "n1").to_bytes(), addr)
        read(far)  # ACK
        second, _ = read(far)
        seen.append(second)
        far.sendto(challenge_407(second, "n2", stale=True).to_bytes(), addr)  # nonce expired
        read(far)
        third, _ = read(far)
        seen.append(third)
        far.sendto(challenge_407(third, "n3").to_bytes(), addr)  # refused: not stale
        read(far)

    th = threading.Thread(target=script)
    th.start()
    _, final = d.transact(d.request("INVITE", b"v=0\r\n"), 4.0)
    th.join(5)
    assert final.status == 407 and creds.refused == {"sbc"}
    second, third = seen
    assert (second.cseq[0], third.cseq[0]) == (2, 3)
    # the far end checks the digest with the password it knows
    for req, nonce in ((second, "n1"), (third, "n2")):
        value = req.get("proxy-authorization")
        params = dict(p.strip().split("=", 1) for p in value[len("Digest "):].split(","))
        ch = parse_challenge(f'Digest realm="sbc", nonce="{nonce}", algorithm=SHA-256')
        want = response(ch, "drill", "s3cret", "INVITE", req.uri,
                        cnonce=params["cnonce"].strip('"'), nc=int(params["nc"], 16), qop="auth")
        assert params["response"].strip('"') == want and params["uri"].strip('"') == req.uri
    t.close(), far.close()
