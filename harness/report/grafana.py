"""Drill events on the dashboards a team already watches: a Grafana annotation for each
fault window (from its injection to its rollback) and one for the verdict, POSTed to the
HTTP API the user names (`/api/annotations`, a service account token as Bearer). The
annotations are built here from summary.json alone (pure); `post` sends them.
"""
from __future__ import annotations

import json

from harness.ops.http import open_url

TAG = "hotline-drill"


def annotations(summary: dict) -> list[dict]:
    """The run's annotations: times in epoch milliseconds, as Grafana takes them."""
    sc, run = summary["scenario"], summary["run"]
    base = [TAG, f"scenario:{sc['name']}", f"target:{sc['target']}"]
    out = []
    for f in summary.get("faults") or []:
        end = f.get("undo_started") or f.get("ended_at") or run["ended_at"]
        out.append({"time": int(f["started_at"] * 1000), "timeEnd": int(end * 1000),
                    "tags": [*base, "fault", f"fault:{f['type']}"],
                    "text": f"{sc['name']}: fault {f['fault_id']} ({f['type']} on {f['target']})"})
    missed = [v["target"] for v in summary.get("verdicts") or [] if not v["passed"]]
    verdict = "aborted" if run.get("aborted") else "inconclusive" if summary.get("inconclusive") \
        else "passed" if summary.get("passed") else "failed"
    out.append({"time": int(run["started_at"] * 1000), "timeEnd": int(run["ended_at"] * 1000),
                "tags": [*base, "drill", f"verdict:{verdict}"],
                "text": f"{sc['name']}: drill {verdict}" +
                        (f" (missed: {', '.join(missed)})" if missed and verdict == "failed" else "")})
    return out


def post(summary: dict, url: str, token: str | None, timeout: float = 10.0) -> int:
    """POST each annotation; how many the API took (OSError on the first refusal)."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    sent = 0
    for a in annotations(summary):
        with open_url(f"{url.rstrip('/')}/api/annotations", timeout, data=json.dumps(a).encode(),
                      method="POST", headers=headers) as resp:
            if resp.status // 100 != 2:
                raise OSError(f"{url} answered {resp.status}")
        sent += 1
    return sent
