"""Steady-state check: every part of the target answers, on every transport it serves, and
carries media.

SIP OPTIONS to every node on each of its transports (a server whose UDP side died while
its TCP side and process stay up must not look healthy) and to every entry point on its
own; then, when the drill places calls with media, one short call with RTP through every
UDP entry point it uses, which must be answered and hear RTP back: any RTP the far end
sends (an echo, a prompt, a tone), since a hotline that plays its own audio does not
echo ours; where the far end reports what it heard (the sandbox), most of ours must have
reached it. A far end that plays nothing until a person answers is told apart by
`media_check: false` on its entry point. An entry point with digest credentials (`auth:`)
gets a test call even when the drill places no media: credentials the hotline refuses
are found here, naming the entry point and the realm, before any fault. How a test call
ends is not judged here: a BYE that goes astray is what a drill is there to find (and
name), not a reason to refuse to run one.
The test calls' Call-IDs begin with HEALTH_CALL_PREFIX, so a truth check can leave them out.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from harness.scenario.inventory import EntryPoint, TargetInventory, split_address
from harness.sip.probe import options_ping
from harness.load.entry_calls import call_options, credentials, locator, tls_settings
from harness.sip.rfc3263 import DnsFailure
from harness.sip.message import local_ip_for
from harness.sip.tls import certificate_problem
from harness.sip.dialog import CHALLENGES
from harness.sip.uac import HEALTH_CALL_PREFIX, end_call, start_call

MEDIA_HOLD = 1.0        # seconds of RTP in each test call
MEDIA_HEARD = 0.8       # share of our packets a far end that reports them must have heard
MEDIA_BACK = 5          # RTP packets (100 ms at 20 ms) the caller must hear back, of any kind


class Lasting(str):
    """A problem waiting will not mend (credentials refused, a certificate refused): no retry."""


def _signalling(inv: TargetInventory, stop=lambda: False) -> list[str]:
    problems = []
    parts = [(n.name, n.sip, t, n.auth, None, None) for n in inv.nodes if n.sip
             for t in n.transports]
    for e in inv.entry_points:
        if not e.answers_options:
            continue
        if not e.located_by_dns:
            parts.append((e.name, e.address, e.transport, e.auth, tls_settings(e), e.caller_ip))
            continue
        try:  # every target DNS gives now: a carrier may be sent to any of them
            targets, _ = locator(e).targets()
        except DnsFailure as exc:
            problems.append(f"{e.name} ({e.domain}): cannot be located by DNS: {exc} (hint: "
                            "check its SRV and A records, and `resolver:`)")
            continue
        parts += [(f"{e.name} → {t.name}", f"{t.host}:{t.port}", t.transport, e.auth,
                   tls_settings(e) if t.transport == "tls" else None, e.caller_ip)
                  for t in targets]
    for name, addr, transport, auth, tls, caller_ip in parts:
        if stop():  # each ping waits up to 0.5 s: a signal is not kept waiting for the rest
            return [*problems, "not finished: stopped"]
        host = split_address(addr)
        status = options_ping(host, timeout=0.5, local_ip=caller_ip if tls else None,
                              transport=transport, credentials=credentials(auth), tls=tls)
        where = f"{name} ({addr}, {transport.upper()}) "
        # asked only when nothing answered, each step bounded like the ping
        why = certificate_problem(host, caller_ip or local_ip_for(host[0]), tls, timeout=0.5) \
            if status == 0 and tls is not None and not stop() else None
        if why is not None:  # a certificate is not fixed by waiting
            problems.append(Lasting(f"{where.rstrip()}: {why}"))
        elif status in CHALLENGES:
            problems.append(Lasting(
                f"{where}answers {status} to SIP OPTIONS: digest credentials "
                + ("refused" if auth else "asked for") + f" (hint: give '{name}' `auth:` "
                "with username and password in the inventory, or check them)"))
        elif status != 200:
            problems.append(where + ("does not answer SIP OPTIONS" if status == 0
                                     else f"answers {status}"))
    return problems


def call_problem(entry: EntryPoint, stop=lambda: False, rtp: bool = True) -> str | None:
    """One test call (with RTP unless `rtp` is false) through `entry`; what is wrong with it,
    or None. `stop()` true ends its hold early (the call is still ended with a BYE)."""
    opts = call_options(entry, hold=MEDIA_HOLD if rtp else 0.0, rtp=rtp, invite_timeout=4.0,
                        bye_timeout=2.0, call_id_prefix=HEALTH_CALL_PREFIX)
    if opts.tls is not None:  # a connection of its own: the load's trunk is the load's
        opts = replace(opts, tls=replace(opts.tls, reuse=False))
    rec, held = start_call(None if entry.located_by_dns else entry.addr, opts, entry.name)
    if held is not None:
        while time.time() < held.end and not stop():
            time.sleep(min(0.05, max(0.0, held.end - time.time())))
        if stop():
            if held.stream is not None:
                held.stream.stop()  # its media ends now, not at the planned end of the hold
            end_call(held)
            return "not finished: stopped"
        rec = end_call(held)
    where = f"{entry.name} ({entry.shown})"
    if rec.cause == "auth":
        return Lasting(f"{where}: digest authentication failed: a test call "
                       + ("was not answered" if not rec.answered else "could not end")
                       + f" ({rec.reason})")
    if rec.cause == "srtp":
        return Lasting(f"{where}: a test call was answered without SRTP, and this entry point "
                       "has srtp: require (hint: make the SBC answer RTP/SAVP offers with "
                       "a=crypto, or set srtp: offer to accept plain RTP)")
    if not rec.answered:
        hint = (" (hint: the far end may not accept SRTP; try srtp: offer, or off)"
                if rec.status == 488 and entry.srtp != "off" else "")
        return f"{where}: a test call was not answered ({rec.reason}){hint}"
    if not rtp:
        return None
    if rec.srtp_auth_failed and rec.rtp_received < MEDIA_BACK:
        return Lasting(f"{where}: no audio: SRTP authentication failed on "
                       f"{rec.srtp_auth_failed} of the far end's packets (its key is not the one "
                       "its answer gave)")
    if rec.rtp_received < MEDIA_BACK:
        return (f"{where}: a test call sent {rec.rtp_sent} RTP packets over {MEDIA_HOLD:g}s and "
                f"heard {rec.rtp_received} back (any RTP counts: an echo, a prompt, a tone; "
                f"at least {MEDIA_BACK} were expected) (hint: if this far end plays nothing "
                f"until a person answers, set `media_check: false` on entry point "
                f"'{entry.name}' in the inventory; a drill with `rtp_share: 0%` places no media "
                "and skips this check)")
    if rec.rtp_up_expected and rec.rtp_up_received / rec.rtp_up_expected < MEDIA_HEARD:
        return (f"{where}: a test call's media did not reach the hotline: {rec.rtp_up_received} "
                f"of {rec.rtp_up_expected} packets")
    return None


def _calls(inv: TargetInventory, carriers: list[str] | None, media: bool,
           stop=lambda: False) -> list[str]:
    """A test call through each entry point the drill uses whose media is checked, and
    through each that has credentials (signalling only when its media is not checked)."""
    def checks_media(e: EntryPoint) -> bool:
        return media and e.transport == "udp" and e.media_check
    entries = [e for e in inv.carriers(carriers) if checks_media(e) or e.auth]
    if not entries:
        return []
    with ThreadPoolExecutor(len(entries)) as pool:
        return [p for p in pool.map(lambda e: call_problem(e, stop, checks_media(e)), entries)
                if p]


def media_checked(load) -> dict:
    """What the check tests of media for a drill with this `load:`: only what its calls carry."""
    return {"media": load.rtp_share > 0, "carriers": load.carriers or None}


def steady_state(inv: TargetInventory, within: float = 5.0, media: bool = True,
                 carriers: list[str] | None = None,
                 stop=lambda: False) -> tuple[bool, list[str]]:
    """(healthy, problems), retrying for up to `within` seconds before giving up.

    `media`: the drill places calls with RTP, so a test call's media is checked, through
    the entry points in `carriers` (all when None). `stop`: asked before each retry; true
    (a signal came) ends the check with what it found so far."""
    deadline = time.time() + within
    while True:
        problems = _signalling(inv, stop)
        if not problems and not stop():
            problems = _calls(inv, carriers, media, stop)
        if not problems or time.time() >= deadline or stop() or \
                any(isinstance(p, Lasting) for p in problems):
            return not problems, problems
        time.sleep(0.2)
