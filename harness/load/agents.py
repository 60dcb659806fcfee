"""Agents' phones kept registered for a drill: each phone on a thread of its own (a REGISTER
may wait out its whole timeout while the registrar is down, and must not hold the others
back), bounded in number, stopped within one REGISTER's timeout, and un-REGISTERed at the
end so that nothing is left in the hotline's location table."""
from __future__ import annotations

import threading
import time

from harness.metrics.registration import Attempt
from harness.sip.register import Phone, PhoneSpec

MAX_PHONES = 2000


class Phones:
    def __init__(self, users: list[str], spec: PhoneSpec):
        if len(users) > MAX_PHONES:
            raise ValueError(f"{len(users)} phones; at most {MAX_PHONES} in one process")
        self.phones = [Phone(u, spec) for u in users]
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []

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
            phone.step()

    def stop(self, unregister: bool = True) -> None:
        """Stop refreshing (each thread ends within its REGISTER's timeout), then leave the
        location table, every phone at once."""
        self.stopping.set()
        for t in self.threads:
            t.join(self.phones[0].spec.timeout + 1 if self.phones else 0)
        if unregister:
            leaving = [threading.Thread(target=p.unregister, daemon=True) for p in self.phones]
            for t in leaving:
                t.start()
            for t in leaving:
                t.join(self.phones[0].spec.timeout + 1)
        for p in self.phones:
            p.close()

    @property
    def attempts(self) -> list[Attempt]:
        return [a for p in self.phones for a in list(p.attempts)]
