"""process.* injectors against real sandbox processes: inject, observe from outside, undo, observe."""
import pytest

from harness.faults.base import FaultError, lookup
from harness.ops.procs import proc_state, read_pid
from harness.runner.engine import new_journal, recover
from harness.scenario.inventory import split_address
from harness.sip.probe import options_ping
from harness.sip.uac import CallOptions, place_call
from tests.conftest import wait_for


def build(inv, type_, target, **params):
    cls = lookup(type_)
    return cls(f"{type_}-test", inv.find(target), cls.Params.model_validate(params))


def answers(inv, name):
    return options_ping(split_address(inv.find(name).sip), timeout=0.3) == 200


def test_kill_stops_the_node_and_undo_restarts_it(sandbox_up):
    inj = build(sandbox_up, "process.kill", "pbx-1")
    recipe = inj.recipe()
    inj.inject()
    assert inj.verify()
    assert proc_state(recipe["pid"]) is None
    assert not answers(sandbox_up, "pbx-1")
    # the SBC notices and sends new calls to pbx-2 only
    rec = wait_for(lambda: (r := place_call(sandbox_up.entry_points[0].addr,
                                            CallOptions(hold=0.1, rtp=False),
                                            node_of=lambda c: c)).answered and
                   r.pdd < 0.5 and r, 10, what="a fast call after the kill")
    assert "127" in rec.node and rec.node.endswith(sandbox_up.find("pbx-2").sip)
    note = type(inj).undo(recipe)
    assert "restarted" in note
    assert answers(sandbox_up, "pbx-1")
    assert read_pid(recipe["pidfile"]) != recipe["pid"]
    assert "already running" in type(inj).undo(recipe)  # idempotent


def test_pause_hangs_the_node_and_undo_resumes_it(sandbox_up):
    inj = build(sandbox_up, "process.pause", "pbx-2")
    recipe = inj.recipe()
    inj.inject()
    assert inj.verify()
    assert proc_state(recipe["pid"])[0] == "T"
    assert not answers(sandbox_up, "pbx-2")
    assert "SIGCONT" in type(inj).undo(recipe)
    wait_for(lambda: answers(sandbox_up, "pbx-2"), 5, what="pbx-2 to answer after SIGCONT")
    assert read_pid(recipe["pidfile"]) == recipe["pid"]  # same process, resumed


def test_kill_of_a_carrier_cuts_that_path_only(sandbox_up):
    inj = build(sandbox_up, "process.kill", "carrier-b", signal="SIGTERM")
    recipe = inj.recipe()
    inj.inject()
    assert inj.verify()
    cut = place_call(sandbox_up.find("carrier-b").addr, CallOptions(hold=0.1, rtp=False,
                                                                   invite_timeout=1.5))
    ok = place_call(sandbox_up.find("carrier-a").addr, CallOptions(hold=0.1, rtp=False))
    assert cut.outcome == "failed" and ok.outcome == "completed"
    type(inj).undo(recipe)
    again = place_call(sandbox_up.find("carrier-b").addr, CallOptions(hold=0.1, rtp=False))
    assert again.outcome == "completed"


def test_recover_undoes_what_the_journal_holds_open(sandbox_up):
    journal = new_journal()
    kill = build(sandbox_up, "process.kill", "pbx-1")
    pause = build(sandbox_up, "process.pause", "pbx-2")
    for inj in (kill, pause):
        journal.intent("crashed-run", inj.fault_id, inj.type, inj.target.name, inj.recipe())
        inj.inject()
        assert inj.verify()
    # the harness "died" here: nothing closed the journal entries
    assert len(journal.open_faults()) == 2
    done = recover(journal)
    assert len(done) == 2 and not any(n.startswith("FAILED") for _, n in done)
    assert journal.open_faults() == []
    assert answers(sandbox_up, "pbx-1")
    wait_for(lambda: answers(sandbox_up, "pbx-2"), 5, what="pbx-2 resumed")
    assert recover(journal) == []  # twice is harmless


def test_fault_on_a_dead_target_is_refused(sandbox_up):
    inj = build(sandbox_up, "process.kill", "pbx-1")
    inj.inject()
    assert inj.verify()
    with pytest.raises(FaultError, match="not running"):
        build(sandbox_up, "process.kill", "pbx-1").recipe()


def test_pause_by_fixed_pid_and_systemd_is_detected(tmp_path):
    import subprocess
    import sys
    from harness.scenario.inventory import Node, ProcessRef
    child = subprocess.Popen([sys.executable, "-c", "import time\nwhile True: time.sleep(0.1)"])
    try:
        cls = lookup("process.pause")
        inj = cls("p", Node(name="worker", process=ProcessRef(pid=child.pid)), cls.Params())
        recipe = inj.recipe()
        inj.inject()
        assert inj.verify() and proc_state(child.pid)[0] == "T"
        assert "SIGCONT" in cls.undo(recipe)
        wait_for(lambda: proc_state(child.pid)[0] != "T", 5, what="resumed")
        kill = lookup("process.kill")
        with pytest.raises(FaultError, match="needs `process.start`"):
            kill("k", Node(name="worker", process=ProcessRef(pid=child.pid)), kill.Params()).recipe()
    finally:
        child.kill()
        child.wait()
    unit = cls("u", Node(name="svc", process=ProcessRef(systemd_unit="pbx.service")), cls.Params())
    from pathlib import Path
    if Path("/run/systemd/system").is_dir():
        assert unit.recipe()["unit"] == "pbx.service"
    else:
        with pytest.raises(FaultError, match="systemd is not running"):
            unit.recipe()
    with pytest.raises(ValueError, match="exactly one of"):
        ProcessRef(pid=5, pidfile="/x")
