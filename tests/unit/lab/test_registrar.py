"""The sandbox registrar's location table, REGISTER by REGISTER, and what a phone reads from
its answers."""
from harness.lab.registrar import Location, read_location
from harness.sip.message import SipMessage
from harness.sip.register import _retry_after, granted_expiry


def register(user: str, port: int, expires: int | None = None, in_contact: int | None = None):
    m = SipMessage(method="REGISTER", uri="sip:hotline.test")
    contact = f"<sip:{user}@127.0.0.1:{port}>" + (f";expires={in_contact}" if in_contact is not None else "")
    m.headers = [("Via", "SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKx"),
                 ("From", f"<sip:{user}@hotline.test>;tag=a"), ("To", f"<sip:{user}@hotline.test>"),
                 ("Call-ID", f"reg-{user}"), ("CSeq", "1 REGISTER"), ("Contact", contact)]
    if expires is not None:
        m.headers.append(("Expires", str(expires)))
    return m


def test_register_refresh_expire_and_leave(tmp_path):
    path = tmp_path / "location.json"
    loc = Location(str(path))
    ok = loc.register(register("a1", 6001, expires=60), now=100.0)
    assert ok.status == 200 and granted_expiry(ok, 60) == 60
    assert loc.register(register("a2", 6002, in_contact=30), now=100.0).status == 200
    assert set(read_location(path, now=101.0)) == {"sip:a1@hotline.test", "sip:a2@hotline.test"}
    assert read_location(path, now=131.0) == {"sip:a1@hotline.test": {
        "contact": "sip:a1@127.0.0.1:6001", "expires_at": 160.0}}  # a2 lapsed at 130
    loc.register(register("a1", 6001, expires=60), now=150.0)  # a refresh
    assert loc.counts["refreshed"] == 1 and read_location(path, now=200.0) != {}
    brief = loc.register(register("a3", 6003, expires=5), now=150.0)
    assert brief.status == 423 and brief.get("min-expires") == "10"
    assert loc.register(register("a1", 6001, expires=0), now=151.0).status == 200
    assert loc.counts["unregistered"] == 1 and read_location(path, now=152.0) == {}


def test_a_phone_reads_the_expiry_granted_and_retry_after():
    ok = SipMessage(status=200, reason="OK")
    ok.headers = [("Contact", "<sip:a1@127.0.0.1:6001>;expires=45"), ("Expires", "90")]
    assert granted_expiry(ok, 60) == 45  # the Contact's own wins
    ok.headers = [("Expires", "90")]
    assert granted_expiry(ok, 60) == 90
    busy = SipMessage(status=503, reason="Service Unavailable")
    busy.headers = [("Retry-After", "18;duration=3600")]
    assert _retry_after(busy) == 18.0 and _retry_after(None) is None
