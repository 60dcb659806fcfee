"""Sealing: at arming only the SHA-256 of the plan is shown; when the drill starts the
plan is revealed, and anyone can check that sha256(canonical(plan)) is the hash shown."""
from __future__ import annotations

import hashlib
import json


def canonical(plan: dict) -> bytes:
    return json.dumps(plan, sort_keys=True, separators=(",", ":")).encode()


def seal(plan: dict) -> str:
    return hashlib.sha256(canonical(plan)).hexdigest()


def verify(plan: dict, sealed: str) -> bool:
    """Does the revealed plan match the hash committed when the game day was armed?"""
    return seal(plan) == sealed
