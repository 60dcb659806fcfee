"""calls.csv: one row per call attempt, readable back for `drill report`."""
from __future__ import annotations

import csv
from dataclasses import fields
from pathlib import Path

from harness.metrics.records import CallRecord

CSV_FIELDS = [f.name for f in fields(CallRecord)]


def write_calls_csv(records: list[CallRecord], path: Path) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=CSV_FIELDS)
        w.writeheader()
        for r in records:
            w.writerow(r.to_dict())


def read_calls_csv(path: Path) -> list[CallRecord]:
    with open(path, newline="") as fh:
        return [CallRecord.from_dict(row) for row in csv.DictReader(fh)]
