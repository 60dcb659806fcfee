"""An agent's phone registering (RFC 3261 §10.2): REGISTER on its own UDP flow with digest
where the registrar asks, refreshed before the expiry it was granted, and after a failure
tried again when `Retry-After` says (or, for phones that ignore it, after their own timer:
the bad case a registration storm is made of). Each REGISTER transaction is kept as an
`Attempt` for the figures (metrics/registration.py)."""
from __future__ import annotations

import re
import time
from dataclasses import dataclass

from harness.metrics.registration import Attempt
from harness.sip.dialog import Dialog, NoCredentials
from harness.sip.digest import Credential, DigestCredentials
from harness.sip.message import SipMessage, token
from harness.sip.transport import TlsSettings, open_transport


@dataclass(frozen=True)
class PhoneSpec:
    registrar: tuple[str, int]
    domain: str
    expires: int = 60            # asked for
    refresh: float = 0.8         # share of the granted expiry after which the phone refreshes
    retry: float = 5.0           # s after a failure without Retry-After (or when ignoring it)
    honour_retry_after: bool = True
    timeout: float = 4.0         # one REGISTER transaction (Timer F is 32 s; phones give up sooner)
    credentials: tuple[Credential, ...] = ()
    local_ip: str = "127.0.0.1"
    transport: str = "udp"       # or tcp, tls: a connection of its own to the registrar
    tls: TlsSettings | None = None


class _RegisterDialog(Dialog):
    """REGISTER's headers: From and To the address of record, the Request-URI the domain,
    the phone's own flow as Contact, the expiry asked for."""

    def __init__(self, transport, spec: PhoneSpec, user: str):
        creds = DigestCredentials(list(spec.credentials)) if spec.credentials else NoCredentials()
        super().__init__(transport, spec.registrar, callee=user, call_id=f"reg-{token(12)}",
                         challenges=creds)
        self.user, self.domain, self.expires = user, spec.domain, spec.expires
        self.everywhere = False

    def request(self, method: str, body: bytes = b"", uri: str | None = None,
                cseq: int | None = None) -> SipMessage:
        msg = super().request(method, body, uri or f"sip:{self.domain}", cseq)
        aor = f"sip:{self.user}@{self.domain}"
        msg.set("From", f"<{aor}>;tag={self.from_tag}")
        msg.set("To", f"<{aor}>")
        msg.headers.append(("Expires", str(self.expires)))
        return msg

    def contact(self) -> str:
        if self.everywhere:  # RFC 3261 §10.2.2: with Expires 0, every binding of the record
            return "*"
        t = self.transport
        return f"<sip:{self.user}@{t.ip}:{t.port}{t.uri_param}>"


class Phone:
    """One agent's phone. `due` is when it next REGISTERs; `step()` does that one REGISTER
    (blocking, bounded by the spec's timeout) and plans the next."""

    def __init__(self, user: str, spec: PhoneSpec):
        self.user, self.spec = user, spec
        self.transport = None
        self.dialog = None
        self.attempts: list[Attempt] = []
        self.due = 0.0
        if spec.transport == "udp":  # a connection is opened by the first REGISTER instead
            self._open()

    def _open(self) -> None:
        """A new flow (a new local port, so a new Contact) and a new registration dialog;
        OSError when a connection cannot be opened (the registrar is not there)."""
        if self.transport is not None:
            self.transport.close()
            self.transport = None
        s = self.spec
        self.transport = open_transport(s.transport, s.registrar, s.local_ip, s.timeout, s.tls)
        self.dialog = _RegisterDialog(self.transport, s, self.user)

    @property
    def flow_lost(self) -> bool:
        """A connection the registrar (or the network) closed: the phone opens another."""
        return self.transport is None or self.transport.closed

    def step(self, expires: int | None = None) -> Attempt:
        sent = time.time()
        try:
            if self.flow_lost:
                self._open()
            self.dialog.expires = self.spec.expires if expires is None else expires
            _, final = self.dialog.transact(self.dialog.request("REGISTER"), self.spec.timeout)
        except OSError:  # no route, refused, no connection: ineffective, tried again after retry
            final = None
        ended = final.received_at or time.time() if final is not None else time.time()
        status = final.status if final is not None else 0
        granted = granted_expiry(final, self.dialog.expires) if status == 200 else 0
        retry_after = _retry_after(final)
        a = Attempt(self.user, sent, ended, status, granted, retry_after)
        self.attempts.append(a)
        if status == 200 and granted:
            self.due = ended + granted * self.spec.refresh
        elif retry_after is not None and self.spec.honour_retry_after:
            self.due = ended + retry_after
        else:
            self.due = ended + self.spec.retry
        return a

    def new_flow(self) -> None:
        """What a phone does after its network flapped or it rebooted: a new flow (a new
        local port, so a new Contact) and a new registration dialog, REGISTERing now."""
        if self.transport is not None:
            self.transport.close()
            self.transport = None  # opened by the REGISTER (a stream's may fail: counted)
        self.due = 0.0

    def lost_flow(self) -> None:
        """Its connection closed under it: a phone on TCP or TLS REGISTERs again at once on a
        new one (the wave that makes a registrar's restart a storm)."""
        if self.transport is not None:
            self.transport.closed = True
        self.due = 0.0

    def unregister(self, everywhere: bool = False) -> Attempt:
        """Leave the location table (expires 0): what a drill does at its end; `everywhere`:
        every binding of the agent's record, whatever flow it was (`drill recover`, after
        the phone that registered it is gone)."""
        if self.flow_lost:  # a leaving phone needs a flow to say so on
            try:
                self._open()
            except OSError:
                pass
        if self.dialog is not None:
            self.dialog.everywhere = everywhere
        return self.step(expires=0)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def granted_expiry(ok: SipMessage, asked: int) -> int:
    """The expiry a 200 granted: its Contact's expires, else its Expires, else what was asked."""
    m = re.search(r";\s*expires=(\d+)", ok.get("contact", "") or "")
    if m:
        return int(m.group(1))
    value = (ok.get("expires", "") or "").strip()
    return int(value) if value.isdigit() else asked


def _retry_after(resp: SipMessage | None) -> float | None:
    value = ((resp.get("retry-after", "") or "") if resp is not None else "").split(";")[0].strip()
    return float(value) if value.replace(".", "", 1).isdigit() else None
