"""CI release gates: the pytest plugin (one item per SLA target) and `drill run --gate`."""
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.conftest import last_run

SCENARIO = """\
name: gate-steady
target: sandbox
duration: 8s
load: {calls_per_second: 3, hold: 1s}
sla:
  answer_rate: 95%
  pdd_p95: 1ms
  dropped_call_rate: 0%
"""


def test_pytest_collects_scenarios_with_one_item_per_sla_target(isolated, tmp_path):
    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "gate-steady.yaml").write_text(SCENARIO)
    junit = tmp_path / "junit.xml"
    res = subprocess.run([sys.executable, "-m", "pytest", str(folder), "-p", "no:cacheprovider",
                          f"--junitxml={junit}", "-q", "--drill-output", str(tmp_path / "runs")],
                         capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert res.returncode == 1, res.stdout[-2000:]  # pdd_p95 <= 1 ms cannot be met
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    # the voice is judged by default when calls carry media (they do: rtp_share 100 %)
    assert set(cases) == {"answer_rate", "failover_time", "traffic_shift", "dropped_call_rate", "pdd_p95",
                          "mos_p5", "dead_air", "one_way_audio", "steady_state_after"}
    failed = {n for n, c in cases.items() if c.find("failure") is not None}
    assert failed == {"pdd_p95"}
    assert "target <= 0.001s" in cases["pdd_p95"].find("failure").get("message")
    last_run(tmp_path / "runs")  # the drill ran once for all items (before it: only inconclusive runs)


def test_scenario_yaml_under_tests_is_not_collected_unless_named():
    res = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p",
                          "no:cacheprovider", str(Path(__file__).parent)],
                         capture_output=True, text=True, timeout=60)
    assert ".yaml::" not in res.stdout and "test_drills.py" in res.stdout


def test_gate_prints_one_line_and_exits_non_zero_on_a_miss(isolated, tmp_path):
    path = tmp_path / "gate.yaml"
    path.write_text(SCENARIO)
    res = subprocess.run([sys.executable, "-m", "harness.cli", "run", "--gate", str(path),
                          "-o", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    last = res.stdout.strip().splitlines()[-1]
    assert res.returncode == 1
    assert last.startswith("DRILL FAIL gate-steady: pdd_p95: measured ") and "target <= 0.001s" in last
    path.write_text(SCENARIO.replace("pdd_p95: 1ms", "pdd_p95: 2s"))
    ok = subprocess.run([sys.executable, "-m", "harness.cli", "run", "--gate", str(path),
                         "-o", str(tmp_path / "out2")], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0
    assert ok.stdout.strip().splitlines()[-1].startswith("DRILL PASS gate-steady: 9 SLA targets met")
