"""Causes the records point to, in words, for the review. Pure.

Each finding names a cause the harness can see in its own records, so the
people reading the review do not have to rediscover it from calls.csv.
"""
from __future__ import annotations

from harness.metrics.records import CallRecord


def unrouted_byes(records: list[CallRecord]) -> str | None:
    """BYEs lost because in-dialog requests went straight to a Contact that does not answer:
    the 200 carried no Record-Route and the entry point is not used as outbound proxy."""
    direct = [r for r in records if r.answered and r.dialog_via == "contact"]
    lost = [r for r in direct if r.outcome == "dropped" and r.bye_status == 0]
    if not direct or len(lost) < max(3, len(direct) / 2):
        return None
    return (f"{len(lost)} of {len(direct)} answered calls whose 200 carried no Record-Route had "
            "their BYE go unanswered: ACK and BYE went straight to the answering side's Contact, "
            "which did not answer (a PBX behind the SBC that drops Record-Route does this). "
            "Carrier trunks facing such an SBC send in-dialog requests back to it: set "
            "`outbound_proxy: true` on the entry point, or fix Record-Route.")


def findings(records: list[CallRecord]) -> list[str]:
    return [f for f in (unrouted_byes(records),) if f]
