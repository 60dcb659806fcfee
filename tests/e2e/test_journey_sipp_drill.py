"""A journey drill (`drill run`) against a far end that is not ours: SIPp as the contact
centre (tests/integration/sipp/uas-contact-centre.xml), declared in a user's own inventory
with its markers. calls.csv holds, call by call, the queue wait SIPp drew and logged (within
40 ms) and the group its key names; summary.json's ASA is the mean of SIPp's waits."""
import re
import signal
import subprocess
from pathlib import Path

import pytest
import yaml

from harness.report.calls_csv import read_calls_csv
from tests.conftest import free_udp_port, need, run_scenario

SIPP = Path(__file__).parent.parent / "integration" / "sipp" / "uas-contact-centre.xml"


def test_a_journey_drill_reads_the_waits_a_sipp_contact_centre_sent(isolated, tmp_path):
    port, log = free_udp_port(), tmp_path / "sipp.log"
    sipp = subprocess.Popen([need("sipp"), "-sf", str(SIPP), "-i", "127.0.0.1", "-p", str(port),
                             "-mi", "127.0.0.1", "-nostdin", "-timeout", "60s", "-trace_logs",
                             "-log_file", str(log)], cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        (tmp_path / "inv.yaml").write_text(yaml.safe_dump({
            "name": "sipp-contact-centre", "nodes": [], "allowlist": [],
            "entry_points": [{"name": "cc", "address": f"127.0.0.1:{port}", "prompt_marker": "1",
                              "agent_marker": "9", "agent_groups": {"2": "care"},
                              "media_check": False, "answers_options": False}]}))
        res, run, summary = run_scenario(tmp_path, {
            "name": "journey-against-sipp", "target": "inv.yaml", "duration": "8s", "seed": 3,
            "load": {"calls_per_second": 1, "journey": {"talk": "500ms", "longest": "20s"}},
            # SIPp sends its recordings of keys and no voice: the voice targets are not this
            # test's business
            "sla": {"agent_answer_rate": "90%", "mos_p5": None, "dead_air": None}})
    finally:
        sipp.send_signal(signal.SIGTERM)
        sipp.wait(10)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    waits = {m[1]: float(m[2]) / 1000
             for m in re.finditer(r"(\S+) wait_ms ([0-9.]+)", log.read_text())}
    calls = [c for c in read_calls_csv(run / "calls.csv") if c.journey]
    assert len(calls) >= 6
    for c in calls:
        assert c.agent_at - c.queued_at == pytest.approx(waits[c.call_id], abs=0.04), c.call_id
        assert c.answered_by == "care", c.call_id
    j = summary["journey"]["overall"]
    mine = [waits[c.call_id] for c in calls]
    assert j["asa"] == pytest.approx(sum(mine) / len(mine), abs=0.04)
    assert j["destinations"] == {"agents: care": 1.0}
