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


def private_token(path: Path) -> Path:
    """A file holding a random token, readable by its owner only; made once, then kept."""
    import secrets
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(24))
    return path
