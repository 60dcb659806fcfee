"""The state folder: sandboxes, the fault journal and sealed game-day plans live here."""
from __future__ import annotations

import os
from pathlib import Path


def state_home() -> Path:
    """$HOTLINE_DRILL_STATE, else $XDG_STATE_HOME/hotline-drill (~/.local/state/hotline-drill)."""
    base = os.environ.get("HOTLINE_DRILL_STATE") or \
        Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local/state")) / "hotline-drill"
    path = Path(base)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)  # journal, sealed plans: the owner's only
    return path
