"""The exit codes of every `drill` command, one meaning each (README: "Exit codes")."""

EXIT_PASS = 0          # every SLA target met
EXIT_MISSED = 1        # an SLA target missed
EXIT_LEFT_OPEN = 1     # `drill recover`: faults it could not roll back (still in the journal)
EXIT_INPUT = 2         # invalid input or set-up error: nothing injected
EXIT_ABORTED = 3       # aborted by an abort rule or a signal: everything rolled back
EXIT_INCONCLUSIVE = 4  # the load generator could not keep its schedule: no verdict
EXIT_INTERNAL = 5      # a bug in hotline-drill itself: the traceback is saved, never blamed on the hotline
