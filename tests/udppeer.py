"""A UDP peer on 127.0.0.1 for tests: a socket served by a thread of its own until closed."""
import socket
import threading


class UdpPeer:
    """Calls `handle(data, sender)` for each datagram (answer with `self.sock.sendto`);
    `got` counts them."""

    def __init__(self, handle=lambda data, sender: None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.handle, self.got = handle, 0
        self.quit = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @property
    def addr(self) -> tuple[str, int]:
        return self.sock.getsockname()

    def _run(self):
        while not self.quit.is_set():
            try:
                data, sender = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            self.got += 1
            self.handle(data, sender)

    def close(self):
        self.quit.set()
        self.thread.join()
        self.sock.close()
