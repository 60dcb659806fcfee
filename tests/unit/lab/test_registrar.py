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


def test_past_its_limit_the_registrar_answers_503_with_retry_after(tmp_path):
    loc = Location(str(tmp_path / "location.json"), limit=3, retry_after=7)
    answers = [loc.register(register(f"a{i}", 6000 + i, expires=60), now=100.0) for i in range(5)]
    assert [a.status for a in answers] == [200, 200, 200, 503, 503]
    assert answers[3].get("retry-after") == "7" and loc.counts["overloaded"] == 2
    assert len(read_location(tmp_path / "location.json", now=101.0)) == 3  # the shed ones not in


def test_a_wildcard_unregister_takes_the_record_out(tmp_path):
    loc = Location(str(tmp_path / "location.json"))
    loc.register(register("a1", 6001, expires=60), now=100.0)
    leave = register("a1", 6099, expires=0)
    leave.set("Contact", "*")
    assert loc.register(leave, now=101.0).status == 200
    assert read_location(tmp_path / "location.json", now=102.0) == {}
    assert loc.contact_of("a1", now=102.0) is None


def test_the_contact_of_an_agents_number():
    loc = Location()
    loc.register(register("agent0001", 6001, expires=60), now=100.0)
    assert loc.contact_of("agent0001", now=101.0) == "sip:agent0001@127.0.0.1:6001"
    assert loc.contact_of("agent0002", now=101.0) is None
    assert loc.contact_of("agent0001", now=161.0) is None  # lapsed
