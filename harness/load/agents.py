"""Agents' phones kept registered for a drill: each phone on a thread of its own (a REGISTER
may wait out its whole timeout while the registrar is down, and must not hold the others
back), bounded in number, stopped within one REGISTER's timeout, and un-REGISTERed at the
end so that nothing is left in the hotline's location table. Between its REGISTERs a phone
listens on its flow: the calls the registrar delivers there go to the agents' desk
(agent_desk.py), which rings, answers and talks."""
from __future__ import annotations

import socket
import threading
import time
from typing import Callable

from harness.load.agent_desk import AgentDesk
from harness.load.entry_calls import credentials, tls_settings
from harness.metrics.registration import Attempt
from harness.ops import OpsError
from harness.scenario.inventory import split_address
from harness.sip.digest import Credential
from harness.sip.message import local_ip_for, via_address
from harness.sip.register import Phone, PhoneSpec
from harness.sip.transport import TransportClosed, stamped_message

MAX_PHONES = 2000
WAKE = b"\r\n"  # a keepalive's bytes: what a stop sends each UDP phone's flow to end its wait
STREAM_POLL = 0.25  # s a phone on TCP or TLS waits on its connection before looking at a stop
# the journal's entry for a drill's registered agents: open from before the first REGISTER
# until every phone's un-REGISTER was answered 200; `drill recover` un-REGISTERs them
JOURNAL_TYPE, JOURNAL_ID = "agents.registered", "agents"


def agent_users(agents) -> list[str]:
    """The agents' own numbers (their addresses of record's user parts), in order."""
    return numbers(agents.user_prefix, agents.count)


def numbers(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{i:04d}" for i in range(1, count + 1)]


def dialled(scenario) -> list[str]:
    """The numbers a scenario's calls dial in turn: its agents' (load.dial: agents), or none
    (the hotline's own number)."""
    return agent_users(scenario.agents) if scenario.load.dial == "agents" else []


def journal_recipe(agents, registrar) -> dict:
    """What `drill recover` needs to take every agent out of the location table: the
    registrar, the agents' numbers, and the credentials' user, realm and password file (a
    password from the environment is not written down: recover goes without it)."""
    return {"registrar": registrar.address, "domain": registrar.domain,
            "user_prefix": agents.user_prefix, "count": agents.count,
            "auth": [{"username": a.username, "realm": a.realm, "password_file": a.password_file}
                     for a in registrar.auth]}


def leave_all(recipe: dict, timeout: float = 2.0) -> str:
    """`drill recover`'s undo of a killed drill's agents: each agent's record un-REGISTERed
    with `Contact: *` (every binding, whichever flow made it). OpsError when the registrar
    does not answer or refuses: the entry stays open, to be tried again."""
    addr = split_address(recipe["registrar"])
    creds = []
    for a in recipe["auth"]:
        if a.get("password_file"):
            with open(a["password_file"], encoding="utf-8") as fh:
                creds.append(Credential(a["username"], fh.readline().rstrip("\r\n"), a.get("realm")))
    spec = PhoneSpec(addr, recipe["domain"], timeout=timeout, credentials=tuple(creds),
                     local_ip=local_ip_for(addr[0]))
    users = numbers(recipe["user_prefix"], recipe["count"])
    for user in users:
        phone = Phone(user, spec)
        try:
            a = phone.unregister(everywhere=True)
        finally:
            phone.close()
        if a.status != 200:
            why = "no answer" if a.status == 0 else f"{a.status}" + (
                " (its password is not in the journal: it came from the environment)"
                if a.status in (401, 407) and not creds else "")
            raise OpsError(f"un-REGISTER of {user} at {recipe['registrar']}: {why}")
    return f"{len(users)} agents un-REGISTERed at {recipe['registrar']}"


class Phones:
    def __init__(self, users: list[str], spec: PhoneSpec,
                 on_attempt: Callable[[Attempt], None] = lambda a: None,
                 desk: AgentDesk | None = None):
        if len(users) > MAX_PHONES:
            raise ValueError(f"{len(users)} phones; at most {MAX_PHONES} in one process")
        self.phones = [Phone(u, spec) for u in users]
        self.on_attempt = on_attempt
        self.desk = desk  # None: a call reaching a phone is left unanswered
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.storming: set[str] = set()  # phones to take a new flow at their next turn

    @classmethod
    def for_drill(cls, agents, registrar, on_attempt, on_answer) -> "Phones":
        """A scenario's `agents:` towards the inventory's registrar, with a desk that takes
        their calls (`on_answer`: each call an agent answered)."""
        local_ip = local_ip_for(registrar.addr[0])  # the way the registrar is
        spec = PhoneSpec(registrar.addr, registrar.domain, expires=int(agents.expires),
                         refresh=agents.refresh, retry=agents.retry,
                         honour_retry_after=agents.honour_retry_after, timeout=agents.timeout,
                         credentials=credentials(registrar.auth), local_ip=local_ip,
                         transport=registrar.transport, tls=tls_settings(registrar))
        desk = AgentDesk(local_ip, ring=agents.ring, on_answer=on_answer).open()
        try:
            return cls(agent_users(agents), spec, on_attempt, desk)
        except (OSError, ValueError):
            desk.shut()
            raise

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
            if phone.user in self.storming:
                self.storming.discard(phone.user)
                phone.new_flow()
            if phone.due <= time.time():
                self.on_attempt(phone.step())
            else:
                self._listen(phone, phone.due)

    def _listen(self, phone: Phone, until: float) -> None:
        """What reaches the phone's flow until `until` (a stop's wake-up ends the wait; a
        connection is looked at every STREAM_POLL s): a request goes to the desk, answered
        from there. A connection closed under the phone makes it REGISTER again at once."""
        t = phone.transport
        wait = max(0.001, until - time.time())
        if t is None or t.reliable:
            wait = min(wait, STREAM_POLL)
        if t is None:
            self.stopping.wait(wait)
            return
        try:
            data, arrival = t.read(wait)
        except TransportClosed:
            phone.lost_flow()
            return
        except (OSError, socket.timeout):  # nothing came (or the flow was refused)
            if t.reliable and t.closed:
                phone.lost_flow()
            return
        msg = stamped_message(data, arrival)
        if msg is None or not msg.is_request or self.desk is None:
            return
        try:
            self.desk.deliver(msg, phone.user, via_address(msg.top_via))
        except ValueError:  # a Via we cannot answer: its sender retransmits, gives up
            pass

    def stop(self, unregister: bool = True, within: float | None = None) -> list[str]:
        """Stop refreshing, then leave the location table, every phone at once. Each part
        waits at most `within` seconds (default: one REGISTER's timeout and a second; a
        signal's stop passes less): a phone still waiting then is left to its daemon thread.
        Returns the agents not known to have left (no 200 to their un-REGISTER)."""
        wait = within if within is not None else \
            (self.phones[0].spec.timeout + 1 if self.phones else 0)
        self.stopping.set()
        self._wake()
        _join_all(self.threads, wait)
        if unregister:
            # a phone whose thread still waits on a REGISTER is left to it (one flow, one user)
            leaving = [threading.Thread(target=self._leave, args=(p,), daemon=True)
                       for p, t in zip(self.phones, self.threads) if not t.is_alive()]
            for t in leaving:
                t.start()
            _join_all(leaving, wait)
        else:
            for p in self.phones:
                p.close()
        if self.desk is not None:
            self.desk.shut()
        return [p.user for p in self.phones if not (p.attempts and p.attempts[-1].expires == 0
                                                    and p.attempts[-1].status == 200)]

    def storm(self) -> int:
        """Every phone loses its flow at once and REGISTERs again from a new one, all
        together (the registration storm); returns how many."""
        self.storming.update(p.user for p in self.phones)
        self._wake()
        return len(self.phones)

    def _wake(self) -> None:
        """End every phone's wait on its flow at once (a datagram to each)."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for p in self.phones:
                t = p.transport
                if t is None or t.reliable:
                    continue  # a connection is looked at every STREAM_POLL s
                try:
                    s.sendto(WAKE, (t.ip, t.port))
                except OSError:
                    pass

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
