"""Calls to agents' own numbers through the sandbox SBC's registrar, held to both ends' own
accounts: each call reaches the phone registered for the number it dialled (the caller's
record names the agent, the desk's record names the same agent for the same Call-ID), an
agent on a call answers a second one 486, a number with no phone registered gets 404, a
call cancelled while the phone rings is never answered and leaves the agent free."""
import signal
import threading
from dataclasses import replace

from harness.lab.registrar import read_location
from harness.load.agent_desk import AgentDesk
from harness.load.agents import Phones
from harness.sip.digest import Credential
from harness.sip.register import PhoneSpec
from harness.sip.uac import CallOptions, end_call, place_call, start_call
from tests.conftest import free_udp_port, wait_for
from tests.integration.test_registration import start_registrar

CRED = (Credential("agent", "s3cret-for-phones", "sandbox"),)
RING = 0.3


def test_calls_reach_the_agent_registered_for_the_number_dialled(tmp_path):
    port = free_udp_port()
    proc = start_registrar(port, tmp_path)
    desk = AgentDesk("127.0.0.1", ring=RING).open()
    users = [f"agent{i:02d}" for i in range(1, 5)]
    phones = Phones(users, PhoneSpec(("127.0.0.1", port), "sandbox", expires=60, credentials=CRED),
                    desk=desk)
    sbc = ("127.0.0.1", port)
    opts = CallOptions(hold=0.6, rtp=True, local_ip="127.0.0.1", credentials=CRED,
                       invite_timeout=4.0)
    try:
        phones.start()
        wait_for(lambda: len(read_location(tmp_path / "location.json")) == len(users), 10,
                 what="every phone registered")
        recs = []

        def call(u):
            recs.append(place_call(sbc, replace(opts, callee=u)))
        threads = [threading.Thread(target=call, args=(u,)) for u in users]
        for t in threads:
            t.start()
        for t in threads:
            t.join(15)
        # one agent, two calls: the second finds it busy
        first, held = start_call(sbc, replace(opts, callee=users[0], hold=2.0))
        busy = place_call(sbc, replace(opts, callee=users[0]))
        end_call(held)
        nobody = place_call(sbc, replace(opts, callee="agent99"))
        # the caller gives up while the phone rings: never answered, the agent free again
        gave_up = place_call(sbc, replace(opts, callee=users[1], invite_timeout=RING / 3))
        again = place_call(sbc, replace(opts, callee=users[1]))
    finally:
        phones.stop()
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    by_agent = {r.call_id: r.node for r in recs}
    assert sorted(by_agent.values()) == [f"sip:{u}@127.0.0.1:{desk.port}" for u in users]
    assert all(r.outcome == "completed" and r.rtp_received > 0 for r in recs), recs
    # the desk's own record: the same calls, each answered by the agent its caller dialled
    mine = {c: a.agent for c, a in desk.answered.items()}
    assert {c: mine[c] for c in by_agent} == \
        {c: node.partition(":")[2].partition("@")[0] for c, node in by_agent.items()}
    assert all(desk.answered[c].ended_at is not None for c in by_agent)
    assert first.answered and busy.status == 486 and desk.busy_refused == 1
    assert nobody.status == 404
    assert not gave_up.answered and gave_up.call_id not in desk.answered
    assert again.answered and mine[again.call_id] == users[1]
    assert set(mine) == set(by_agent) | {first.call_id, again.call_id}
    assert read_location(tmp_path / "location.json") == {}
