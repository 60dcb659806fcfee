"""`drill recover --list` and `--forget`: the journal after a crash, put right by hand."""
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from harness.cli import app
from harness.ops.state import state_home
from harness.runner.journal import Journal


def journal_with_an_open_fault(tmp_path, monkeypatch) -> Journal:
    monkeypatch.setenv("HOTLINE_DRILL_STATE", str(tmp_path / "state"))
    journal = Journal(state_home() / "journal.jsonl")
    # a fault whose undo cannot work any more: its fault type is not installed here
    journal.intent("run-1", "gone-1", "vanished.family", "pbx-1", {"container": "abc"})
    return journal


def test_list_shows_open_faults_and_undoes_nothing(tmp_path, monkeypatch):
    journal = journal_with_an_open_fault(tmp_path, monkeypatch)
    res = CliRunner().invoke(app, ["recover", "--list"])
    assert res.exit_code == 0 and "gone-1" in res.output and "vanished.family" in res.output
    assert [e["fault_id"] for e in journal.open_faults()] == ["gone-1"]


def test_forget_needs_a_reason_then_closes_the_entry(tmp_path, monkeypatch):
    journal = journal_with_an_open_fault(tmp_path, monkeypatch)
    res = CliRunner().invoke(app, ["recover"])
    assert res.exit_code != 0 and "could not be rolled back" in res.output  # stuck for ever
    res = CliRunner().invoke(app, ["recover", "--forget", "gone-1"])
    assert res.exit_code == 2 and "needs --reason" in res.output
    res = CliRunner().invoke(app, ["recover", "--forget", "nope", "--reason", "x"])
    assert res.exit_code == 2 and "no open fault 'nope'" in res.output
    res = CliRunner().invoke(app, ["recover", "--forget", "gone-1", "--reason",
                                   "container removed by hand"])
    assert res.exit_code == 0, res.output
    assert journal.open_faults() == []
    assert journal.entries()[-1]["note"] == "forgotten: container removed by hand"
    res = CliRunner().invoke(app, ["recover"])
    assert res.exit_code == 0 and "nothing to recover" in res.output


def test_two_sites_are_a_container_lab_and_a_drill_names_the_missing_lab(tmp_path, monkeypatch):
    monkeypatch.setenv("HOTLINE_DRILL_STATE", str(tmp_path / "state"))
    res = CliRunner().invoke(app, ["lab", "up", "--sites", "2"])
    assert res.exit_code == 2 and "add --docker" in res.output
    res = CliRunner().invoke(app, ["lab", "up", "--docker", "--sites", "3"])
    assert res.exit_code == 2  # one site or two
    scenario = tmp_path / "dr.yaml"
    scenario.write_text("name: dr\ntarget: lab-dr\nduration: 5s\n")
    res = CliRunner().invoke(app, ["validate", str(scenario)])  # planned from its definition
    assert res.exit_code == 0, res.output
    res = drill_run(scenario, tmp_path)  # run: the missing lab is named
    assert res.returncode == 2 and "drill lab up --docker --sites 2" in res.stdout


# -- plans without a running target --------------------------------------------------------
def test_lab_scenarios_validate_and_dry_run_with_no_lab_up(tmp_path, monkeypatch):
    monkeypatch.setenv("HOTLINE_DRILL_STATE", str(tmp_path / "state"))  # no inventory written
    res = CliRunner().invoke(app, ["validate", "scenarios/lab-dr-site-loss.yaml",
                                   "scenarios/lab-pbx-kill.yaml"])
    assert res.exit_code == 0, res.output
    assert "ok scenarios/lab-dr-site-loss.yaml" in res.output
    # the pbx-kill fault (10 s) cannot show a shift up to the default 30 s target: noted
    assert "lab-pbx-kill.yaml:17: faults.0.duration: 10s is shorter than the traffic_shift" \
        in res.output.replace("\n", " ")
    res = CliRunner().invoke(app, ["run", "--dry-run", "scenarios/lab-dr-site-loss.yaml"])
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert "the two-site lab is not up: planned from its definition" in out
    assert "probe cdr-db: postgres heartbeat writes, 10/s" in out
    # every target judged, with its threshold; the ones the file does not set marked default
    assert "rto <= 30.000s," in out and "answer_rate >= 80.0%," in out
    assert "dropped_call_rate <= 1.0% (default)" in out and "steady_state_after required (default)" in out
    assert "not judged" in out and "failover_time" in out.split("not judged")[1]


def test_every_shipped_scenario_dry_runs_with_nothing_up(tmp_path, monkeypatch):
    """A plan needs no live target, whatever its faults: a net.cut on a node that names its
    containers by a `docker:` selector says where its rules will go."""
    import shutil

    from harness.lab import containers
    monkeypatch.setenv("HOTLINE_DRILL_STATE", str(tmp_path / "state"))
    # the lab is defined with its TCP trunk through Toxiproxy where the server is installed
    # (as CI has it): planned as such here, wherever the test runs
    which = shutil.which
    monkeypatch.setattr(containers.shutil, "which", lambda name: "/usr/bin/toxiproxy-server"
                        if name == "toxiproxy-server" else which(name))
    shipped = sorted((Path(__file__).resolve().parents[2] / "scenarios").glob("*.yaml"))
    assert len(shipped) > 20
    for scenario in shipped:
        res = CliRunner().invoke(app, ["run", "--dry-run", str(scenario)])
        assert res.exit_code == 0, (scenario.name, res.output)
    out = " ".join(CliRunner().invoke(app, ["run", "--dry-run", "scenarios/lab-pbx-media-dead.yaml"])
                   .output.split())
    assert "iptables DROP of all with 172.30.99.12 in netns" in out  # of its containers, up or not
    # a fault whose target lacks what it acts on is refused on its line, not a crash
    monkeypatch.setattr(containers.shutil, "which", lambda name: None)
    res = CliRunner().invoke(app, ["validate", "scenarios/lab-tcp-trunk-latency.yaml"])
    assert res.exit_code == 2 and "toxiproxy.latency cannot act on 'carrier-c'" in res.output \
        and "has no `toxiproxy:`" in res.output, res.output


def test_a_lab_scenario_is_not_run_while_the_lab_is_down(tmp_path, monkeypatch):
    scenario = Path(__file__).resolve().parents[2] / "scenarios" / "lab-pbx-kill.yaml"
    res = drill_run(scenario, tmp_path)
    assert res.returncode == 2
    assert "the container lab is not up; nothing injected" in " ".join(res.stdout.split())
    assert "drill lab up --docker" in res.stdout
    assert not (tmp_path / "reports").exists()


def drill_run(scenario: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    """`drill run` in a child: a run imports Locust, which patches this process for gevent."""
    env = {**os.environ, "HOTLINE_DRILL_STATE": str(tmp_path / "state"), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "harness.cli", "run", str(scenario)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)


def test_an_option_of_another_lab_is_refused_before_anything_starts(tmp_path, monkeypatch):
    monkeypatch.setenv("HOTLINE_DRILL_STATE", str(tmp_path / "state"))
    res = CliRunner().invoke(app, ["lab", "up", "--advert", "2"])
    assert res.exit_code == 2 and "--advert: not an option of the sandbox" in res.output
    res = CliRunner().invoke(app, ["lab", "up", "--docker", "--sites", "2", "--flaw", "no-failover"])
    assert res.exit_code == 2 and "--flaw: not an option of the two-site lab" in res.output
    res = CliRunner().invoke(app, ["lab", "up", "--docker", "--pbx-nodes", "3"])
    assert res.exit_code == 2 and "--pbx-nodes: not an option of the container lab" in res.output
    assert not (tmp_path / "state").exists() or not any((tmp_path / "state").iterdir())
