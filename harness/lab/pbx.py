"""Sandbox PBX node: answers INVITE (100, 180, 200 + SDP), sends G.711 RTP, honours BYE.

Run as its own process: `python -m harness.lab.pbx --name pbx-1 --listen 127.10.0.11:5060`.
The node itself is harness/sip/answering.py.
"""
from __future__ import annotations

import argparse

from harness.sip.answering import PbxNode
from harness.sip.endpoint import run_forever


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--name", required=True)
    ap.add_argument("--listen", required=True, help="ip:port")
    ap.add_argument("--ring-delay", type=float, default=0.02)
    ap.add_argument("--answer-delay", type=float, default=0.05)
    ap.add_argument("--stats-file", help="write call counts here on exit")
    ap.add_argument("--channels", type=int, help="calls held at once before answering 503")
    ap.add_argument("--contact", help="ip:port its 200 advertises (default: --listen)")
    ap.add_argument("--drop-record-route", action="store_true",
                    help="strip Record-Route from its 200 (a PBX that breaks in-dialog routing)")
    ap.add_argument("--answer-cancelled", action="store_true",
                    help="answer after the ring time whatever a CANCEL said (its 200 crosses "
                         "the CANCEL: a late answer the caller must end)")
    a = ap.parse_args(argv)
    ip, port = a.listen.rsplit(":", 1)
    node = PbxNode(a.name, ip, int(port), a.ring_delay, a.answer_delay, a.stats_file, a.channels,
                   a.contact, a.drop_record_route, a.answer_cancelled)
    run_forever(node.start)


if __name__ == "__main__":
    main()
