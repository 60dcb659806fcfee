"""pytest plugin (entry point `pytest11`): scenario files as tests, one item per SLA target.

`pytest scenarios/` (or `pytest --drill FILE`) collects each scenario YAML in a
folder or file named on the command line; the drill runs once per file, in a
subprocess (`drill run`, so Locust's gevent patching stays out of pytest), and
every enabled SLA target becomes its own pass/fail item, so `--junitxml` and
every CI system show drill results natively. `--drill-target` picks the
target (sandbox, lab, or an inventory path); `--drill-output` keeps the run
folders (default: a temporary folder).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def pytest_addoption(parser):
    group = parser.getgroup("hotline-drill")
    group.addoption("--drill", action="append", default=[], metavar="FILE",
                    help="run this scenario file as tests (repeatable)")
    group.addoption("--drill-target", default=None,
                    help="override the scenarios' target: sandbox, lab, or an inventory path")
    group.addoption("--drill-output", default=None, help="folder for the run folders")


def pytest_configure(config):
    config.addinivalue_line("markers", "drill(target): a hotline drill scenario")


def _explicit(config) -> set[Path]:
    return {Path(a.split("::")[0]).resolve() for a in [*config.args, *config.option.drill]}


def pytest_collect_file(file_path: Path, parent):
    """A YAML file is a drill only when it, or its own folder, was named on the command line."""
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    named = _explicit(parent.config)
    if file_path.resolve() not in named and file_path.parent.resolve() not in named:
        return None
    return DrillFile.from_parent(parent, path=file_path)


def pytest_sessionstart(session):
    for f in session.config.option.drill:  # --drill FILE outside the collected paths
        if not Path(f).exists():
            raise pytest.UsageError(f"--drill {f}: no such file")


def pytest_collection_modifyitems(session, config, items):
    seen = {i.path.resolve() for i in items if isinstance(i, SlaItem)}
    for f in config.option.drill:
        path = Path(f).resolve()
        if path not in seen:
            items.extend(DrillFile.from_parent(session, path=path).collect())


class DrillFile(pytest.File):
    def collect(self):
        from harness.runner.plan import load_drill
        from harness.scenario.yamlload import InputError
        try:
            drill = load_drill(self.path, self.config.option.drill_target)
        except InputError as exc:
            raise self.CollectError("\n".join(exc.problems)) from None
        self.scenario_name = drill.scenario.name
        self._summary = None
        targets = [k for k, v in drill.scenario.sla.model_dump().items() if v is not None]
        for name in targets:
            yield SlaItem.from_parent(self, name=name, sla=name)

    def summary(self) -> dict:
        """Run the drill once (in a subprocess) and cache its summary for every item."""
        if self._summary is None:
            out = Path(self.config.option.drill_output or
                       self.config._tmp_path_factory.mktemp("drill"))  # noqa: SLF001
            cmd = [sys.executable, "-m", "harness.cli", "run", str(self.path), "-o", str(out)]
            if self.config.option.drill_target:
                cmd += ["--target", self.config.option.drill_target]
            res = subprocess.run(cmd, capture_output=True, text=True)
            runs = sorted(p for p in out.iterdir() if (p / "summary.json").exists()) if out.exists() else []
            if res.returncode == 2 or not runs:
                self._summary = {"error": (res.stderr or res.stdout)[-2000:]}
            else:
                self._summary = json.loads((runs[-1] / "summary.json").read_text())
                self._summary["run_dir"] = str(runs[-1])
        return self._summary


class DrillFailure(Exception):
    pass


class DrillInconclusive(Exception):
    """The load generator could not keep its schedule: no verdict can be given."""


class SlaItem(pytest.Item):
    def __init__(self, *, sla: str, **kw):
        super().__init__(**kw)
        self.sla = sla
        self.add_marker(pytest.mark.drill)

    def setup(self):
        summary = self.parent.summary()
        if summary.get("inconclusive"):  # an error, not a pass or a fail: the load was not as asked
            raise DrillInconclusive("drill inconclusive: " + "; ".join(summary["inconclusive"]))

    def runtest(self):
        from harness.metrics.sla import Verdict
        summary = self.parent.summary()
        if "error" in summary:
            raise DrillFailure(f"the drill could not run:\n{summary['error']}")
        if summary["run"]["aborted"]:
            raise DrillFailure(f"drill aborted: {summary['run']['abort_reason']}")
        verdict = next((Verdict(**v) for v in summary["verdicts"] if v["target"] == self.sla), None)
        if verdict is None:
            raise DrillFailure(f"{self.sla}: no verdict in {summary.get('run_dir')}")
        self.user_properties.append(("measured", verdict.measured))
        self.user_properties.append(("report", summary.get("run_dir")))
        if not verdict.passed:
            raise DrillFailure(verdict.sentence())

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, DrillFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, f"{self.parent.scenario_name}::{self.sla}"
