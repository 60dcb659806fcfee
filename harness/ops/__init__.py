"""The ground floor: plumbing that faults, the lab, the runner and the CLI share.

Process handles, the Docker and Toxiproxy clients, the state folder, exit codes
and the plug-in registries. Nothing here imports any other part of harness/:
every import in the package points down to this floor, never up from it.
"""


class OpsError(Exception):
    """Plumbing failed: no engine to reach, a container that never got healthy."""


class SetupError(OpsError):
    """The target is not fit for a drill: exit 2, nothing injected."""
