"""A real TLS + SRTP user agent for interop tests: Debian's baresip, run from a config folder
of its own, bounded in time (-t), stopped by its PID, its own log read for what it saw.

baresip listens for TLS on its SIP port + 1. Its audio: a 440 Hz tone from a WAV file
(aufile; ausine wants 48 kHz and G.711 is 8 kHz), played into a bridge nobody reads
(aubridge): no sound device is needed. At the end of each call it prints its RTP counts
(`rtp_stats yes`), the ground truth the tests compare with the harness's figures."""
from __future__ import annotations

import math
import re
import shutil
import signal
import struct
import subprocess
import time
import wave
from dataclasses import dataclass
from pathlib import Path

MODULES = ("g711.so", "aufile.so", "aubridge.so", "srtp.so")
STATS = re.compile(r"packets:\s+(\d+)\s+(\d+)\s*\n.*?errors:\s+(\d+)\s+(\d+)", re.S)


@dataclass
class CallStats:
    """baresip's own counts of one call's RTP (after SRTP: what it could read)."""
    sent: int
    received: int
    errors: int


def _tone(path: Path, seconds: int = 60) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / 8000)))
                               for i in range(8000 * seconds)))


class Baresip:
    def __init__(self, folder: Path, listen: str, account: str, ca_file: Path | None = None,
                 certificate: Path | None = None, commands: tuple[str, ...] = (),
                 seconds: int = 30, record: bool = False):
        if shutil.which("baresip") is None:
            raise RuntimeError("baresip is not installed (Debian's baresip-core; .ci/run "
                               "installs it)")
        self.folder, self.seconds = folder, seconds
        folder.mkdir(parents=True, exist_ok=True)
        _tone(folder / "tone.wav")
        lines = ["poll_method epoll", f"sip_listen {listen}",
                 f"audio_source aufile,{folder / 'tone.wav'}", "audio_player aubridge,nobody",
                 "rtp_stats yes", "module_path /usr/lib/baresip/modules",
                 *(f"module {m}" for m in MODULES), "module_tmp account.so",
                 "module_app menu.so"]
        if record:  # sndfile: what baresip decoded of each call, as WAV files in the folder
            lines += ["module sndfile.so", f"snd_path {folder}"]
        if certificate:
            lines.append(f"sip_certificate {certificate}")
        if ca_file:
            lines.append(f"sip_cafile {ca_file}")
        (folder / "config").write_text("\n".join(lines) + "\n")
        (folder / "accounts").write_text(account + "\n")
        self.argv = ["baresip", "-f", str(folder), "-t", str(seconds)]
        for c in commands:
            self.argv += ["-e", c]
        self.log_path = folder / "baresip.log"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "Baresip":
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, cwd=self.folder)
        self.wait_for("baresip is ready", 10)
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, what: str | re.Pattern, timeout: float) -> str:
        """The log once it has `what` (polled: baresip tells nothing else); fails after
        `timeout` or when baresip exits without it."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.text()
            if (what.search(text) if isinstance(what, re.Pattern) else what in text):
                return text
            if time.monotonic() > deadline or (self.proc and self.proc.poll() is not None):
                raise AssertionError(f"baresip never logged {what!r}:\n{text[-3000:]}")
            time.sleep(0.1)

    def calls(self) -> list[CallStats]:
        """Each ended call's RTP counts, as baresip printed them."""
        return [CallStats(int(tx), int(rx), int(erx)) for tx, rx, _, erx in
                STATS.findall(self.text())]
