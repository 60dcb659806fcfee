"""A phone's REGISTER that cannot even be sent (a destination the kernel refuses: port 0)
is one ineffective attempt and the phone tries again after its retry timer; its thread
lives on. The un-REGISTER that `drill recover` sends names every binding (Contact: *)."""
from harness.sip.register import Phone, PhoneSpec, _RegisterDialog
from harness.sip.transport import UdpTransport


def test_a_register_the_kernel_refuses_is_ineffective_and_tried_again():
    phone = Phone("agent01", PhoneSpec(("127.0.0.1", 0), "hotline.test", retry=3.0, timeout=0.5))
    try:
        a = phone.step()
    finally:
        phone.close()
    assert a.status == 0 and a.expires == 0
    assert phone.due - a.ended_at == 3.0


def test_leaving_everywhere_names_every_binding():
    spec = PhoneSpec(("127.0.0.1", 5060), "hotline.test")
    t = UdpTransport.open(spec.registrar, "127.0.0.1", 1.0)
    try:
        d = _RegisterDialog(t, spec, "agent01")
        assert d.request("REGISTER").get("contact") == f"<sip:agent01@127.0.0.1:{t.port}>"
        d.everywhere, d.expires = True, 0
        msg = d.request("REGISTER")
        assert msg.get("contact") == "*" and msg.get("expires") == "0"
        assert msg.get("to") == "<sip:agent01@hotline.test>"
    finally:
        t.close()
