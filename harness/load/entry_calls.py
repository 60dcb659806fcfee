"""From an inventory's entry point to the options of a call placed through it: written once,
for the load's calls and the steady-state check's test calls alike (the same transport,
caller address, outbound proxy and fallback addresses a carrier's trunk would use)."""
from __future__ import annotations

from harness.scenario.inventory import DigestAuth, EntryPoint
from harness.sip.digest import Credential
from harness.sip.transport import TlsSettings
from harness.sip.uac import CallOptions


def tls_settings(entry: EntryPoint) -> TlsSettings | None:
    """The inventory's TLS checks of an entry point as the SIP layer's (None: not TLS)."""
    if entry.transport != "tls":
        return None
    t = entry.tls
    return TlsSettings() if t is None else TlsSettings(t.ca_file, t.verify, t.server_name,
                                                       t.cert_file, t.key_file, t.reuse)


def credentials(auth: list[DigestAuth]) -> tuple[Credential, ...]:
    """The inventory's digest credentials (an entry point's or a node's) as the SIP layer's."""
    return tuple(Credential(a.username, a.secret, a.realm) for a in auth)


def call_options(entry: EntryPoint, *, hold: float, rtp: bool, invite_timeout: float,
                 bye_timeout: float, **more) -> CallOptions:
    """`more`: further CallOptions fields (a Call-ID prefix, headers)."""
    return CallOptions(hold=hold, rtp=rtp, invite_timeout=invite_timeout,
                       bye_timeout=bye_timeout, transport=entry.transport,
                       local_ip=entry.caller_ip, outbound_proxy=entry.outbound_proxy,
                       fallback=entry.fallback_addrs, failover_timer=entry.failover_timer,
                       credentials=credentials(entry.auth), tls=tls_settings(entry),
                       srtp=entry.srtp, read_tones=entry.markers_inband, **more)
