"""The import graph of harness/: every import points down a floor, and nothing goes round.

Floors, bottom up (README "Layout"). A module imports from its own package or
from a lower floor only; imports inside functions count too.
"""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "harness"
FLOORS = [
    {"ops", "metrics"},          # plumbing; pure figures
    {"sip", "scenario"},         # SIP and RTP; the scenario schema and YAML
    {"faults", "lab", "load", "probes", "report"},
    {"runner"},
    {"gameday"},
    {"cli", "pytest_plugin"},
]
FLOOR = {pkg: i for i, floor in enumerate(FLOORS) for pkg in floor}


def modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        out[".".join(parts).removesuffix(".__init__")] = path
    return out


def imports(path: Path, known: dict) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("harness"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names
                         if f"{node.module}.{a.name}" in known)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("harness"))
    return found - {"harness"}  # the package root holds only __version__


def package(module: str) -> str:
    return module.split(".")[1]


def test_every_import_points_down_a_floor():
    known = modules()
    assert set(map(package, (m for m in known if m != "harness"))) == set(FLOOR), \
        "a package is missing from FLOORS: place it on a floor"
    upward = []
    for mod, path in known.items():
        if mod == "harness":
            continue
        for target in imports(path, known):
            a, b = package(mod), package(target)
            if a != b and FLOOR[b] >= FLOOR[a]:
                upward.append(f"{mod} -> {target}")
    assert upward == []


def test_no_fault_family_imports_another():
    known = modules()
    crossing = [f"{m} -> {t}" for m, p in known.items() if m.startswith("harness.faults.")
                for t in imports(p, known) if t.startswith("harness.faults.")
                and t not in ("harness.faults.base", m)]
    assert crossing == []


def test_no_import_circle():
    known = modules()
    graph = {m: {t for t in imports(p, known) if t in known} for m, p in known.items()}
    seen, on_path, circles = set(), [], []

    def visit(m):
        if m in on_path:
            circles.append(on_path[on_path.index(m):] + [m])
            return
        if m in seen:
            return
        seen.add(m)
        on_path.append(m)
        for t in sorted(graph[m]):
            visit(t)
        on_path.pop()

    for m in sorted(graph):
        visit(m)
    assert circles == []
