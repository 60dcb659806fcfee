"""Agents' phones kept registered for a drill: each phone on a thread of its own (a REGISTER
may wait out its whole timeout while the registrar is down, and must not hold the others
back), bounded in number, stopped within one REGISTER's timeout, and un-REGISTERed at the
end so that nothing is left in the hotline's location table."""
from __future__ import annotations

import threading
import time
from typing import Callable

from harness.load.entry_calls import credentials
from harness.metrics.registration import Attempt
from harness.sip.message import local_ip_for
from harness.sip.register import Phone, PhoneSpec

MAX_PHONES = 2000


class Phones:
    def __init__(self, users: list[str], spec: PhoneSpec,
                 on_attempt: Callable[[Attempt], None] = lambda a: None):
        if len(users) > MAX_PHONES:
            raise ValueError(f"{len(users)} phones; at most {MAX_PHONES} in one process")
        self.phones = [Phone(u, spec) for u in users]
        self.on_attempt = on_attempt
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []

    @classmethod
    def for_drill(cls, agents, registrar, on_attempt) -> "Phones":
        """A scenario's `agents:` towards the inventory's registrar."""
        spec = PhoneSpec(registrar.addr, registrar.domain, expires=int(agents.expires),
                         refresh=agents.refresh, retry=agents.retry,
                         honour_retry_after=agents.honour_retry_after, timeout=agents.timeout,
                         credentials=credentials(registrar.auth),
                         local_ip=local_ip_for(registrar.addr[0]))  # the way the registrar is
        return cls([f"{agents.user_prefix}{i:04d}" for i in range(1, agents.count + 1)], spec,
                   on_attempt)

    def start(self, spread: float = 0.0) -> None:
        """Each phone's first REGISTER, spread evenly over `spread` seconds (phones boot at
        different moments; all at once is a storm of its own)."""
        now = time.time()
        for i, p in enumerate(self.phones):
            p.due = now + spread * i / len(self.phones)
        for p in self.phones:
            t = threading.Thread(target=self._keep, args=(p,), daemon=True, name=f"phone-{p.user}")
            self.threads.append(t)
            t.start()

    def _keep(self, phone: Phone) -> None:
        while not self.stopping.is_set():
            if self.stopping.wait(max(0.0, phone.due - time.time())):
                return
            self.on_attempt(phone.step())

    def stop(self, unregister: bool = True, within: float | None = None) -> None:
        """Stop refreshing, then leave the location table, every phone at once. Each part
        waits at most `within` seconds (default: one REGISTER's timeout and a second; a
        signal's stop passes less): a phone still waiting then is left to its daemon thread."""
        wait = within if within is not None else \
            (self.phones[0].spec.timeout + 1 if self.phones else 0)
        self.stopping.set()
        _join_all(self.threads, wait)
        if not unregister:
            for p in self.phones:
                p.close()
            return
        # a phone whose thread still waits on a REGISTER is left to it (one flow, one user)
        leaving = [threading.Thread(target=self._leave, args=(p,), daemon=True)
                   for p, t in zip(self.phones, self.threads) if not t.is_alive()]
        for t in leaving:
            t.start()
        _join_all(leaving, wait)

    def _leave(self, phone: Phone) -> None:
        self.on_attempt(phone.unregister())
        phone.close()

    @property
    def attempts(self) -> list[Attempt]:
        return [a for p in self.phones for a in list(p.attempts)]


def _join_all(threads: list[threading.Thread], wait: float) -> None:
    """Join every thread, all of them within `wait` seconds together."""
    deadline = time.time() + wait
    for t in threads:
        t.join(max(0.0, deadline - time.time()))
