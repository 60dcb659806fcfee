"""Digest credentials in the inventory: from `${NAME}` or a file, never written out."""
import json

import pytest

from harness.ops.secrets import redact, redact_text
from harness.scenario.load import read_inventory
from harness.scenario.yamlload import InputError
from harness.load.entry_calls import call_options, credentials

INVENTORY = """\
name: staging
entry_points:
  - name: carrier-a
    address: 127.0.0.1:5060
    auth:
      username: trunk-a
      password: ${{HD_TEST_TRUNK_PASSWORD}}
      realm: sbc.staging
  - name: carrier-b
    address: 127.0.0.1:5062
    auth:
      - {{username: trunk-b, password_file: {pwfile}, realm: sbc.staging}}
      - {{username: line-b, password_file: {pwfile}}}
nodes:
  - name: pbx-1
    sip: 127.0.0.1:5070
    auth: {{username: probe, password_file: {pwfile}}}
"""


def test_credentials_come_from_the_environment_or_a_file_and_are_masked(tmp_path, monkeypatch):
    monkeypatch.setenv("HD_TEST_TRUNK_PASSWORD", "env-pw-4711")
    pw = tmp_path / "pw"
    pw.write_text("file-pw-0815\nsecond line ignored\n")
    path = tmp_path / "inv.yaml"
    path.write_text(INVENTORY.format(pwfile=pw))
    inv = read_inventory(path)
    a, b = inv.entry_points
    assert [(c.username, c.password, c.realm) for c in credentials(a.auth)] == \
        [("trunk-a", "env-pw-4711", "sbc.staging")]
    assert [(c.username, c.password, c.realm) for c in credentials(b.auth)] == \
        [("trunk-b", "file-pw-0815", "sbc.staging"), ("line-b", "file-pw-0815", None)]
    assert credentials(inv.nodes[0].auth)[0].password == "file-pw-0815"
    opts = call_options(b, hold=1, rtp=False, invite_timeout=2, bye_timeout=1)
    assert len(opts.credentials) == 2
    # what a run folder keeps of the inventory (target.json) holds neither password
    dumped = json.dumps(redact(inv.model_dump()))
    assert "env-pw-4711" not in dumped and "file-pw-0815" not in dumped
    assert "env-pw-4711" not in redact_text("INVITE refused for trunk-a:env-pw-4711")


@pytest.mark.parametrize("auth, says", [
    ("{username: u}", "give exactly one of password"),
    ("{username: u, password: x, password_file: /etc/hostname}", "give exactly one of password"),
    ("{username: u, password_file: /nonexistent/pw}", "cannot read password_file /nonexistent/pw"),
    ("{username: '', password: x}", "username"),
])
def test_bad_credentials_are_an_error_on_the_inventorys_line(tmp_path, auth, says):
    text = refused(tmp_path, f"    auth: {auth}\n")
    assert f"{tmp_path / 'inv.yaml'}:5" in text and says in text, text


def refused(tmp_path, more: str) -> str:
    """What reading an inventory of one entry point with `more` lines says (it must refuse)."""
    path = tmp_path / "inv.yaml"
    path.write_text(f"name: s\nentry_points:\n  - name: c\n    address: 127.0.0.1:5060\n{more}")
    with pytest.raises(InputError) as err:
        read_inventory(path)
    return str(err.value)


def test_an_empty_password_file_is_refused(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("\n")
    assert "is empty" in refused(tmp_path, f"    auth: {{username: u, password_file: {pw}}}\n")


def test_tls_settings_are_checked_when_the_inventory_is_read(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    good = tmp_path / "good.yaml"
    good.write_text(f"name: s\nentry_points:\n  - name: c\n    address: 127.0.0.1:5061\n"
                    f"    transport: tls\n    tls: {{ca_file: {ca}, server_name: sbc.example}}\n")
    (entry,) = read_inventory(good).entry_points
    from harness.load.entry_calls import tls_settings
    assert tls_settings(entry).server_name == "sbc.example" and tls_settings(entry).verify
    for tls, says in [(f"{{ca_file: {tmp_path}/missing.pem}}", "is not a readable file"),
                      (f"{{cert_file: {ca}}}", "cert_file and key_file together")]:
        assert says in refused(tmp_path, f"    transport: tls\n    tls: {tls}\n")
