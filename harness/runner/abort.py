"""Stop conditions (`abort_when`): rules watched throughout a run; the first to hold long enough aborts it.

Each rule checks one condition every `every` seconds; when the condition has
held for `for` seconds without a break, the rule fires: the runner rolls back
every fault at once, stops the load, and the report names the rule.
"""
from __future__ import annotations

import time
import urllib.error
from dataclasses import dataclass, field

from harness.metrics.calls import answer_rate
from harness.ops.http import open_url
from harness.ops.secrets import redact_text
from harness.probes.prometheus import instant
from harness.scenario.inventory import TargetInventory, split_address
from harness.scenario.model import AbortRule
from harness.load.entry_calls import credentials
from harness.sip.probe import options_ping


def describe(rule: AbortRule) -> str:
    if rule.answer_rate_below is not None:
        what = f"answer rate below {rule.answer_rate_below:.0%} (over {rule.window:g}s)"
    elif rule.node_down:
        what = "a node outside the fault plan stops answering SIP OPTIONS"
    elif rule.http is not None:
        what = f"HTTP probe {rule.http.url} not answering {rule.http.expect_status}"
    else:
        what = f"Prometheus query {rule.prometheus.query!r} returns samples"
    return f"{what} for {rule.for_:g}s"


def ended_since(records: list, since: float, slack: float = 5.0) -> list:
    """The records that may have started since `since`, read from the end of the run's list:
    a call ends after it starts, and records arrive in about the order calls end (`slack`
    covers callers publishing out of order), so the check costs the window, not the run."""
    out = []
    for r in reversed(records):
        if (r.ended_at or r.started_at) < since - slack:
            break
        out.append(r)
    return out


def condition(rule: AbortRule, run, inv: TargetInventory, now: float) -> tuple[bool, str]:
    """(holds, detail) of one rule at this moment."""
    if rule.answer_rate_below is not None:
        rate = answer_rate(ended_since(run.records, now - rule.window), now - rule.window, now)
        return (rate is not None and rate < rule.answer_rate_below,
                f"answer rate {rate:.0%}" if rate is not None else "no calls")
    if rule.node_down:
        planned = {active.planned.spec.target for active in run.active.values()}
        down = [n.name for n in inv.nodes if n.sip and n.name not in planned
                and options_ping(split_address(n.sip), timeout=0.3,
                                credentials=credentials(n.auth)) != 200]
        return bool(down), f"down: {', '.join(down)}" if down else "all up"
    if rule.http is not None:
        try:
            with open_url(rule.http.url, timeout=rule.http.timeout) as resp:
                status = resp.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except OSError as exc:
            return True, redact_text(f"{rule.http.url}: {exc}")
        return status != rule.http.expect_status, redact_text(f"{rule.http.url} answered {status}")
    q = rule.prometheus
    try:
        result = instant(q.url, q.query, q.timeout)
    except (OSError, ValueError, KeyError) as exc:
        return False, redact_text(f"Prometheus unreachable: {exc}")  # a broken monitor is not an outage
    return bool(result), f"{len(result)} sample(s)"


@dataclass
class Watchdog:
    """Evaluates the rules on the runner's ticks; `check` returns the reason of the first that fires."""

    rules: list[AbortRule]
    inv: TargetInventory
    since: dict[int, float | None] = field(default_factory=dict)
    last_check: dict[int, float] = field(default_factory=dict)

    def check(self, run, now: float | None = None) -> str | None:
        now = now or time.time()
        for i, rule in enumerate(self.rules):
            if now - self.last_check.get(i, 0.0) < rule.every:
                continue
            self.last_check[i] = now
            holds, detail = condition(rule, run, self.inv, now)
            if not holds:
                self.since[i] = None
                continue
            start = self.since.get(i) or now
            self.since[i] = start
            if now - start >= rule.for_:
                return f"abort rule {i + 1} fired: {describe(rule)} ({detail})"
        return None
