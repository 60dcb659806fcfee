"""From an inventory's entry point to the options of a call placed through it: written once,
for the load's calls and the steady-state check's test calls alike (the same transport,
caller address, outbound proxy and fallback addresses a carrier's trunk would use)."""
from __future__ import annotations

from harness.scenario.inventory import DigestAuth, EntryPoint, split_address
from harness.sip.digest import Credential
from harness.sip.rfc3263 import Locator
from harness.sip.transport import TlsSettings
from harness.sip.uac import CallOptions


# one resolver cache per entry point's domain for the process: its calls share what DNS said
# for as long as the TTL allows, as a carrier's resolver does
_LOCATORS: dict[tuple, Locator] = {}


def locator(entry: EntryPoint) -> Locator:
    """The cache that locates an entry point's domain (RFC 3263) for every call through it."""
    key = (entry.domain, entry.resolver, entry.naptr_transport)
    found = _LOCATORS.get(key)
    if found is None:
        found = _LOCATORS[key] = Locator(
            entry.domain, split_address(entry.resolver) if entry.resolver else None,
            entry.naptr_transport, timeout=entry.failover_timer)
    return found


def tls_settings(entry: EntryPoint) -> TlsSettings | None:
    """The inventory's TLS checks of an entry point as the SIP layer's (None: not TLS; an
    entry point by DNS may be given TLS targets by NAPTR)."""
    by_naptr = getattr(entry, "located_by_dns", False) and entry.naptr_transport is None
    if entry.transport != "tls" and not by_naptr:  # (a registrar is never located by DNS)
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
                       srtp=entry.srtp, read_tones=entry.markers_inband,
                       locate=locator(entry).targets if entry.located_by_dns else None, **more)
