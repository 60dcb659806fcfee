"""A fault family from another package, found through the `hotline_drill.faults` entry point:
the example plug-in under examples/ is installed as a user would and runs in a real drill."""
import subprocess
import sys
from pathlib import Path

from harness.metrics.records import read_events
from tests.conftest import run_scenario

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "drill-plugin-example"


def scenario(flag: Path) -> dict:
    return {"name": "plugin-flag", "target": "sandbox", "duration": "6s",
            "description": "The example plug-in's maintenance flag on pbx-1.",
            "load": {"calls_per_second": 4, "hold": "500ms", "rtp_share": "0%"},
            "faults": [{"id": "flag-pbx-1", "type": "flag.maintenance", "target": "pbx-1",
                        "at": "2s", "duration": "2s", "path": str(flag)}],
            "sla": {"dropped_call_rate": None}}


def test_a_fault_family_shipped_as_its_own_package(isolated, tmp_path, monkeypatch):
    flag = tmp_path / "pbx-1.maintenance"
    # not installed: the type is unknown, and the drill says so before anything runs
    res = run_refused(tmp_path / "before", scenario(flag))
    assert res.returncode == 2 and "unknown fault type 'flag.maintenance'" in res.stderr

    site = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                          "--target", str(site), str(EXAMPLE)],
                         capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    monkeypatch.setenv("PYTHONPATH", str(site))  # as if installed beside hotline-drill

    res, run, summary = run_scenario(tmp_path / "after", scenario(flag))
    assert res.returncode in (0, 1), res.stdout[-3000:] + res.stderr[-3000:]
    events = read_events(run / "events.jsonl")
    injected = [e for e in events if e["event"] == "fault_injected"]
    assert len(injected) == 1 and injected[0]["verified"] is True
    assert injected[0]["description"].startswith(f"raise the maintenance flag {flag}")
    rolled = [e for e in events if e["event"] == "fault_rolled_back"]
    assert rolled and rolled[0]["note"] == f"removed {flag}"
    assert not flag.exists()  # nothing left behind
    assert summary["faults"][0]["type"] == "flag.maintenance"


def run_refused(folder: Path, data: dict):
    import yaml
    folder.mkdir(parents=True)
    path = folder / "plugin-flag.yaml"
    path.write_text(yaml.safe_dump(data))
    return subprocess.run([sys.executable, "-m", "harness.cli", "run", str(path), "-o",
                           str(folder / "out")], capture_output=True, text=True, timeout=60)
