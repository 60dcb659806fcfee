"""A registration storm against a registrar that sheds it (the sandbox SBC with a REGISTER
limit: past 10 a second, 503 with Retry-After: 2): forty phones lose their flows at once
and REGISTER again together. Phones that honour Retry-After come back in waves two seconds
apart, no phone trying again sooner than it was told; phones that ignore it and retry after
0.5 s send more REGISTERs and meet more 503s for the same forty phones. The registrar's own
count of 503s is the phones' count, and its table holds each phone's new flow."""
import json
import signal
import subprocess
import sys
import time

from harness.lab.registrar import read_location
from harness.load.agents import Phones
from harness.metrics.registration import back_after
from harness.sip.probe import options_ping
from harness.sip.register import PhoneSpec
from tests.conftest import free_udp_port, wait_for

AGENTS, LIMIT, RETRY_AFTER = 40, 10, 2


def flow_contact(phone) -> str | None:
    """The Contact of the phone's flow now; None between a lost flow and its next REGISTER
    (the phone's own thread opens the new one)."""
    t = phone.transport
    return None if t is None else f"sip:{phone.user}@127.0.0.1:{t.port}"


def storm(tmp_path, honour: bool) -> tuple[list, dict, list, float]:
    """One storm: (the phones' attempts after it, the registrar's counts, the phones, when)."""
    tmp_path.mkdir()
    port, stats = free_udp_port(), tmp_path / "stats.json"
    proc = subprocess.Popen([sys.executable, "-m", "harness.lab.sbc", "--listen",
                             f"127.0.0.1:{port}", "--node", "pbx-1=127.0.0.1:9",
                             "--health-check", "off", "--register-limit", str(LIMIT),
                             "--retry-after", str(RETRY_AFTER), "--stats-file", str(stats),
                             "--location-file", str(tmp_path / "location.json")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: options_ping(("127.0.0.1", port), timeout=0.3) == 200, 10, what="registrar")
    spec = PhoneSpec(("127.0.0.1", port), "hotline.test", expires=60, retry=0.5, timeout=1.0,
                     honour_retry_after=honour)
    phones = Phones([f"agent{i:02d}" for i in range(AGENTS)], spec)
    try:
        phones.start(spread=AGENTS / LIMIT * 1.5)  # a boot within the registrar's limit
        wait_for(lambda: len(read_location(tmp_path / "location.json")) == AGENTS, 15,
                 what="every phone registered")
        # the bucket full again: a second's worth of tokens after the last boot REGISTER
        last = max(a.ended_at for a in phones.attempts)
        wait_for(lambda: time.time() > last + 1.0, 5, what="the registrar's limit to refill")
        at = time.time()
        phones.storm()
        wait_for(lambda: {e["contact"] for e in read_location(tmp_path / "location.json").values()}
                 == {flow_contact(p) for p in phones.phones},
                 20, what="every phone registered from its new flow")
    finally:
        phones.stop(unregister=False)
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    counts = json.loads(stats.read_text())["_registrar"]
    return phones.attempts, counts, phones.phones, at


def test_phones_that_honour_retry_after_come_back_in_waves_and_fewer_register(tmp_path):
    good, good_counts, good_phones, good_at = storm(tmp_path / "honour", honour=True)
    bad, bad_counts, _, bad_at = storm(tmp_path / "ignore", honour=False)
    for attempts, counts in ((good, good_counts), (bad, bad_counts)):
        assert counts["overloaded"] == sum(a.status == 503 for a in attempts) > 0
    for p in good_phones:  # told to wait 2 s, none came sooner
        mine = sorted(p.attempts, key=lambda a: a.sent_at)
        for told, then in zip(mine, mine[1:]):
            if told.status == 503:
                assert told.retry_after == RETRY_AFTER
                assert then.sent_at >= told.ended_at + RETRY_AFTER - 0.01, p.user
    after_good = [a for a in good if a.sent_at >= good_at]
    after_bad = [a for a in bad if a.sent_at >= bad_at]
    print(f"storm: honouring {len(after_good)} REGISTERs, ignoring {len(after_bad)}")
    # the waves: at most a second's worth (the bucket's burst) back in each 2 s step
    back = back_after(after_good, good_at, [p.user for p in good_phones])
    waves = AGENTS // LIMIT  # 40, 30, 20, 10 REGISTERs: 100 (fewer if the bucket refilled
    assert 0.9 * 100 <= len(after_good) <= 100  # during a wave)
    assert back["never"] == [] and \
        (waves - 1) * RETRY_AFTER - 0.5 <= back["p99"] <= (waves - 1) * RETRY_AFTER + 1.0, back
    assert sum(a.status == 503 for a in after_bad) > sum(a.status == 503 for a in after_good)
    assert len(after_bad) > len(after_good)
