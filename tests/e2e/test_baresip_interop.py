"""Interop with a real TLS + SRTP user agent (Debian's baresip), both ways, judged against
baresip's own RTP counts: our callers to a baresip that answers by itself, and a baresip
calling into the sandbox SBC (TLS, digest, SRTP ended at the SBC) as a carrier's phone would."""
import json
import os
import re
from pathlib import Path

from harness.lab import sandbox
from harness.lab.certs import server_certificate
from harness.sip.transport import TlsSettings
from harness.sip.uac import CallOptions, place_call
from tests.baresip_ua import Baresip

HOLD = 4.0


def test_our_srtp_calls_over_tls_to_baresip(isolated, tmp_path):
    host = f"{os.environ['HOTLINE_DRILL_SANDBOX_BLOCK']}.60"
    ca, cert, key = server_certificate(tmp_path / "tls", "ua.interop", host)
    (tmp_path / "ua.pem").write_bytes(cert.read_bytes() + key.read_bytes())
    account = (f"<sip:hotline@{host}:5070;transport=tls>;regint=0;answermode=auto;"
               "mediaenc=srtp-mand;audio_codecs=PCMU")
    opts = CallOptions(hold=HOLD, transport="tls", tls=TlsSettings(str(ca), True, "ua.interop"),
                       srtp="require", invite_timeout=4, bye_timeout=2)
    with Baresip(tmp_path / "ua", f"{host}:5070", account, ca_file=ca,
                 certificate=tmp_path / "ua.pem", seconds=60) as ua:
        recs = [place_call((host, 5071), opts, "to-baresip") for _ in range(2)]  # TLS: port + 1
        ua.wait_for(re.compile(r"(errors:.*){2}", re.S), 5)  # both calls' counts printed
        theirs, log = ua.calls(), ua.text()
    assert "SRTP is Enabled (cryptosuite=AES_CM_128_HMAC_SHA1_80)" in log
    assert len(theirs) == 2, log[-2000:]
    # one TLS connection carried both calls (the second reused the first's)
    assert [r.tls_reused for r in recs] == [False, True] and recs[0].tls_handshake_ms
    for r, t in zip(recs, theirs):
        assert r.outcome == "completed" and r.srtp, r
        assert r.srtp_auth_failed == 0 and t.errors == 0
        # baresip read every packet we sent (after SRTP authentication: none failed), and we
        # read every one it sent while the call was up (it starts and stops a little apart)
        assert abs(t.received - r.rtp_sent) <= 3, (t, r.rtp_sent)
        assert t.sent - 6 <= r.rtp_received <= t.sent, (t, r.rtp_received)
        assert r.rtp_received >= HOLD / 0.02 - 10


def test_baresip_calls_in_through_the_sbc_over_tls_with_digest_and_srtp(isolated, tmp_path):
    cfg = sandbox.SandboxConfig(srtp="on", tls=True, auth=True)
    inv = sandbox.up(cfg)
    tls = next(e for e in inv.entry_points if e.name == "carrier-tls")
    host, port = tls.addr
    password = Path(tls.auth[0].password_file).read_text().strip()
    account = (f"<sip:{tls.auth[0].username}@{host};transport=tls>;regint=0;"
               f"auth_pass={password};mediaenc=srtp-mand;audio_codecs=PCMU")
    ua_host = f"{os.environ['HOTLINE_DRILL_SANDBOX_BLOCK']}.60"
    with Baresip(tmp_path / "ua", f"{ua_host}:5070", account, ca_file=Path(tls.tls.ca_file),
                 commands=(f"/dial sip:hotline@{host}:{port};transport=tls",),
                 seconds=int(HOLD) + 3) as ua:
        ua.wait_for("Call established", 10)
        assert ua.proc.wait(20) == 0  # -t ends it: the call hung up with a BYE
        theirs, log = ua.calls(), ua.text()
    sandbox.down()
    assert "SRTP is Enabled (cryptosuite=AES_CM_128_HMAC_SHA1_80)" in log
    assert len(theirs) == 1 and theirs[0].errors == 0, log[-2000:]
    assert theirs[0].received >= HOLD / 0.02 and theirs[0].sent >= HOLD / 0.02
    # the SBC's own counts: it challenged the call and let it through, ended its SRTP with no
    # packet failing authentication; the PBX answered it and got its BYE
    stats = json.loads((cfg.folder / "sbc.stats.json").read_text())
    assert stats["_auth"]["challenged"] == 1 and stats["_auth"]["authenticated"] == 1
    assert stats["_srtp"] == {"calls": 1, "auth_failed": 0}
    pbx = [json.loads((cfg.folder / f"{n}.stats.json").read_text()) for n in ("pbx-1", "pbx-2")]
    assert sum(p["answered"] for p in pbx) == 1 and sum(p["byes"] for p in pbx) == 1
