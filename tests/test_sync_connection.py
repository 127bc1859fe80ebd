"""The kiosk's connection to the rectorat.

A call that the rectorat answers alike when it comes twice is sent again at once when its
connection drops before the answer; any other is not. The rectorat keeps an idle
connection open longer than a kiosk uses one again. Real sockets on loopback: a small
HTTP/1.1 server that drops the second request of its first connection (what a server or
proxy closing an idle connection does when a request crosses it), and ``kiosk rectorat
serve`` itself.
"""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from kiosk.runtime.config import SyncConfig
from kiosk.sync.client import KEEPALIVE_EXPIRY, SyncClient, SyncUnavailable, encode_push
from tests.support.rectorat_process import RectoratProcess

ANSWERS = {
    "/v1/health": {"ok": True, "now": "2019-11-10T09:00:00.000000+00:00"},
    "/v1/push": {"results": [], "now": "2019-11-10T09:00:00.000000+00:00"},
    "/v1/changes": {"changes": [], "last": 0},
    "/v1/accounts/login": {"error": "login"},
}


def _read_request(stream) -> tuple[str, str] | None:
    """Method and path of the next request on ``stream`` (its body read and dropped)."""
    line = stream.readline()
    if not line:
        return None
    method, target, _ = line.decode("ascii").split(" ", 2)
    length = 0
    while (header := stream.readline()) not in (b"\r\n", b""):
        name, _, value = header.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    stream.read(length)
    return method, target.split("?", 1)[0]


class DroppingServer:
    """Answers every request, except the second one of its first connection: that one
    it reads, then closes the connection without a word."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.requests: list[tuple[int, str, str]] = []  # connection, method, path
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        number = 0
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:  # closed: the test is over
                return
            threading.Thread(target=self._serve, args=(connection, number), daemon=True).start()
            number += 1

    def _serve(self, connection: socket.socket, number: int) -> None:
        with connection, connection.makefile("rb") as stream:
            for order in range(1, 100):
                request = _read_request(stream)
                if request is None:
                    return
                self.requests.append((number, *request))
                if number == 0 and order == 2:
                    return  # dropped before the answer
                body = json.dumps(ANSWERS[request[1]]).encode()
                connection.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def dropping():
    server = DroppingServer()
    client = SyncClient(SyncConfig(url=server.url, token="borne:jeton", timeout=5))
    yield server, client
    client.close()
    server.close()


@pytest.mark.parametrize(
    ("path", "call"),
    [
        ("/v1/push", lambda client: client.push_body(encode_push([]))),
        ("/v1/changes", lambda client: client.changes(after=0)),
        ("/v1/health", lambda client: client.health()),
    ],
)
def test_a_call_answered_alike_twice_is_sent_again_when_its_connection_drops(dropping, path, call):
    server, client = dropping
    client.health()  # the connection that the next call finds dropped
    assert call(client) == ANSWERS[path].get("results", ANSWERS[path])
    method = "GET" if path != "/v1/push" else "POST"
    assert server.requests == [(0, "GET", "/v1/health"), (0, method, path), (1, method, path)]


def test_a_login_is_never_sent_twice_when_its_connection_drops(dropping):
    server, client = dropping
    client.health()
    with pytest.raises(SyncUnavailable, match="RemoteProtocolError"):
        client.login("camille@exemple.fr", "mot de passe")
    assert server.requests == [(0, "GET", "/v1/health"), (0, "POST", "/v1/accounts/login")]


def test_the_rectorat_keeps_an_idle_connection_open_longer_than_a_kiosk_uses_one(tmp_path):
    rectorat = RectoratProcess(tmp_path / "rectorat")
    rectorat.start()
    request = f"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1:{rectorat.port}\r\n\r\n".encode()
    try:
        with socket.create_connection(("127.0.0.1", rectorat.port), timeout=10) as connection:
            stream = connection.makefile("rb")
            for turn in range(2):
                if turn:  # the longest a kiosk leaves a connection idle before it uses it again
                    time.sleep(KEEPALIVE_EXPIRY + 1)
                connection.sendall(request)
                status = stream.readline()
                assert status.startswith(b"HTTP/1.1 200"), status
                length = 0
                while (header := stream.readline()) not in (b"\r\n", b""):
                    name, _, value = header.decode("latin-1").partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                assert json.loads(stream.read(length))["ok"] is True
    finally:
        rectorat.stop()
