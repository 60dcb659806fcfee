"""The container lab's SBC configuration with and without flaws (pure: the file rendered)."""
import pytest

from harness.lab.containers import FLAWS, LabConfig, kamailio_cfg
from harness.ops import SetupError


def test_each_flaw_is_a_define_the_configuration_tests():
    plain = kamailio_cfg(LabConfig())
    assert plain.startswith("#!KAMAILIO\n") and "#!define" not in plain
    assert "RTPENGINE_NG" not in plain and "172.30.99.3:2223" in plain
    for name in FLAWS:
        define = f"FLAW_{name.upper().replace('-', '_')}"
        assert f"#!ifdef {define}" in plain  # the file itself has the flaw behind its define
        cfg = kamailio_cfg(LabConfig(flaws=(name,)))
        assert cfg.splitlines()[:2] == ["#!KAMAILIO", f"#!define {define}"]


def test_an_unknown_flaw_is_refused_with_the_known_ones():
    with pytest.raises(SetupError, match="unknown lab flaw.*health-check-flaps"):
        kamailio_cfg(LabConfig(flaws=("slow-dns",)))
