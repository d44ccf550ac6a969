"""A webhook receiver on loopback for the tests: records every request, answers from a script."""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


class Receiver:
    """Answers the n-th request with answers[n] (a status, (status, headers), or a function
    returning one, called while the request waits), then `default`."""

    def __init__(self, server: ThreadingHTTPServer, answers, default):
        self.server = server
        self.answers = list(answers)
        self.default = default
        self.received: list[Received] = []
        self.lock = threading.Condition()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def record(self, received: Received):
        with self.lock:
            self.received.append(received)
            self.lock.notify_all()
            answer = self.answers.pop(0) if self.answers else self.default
        if callable(answer):
            answer = answer()
        return answer if isinstance(answer, tuple) else (answer, {})

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self.lock:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"{len(self.received)} of {count} webhook requests arrived within {timeout} s"
                self.lock.wait(left)
            return list(self.received)


@contextlib.contextmanager
def webhook_receiver(answers=(), default=204):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            status, headers = receiver.record(Received(self.path, dict(self.headers), body, time.time()))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver = Receiver(server, answers, default)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
