"""In-dialog routing like a carrier's: a PBX that drops Record-Route and hides its Contact
makes every BYE go unanswered unless the entry point is used as outbound proxy; the review
names that cause when it sees it."""
from tests.conftest import run_scenario


def run(tmp_path, name, outbound_proxy):
    scenario = {
        "name": name, "target": "sandbox", "duration": "6s",
        "description": "A PBX behind the SBC strips Record-Route from its 200.",
        "sandbox": {"pbx_drops_record_route": True, "outbound_proxy": outbound_proxy},
        "load": {"calls_per_second": 4, "hold": "1s", "rtp_share": "0%", "bye_timeout": "1s"},
    }
    return run_scenario(tmp_path / name, scenario)


def test_bye_to_a_hidden_contact_is_named_and_outbound_proxy_fixes_it(isolated, tmp_path):
    res, run_dir, summary = run(tmp_path, "direct", outbound_proxy=False)
    assert res.returncode == 1, res.stdout[-3000:] + res.stderr[-3000:]
    assert summary["counts"]["answered"] >= 15
    assert summary["counts"]["dropped"] == summary["counts"]["answered"]  # every BYE lost
    assert summary["findings"] and "outbound_proxy: true" in summary["findings"][0]
    assert "Record-Route" in (run_dir / "review.md").read_text().split("## Findings")[1]
    # the answering node is still named, from the Contact's user part
    assert summary["answered_by_node"].keys() <= {"pbx-1", "pbx-2"}

    res, run_dir, summary = run(tmp_path, "via-proxy", outbound_proxy=True)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert summary["counts"]["completed"] == summary["counts"]["answered"] >= 15
    assert summary["findings"] == []
