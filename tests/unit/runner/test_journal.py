"""The write-ahead fault journal: open faults, a torn last line, amendments."""
from harness.runner.journal import Journal


def test_journal_open_faults_and_torn_line(tmp_path):
    j = Journal(tmp_path / "j.jsonl")
    j.intent("r1", "f1", "process.kill", "pbx-1", {"pid": 1})
    j.intent("r1", "f2", "process.pause", "pbx-2", {"pid": 2})
    j.closed("r1", "f1", "restarted")
    with open(j.path, "a") as fh:
        fh.write('{"op": "inject", "run_id": "r1", "fault')  # power loss mid-write
    assert [e["fault_id"] for e in j.open_faults()] == ["f2"]
    assert j.open_faults("other") == []


def test_journal_amend_merges_into_the_open_recipe(tmp_path):
    j = Journal(tmp_path / "j.jsonl")
    j.intent("r1", "flood", "sipflood.scan", "sbc", {"target": "sbc"})
    j.amend("r1", "flood", {"pid": 42, "start_time": 7})
    assert j.open_faults()[0]["recipe"] == {"target": "sbc", "pid": 42, "start_time": 7}
    j.closed("r1", "flood", "stopped")
    assert j.open_faults() == []
