"""A real SMTP server (aiosmtpd) on loopback that can be stopped and started again on the
same port, and that keeps every message it accepted, for the fault tests.

Use::

    server = SmtpServer()
    server.start()            # accepting on 127.0.0.1:server.port
    server.stop()             # nothing listens there any more: connections are refused
    server.refuse_after(2)    # accept two more messages, then answer 421 to the rest
    server.message_ids()      # the Message-ID of each message accepted, in order
"""

from __future__ import annotations

import socket
import threading
from email import message_from_bytes, policy

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_DATA(self, smtp, session, envelope):
        with self.server.lock:
            if self.server.accept_left is not None:
                if self.server.accept_left <= 0:
                    # Temporary: the relay is overloaded or going down; the kiosk retries later.
                    return "421 4.3.2 Service shutting down, try again later"
                self.server.accept_left -= 1
            self.server.received.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


class SmtpServer:
    """aiosmtpd on a port chosen once; ``stop`` and ``start`` close and reopen that port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.lock = threading.Lock()
        self.received: list = []
        self.accept_left: int | None = None
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def refuse_after(self, count: int | None) -> None:
        """Accept ``count`` more messages and answer 421 to the others (None: accept all)."""
        with self.lock:
            self.accept_left = count

    def message_ids(self) -> list[str]:
        with self.lock:
            return [str(message["Message-ID"]) for message in self.received]
