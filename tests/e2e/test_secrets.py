"""Planted credentials never reach an output, and credential URLs really authenticate.

A drill against the sandbox with an HTTP abort probe whose URL carries `user:pw@`
and a token from `${ENV}`, and a Pushgateway URL with a password: the probe
server only answers 200 to the right basic-auth header (a wrong or missing one
would fire the abort rule), and afterwards no file of the run folder, no line
of the console and no history entry holds any of the three secrets.
"""
import base64
import os
import stat
import subprocess
import sys

import yaml

from tests.conftest import last_run, serve_http

PASSWORD, TOKEN, PUSH_PASSWORD = "s3cr3t-pw-4711", "tok-from-env-0815", "push-pw-9999"


def with_basic_auth(request: dict) -> int:
    """200 to the right credentials for the method (probe GET, Pushgateway PUT), else 401."""
    want = {"GET": f"prober:{PASSWORD}", "PUT": f"pusher:{PUSH_PASSWORD}"}[request["method"]]
    given = request["headers"].get("Authorization")
    return 200 if given == "Basic " + base64.b64encode(want.encode()).decode() else 401


def test_secrets_authenticate_and_never_reach_an_output(isolated, tmp_path, monkeypatch):
    _, seen, server = serve_http(with_basic_auth)
    port = server.server_address[1]
    monkeypatch.setenv("DRILL_PROBE_TOKEN", TOKEN)
    scenario = {
        "name": "secret-probe", "target": "sandbox", "duration": "5s",
        "description": "An abort probe with credentials; it must not fire.",
        "load": {"calls_per_second": 4, "hold": "500ms", "rtp_share": "0%"},
        "abort_when": [{"http": {"url": f"http://prober:{PASSWORD}@127.0.0.1:{port}/health"
                                        "?token=${DRILL_PROBE_TOKEN}"}, "for": "1s", "every": "500ms"}],
        "sla": {"dropped_call_rate": None},
    }
    path = tmp_path / "secret-probe.yaml"
    path.write_text(yaml.safe_dump(scenario))
    res = subprocess.run([sys.executable, "-m", "harness.cli", "run", str(path), "-o",
                          str(tmp_path / "out"), "--gate", "--pushgateway",
                          f"http://pusher:{PUSH_PASSWORD}@127.0.0.1:{port}"],
                         capture_output=True, text=True, timeout=180, env={**os.environ})
    server.shutdown()
    server.server_close()
    assert res.returncode in (0, 1), res.stdout[-3000:] + res.stderr[-3000:]  # not 3: no false abort
    probes = [r for r in seen if r["method"] == "GET"]
    assert probes and all(r["headers"].get("Authorization", "").startswith("Basic ") for r in probes)
    assert all(f"token={TOKEN}" in r["path"] for r in probes)  # the env value was sent ...
    assert any(r["method"] == "PUT" for r in seen) and "push to" not in res.stderr  # push authenticated
    run = last_run(tmp_path / "out")
    files = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert len(files) > 8
    for secret in (PASSWORD, TOKEN, PUSH_PASSWORD):       # ... but none is written anywhere
        assert secret not in res.stdout + res.stderr
        for p in files:
            assert secret.encode() not in p.read_bytes(), f"{secret} found in {p}"
    assert "prober:" not in (run / "scenario.yaml").read_text()
    assert stat.S_IMODE(run.stat().st_mode) == 0o700
