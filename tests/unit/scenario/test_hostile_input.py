"""Hostile and careless input: thousands of mutated scenario and inventory files, generated
by Hypothesis from the shipped ones, must each load or be refused with a clear InputError
(exit 2 from the CLI) — never a traceback, never a hang.

Each file is loaded in a child's time limit (SIGALRM, 5 s): a hang fails the example.
"""
import signal
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.runner.plan import load_drill
from harness.scenario.load import read_inventory
from harness.scenario.yamlload import InputError

ROOT = Path(__file__).resolve().parents[3]
SCENARIOS = sorted((ROOT / "scenarios").glob("sandbox-*.yaml")) + \
    sorted((ROOT / "tests" / "e2e" / "scenarios").glob("*.yaml"))
TEXTS = [p.read_text() for p in SCENARIOS]
INVENTORY = """\
name: staging
entry_points:
  - {name: carrier-a, address: 127.0.0.1:5060}
nodes:
  - {name: pbx-1, sip: 127.0.0.1:5070, process: {pidfile: /tmp/pbx-1.pid}}
allowlist: [pbx-1]
"""
# values a careless or hostile hand puts where a number, a word or a list belongs
NASTY = [".nan", ".inf", "-.inf", "-1", "0", "1e400", "9" * 5000, "9" * 400, "-" + "9" * 30, "null", "[]", "{}", "~",
         "!!python/object/apply:os.system ['true']", "!custom x", "*undefined", "&a [*a]",
         "'" + "x" * 2000 + "'", "yes", "0x7fffffffffffffff", "SIG_SETMASK", "-5s", "nan",
         "'1e999s'", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
         "{? [a, b]: c}", "\"\\xff\"", "2000000", "0.0000001", "'90%'", "'150%'"]
BOMB = ("a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
        "g: [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n")


@contextmanager
def within(seconds: int):
    def hang(*_):
        raise TimeoutError(f"still loading after {seconds} s")
    old = signal.signal(signal.SIGALRM, hang)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@st.composite
def mutated(draw, texts):
    lines = draw(st.sampled_from(texts)).splitlines()
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, max(0, len(lines) - 1)))
        op = draw(st.sampled_from(["value", "delete", "duplicate", "indent", "garbage", "bomb"]))
        line = lines[i] if lines else ""
        if op == "value" and ":" in line:
            key = line.split(":", 1)[0]
            lines[i] = f"{key}: {draw(st.sampled_from(NASTY))}"
        elif op == "delete" and lines:
            del lines[i]
        elif op == "duplicate" and lines:
            lines.insert(i, line)
        elif op == "indent" and lines:
            lines[i] = " " * draw(st.integers(1, 7)) + line
        elif op == "garbage":
            lines.insert(i, draw(st.text(max_size=40)))
        elif op == "bomb":
            lines.append(BOMB)
    return "\n".join(lines) + "\n"


def load_or_refuse(load, path: Path) -> None:
    with within(5):
        try:
            load(path)
        except InputError as exc:
            assert exc.problems and all(p.strip() for p in exc.problems)


@pytest.fixture
def state(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("HOTLINE_DRILL_STATE", str(tmp_path_factory.mktemp("state")))


@settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=mutated(TEXTS))
def test_mutated_scenarios_load_or_are_refused_cleanly(text, tmp_path_factory, state):
    path = tmp_path_factory.mktemp("s") / "scenario.yaml"
    path.write_text(text, errors="surrogateescape")
    load_or_refuse(load_drill, path)


@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=mutated([INVENTORY]))
def test_mutated_inventories_load_or_are_refused_cleanly(text, tmp_path_factory):
    path = tmp_path_factory.mktemp("i") / "inventory.yaml"
    path.write_text(text, errors="surrogateescape")
    load_or_refuse(read_inventory, path)


@pytest.mark.parametrize("name, content, words", [
    ("bomb.yaml", BOMB, "once aliases are expanded"),
    ("deep.yaml", "a: " + "[" * 5000 + "]" * 5000 + "\n", "deep"),
    ("binary.yaml", b"name: \xff\xfe\n", "not UTF-8"),
    ("nan.yaml", "name: x\nduration: .nan\n", "not a finite number"),
    ("key.yaml", "? [a, b]\n: c\n", "a key must be a plain word"),
    ("tag.yaml", "name: !custom x\n", "cannot read this value"),
    ("python.yaml", "name: !!python/object/apply:os.system ['true']\n", "valid string"),
    # a float cannot hold it: an OverflowError deep in a parser, once
    ("huge.yaml", "name: x\nduration: " + "9" * 400 + "\n", "duration: a 400-digit number"),
    ("huge-seed.yaml", "name: x\nduration: 10s\nseed: " + "9" * 30 + "\n", "seed: a 30-digit"),
    ("huge-rate.yaml", "name: x\nduration: 10s\nload: {calls_per_second: -" + "9" * 25 + "}\n",
     "load.calls_per_second: a 25-digit number"),
])
def test_each_hostile_file_gets_its_own_message(tmp_path, state, name, content, words):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(InputError) as exc:
        with within(5):
            load_drill(path)
    assert words in exc.value.problems[0] and str(path) in exc.value.problems[0]


def test_a_device_is_not_a_scenario(state):
    with pytest.raises(InputError, match="not a regular file"):
        with within(5):
            load_drill(Path("/dev/zero"))


def test_nan_strings_signal_constants_and_endless_capacity_searches_are_refused(tmp_path, state):
    base = "name: x\nduration: 10s\n"
    cases = {
        "faults:\n  - {type: udp.loss, target: carrier-a, at: 1s, ratio: 'nan'}\n": "ratio",
        "faults:\n  - {type: process.kill, target: pbx-1, at: 1s, signal: SIG_SETMASK}\n":
            "unknown signal",
        "load: {capacity_search: {start: 1, step: 0.0001, max: 100, step_duration: 1s}}\n":
            "at most 200",
    }
    for extra, words in cases.items():
        path = tmp_path / "s.yaml"
        path.write_text(base + extra)
        with pytest.raises(InputError) as exc:
            load_drill(path)
        assert any(words in p for p in exc.value.problems), exc.value.problems


def test_a_target_that_is_no_inventory_is_named_on_the_scenarios_line(tmp_path, state):
    path = tmp_path / "s.yaml"
    path.write_text("name: x\nduration: 10s\ntarget: /etc/passwd\n")
    with pytest.raises(InputError) as exc:
        load_drill(path)
    first, *rest = exc.value.problems
    assert first.startswith(f"{path}:3: target: '/etc/passwd' is not a usable target inventory")
    assert any(p.startswith("/etc/passwd:1:") for p in rest)  # what was wrong with the file
