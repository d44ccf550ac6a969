"""A TCP proxy on loopback between a browser and a server (MinIO, or the API) that reads the
HTTP requests going through it, so a test can cut one upload part in the middle, or stall it, and
count the requests, part PUTs above all, that reached the server.

It forwards bytes unchanged (the Host header too, so presigned URLs signed for the proxy's
address stay valid) but for one header: each request asks the server to close the connection after
its answer, so every request has a connection of its own. Chromium silently sends a request
again when a connection it had used before drops before any answer (measured here: a PUT cut
on a kept-alive connection reached MinIO twice and the page saw it succeed), so on kept-alive
connections a cut would be retried by the browser, never by the page's own code. Only the request
side is parsed: each request's line and headers, then exactly Content-Length bytes of body;
answers flow back untouched.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit


@dataclass
class Forwarded:
    """One request as it went through: its method, path and query, and the body bytes sent on."""

    method: str
    path: str
    query: dict[str, str]
    length: int
    sent: int = 0
    cut: bool = False
    stalled: bool = False

    @property
    def part_number(self) -> int | None:
        """The part of a multipart upload this request PUTs, or None for any other request."""
        if self.method == "PUT" and "uploadId" in self.query and "partNumber" in self.query:
            return int(self.query["partNumber"])
        return None


class Stalled(Exception):
    """A request whose client is kept waiting with no answer (see `CuttingProxy.stall_part`)."""


class CuttingProxy:
    """`cut_part(n, after, times)` makes the next `times` PUTs of part n lose their connection (both
    sides closed at once) after `after` body bytes have been sent on. `stall_part(n, after)` makes
    the next PUT of part n hang instead: after `after` bytes the server's side is closed and the
    client is read from, never answered, until it gives up (a page reloaded mid-upload). Every
    request is recorded in `requests`."""

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.requests: list[Forwarded] = []
        self._cut: tuple[int, int, int] | None = None
        self._stall: tuple[int, int] | None = None
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self.port = 0

    def start(self) -> "CuttingProxy":
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", 0), self._loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        async def close():
            self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut_part(self, part_number: int, after: int, times: int = 1) -> None:
        with self._lock:
            self._cut = (part_number, after, times)

    def stall_part(self, part_number: int, after: int) -> None:
        with self._lock:
            self._stall = (part_number, after)

    def part_puts(self) -> list[Forwarded]:
        with self._lock:
            return [request for request in self.requests if request.part_number is not None]

    def _take_cut(self, request: Forwarded) -> int | None:
        """The byte count after which this request is cut, if it is one of those asked for."""
        with self._lock:
            if self._cut and request.part_number == self._cut[0]:
                number, after, times = self._cut
                self._cut = (number, after, times - 1) if times > 1 else None
                return after
        return None

    def _take_stall(self, request: Forwarded) -> int | None:
        with self._lock:
            if self._stall and request.part_number == self._stall[0]:
                after, self._stall = self._stall[1], None
                return after
        return None

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            client_writer.transport.abort()
            return
        answers = asyncio.ensure_future(self._pipe(upstream_reader, client_writer))
        try:
            if await self._request(client_reader, upstream_writer, client_writer):
                await asyncio.wait([answers], timeout=60)
        except Stalled:
            # The server's end goes first, with nothing of its answer passed on, so the client
            # sees neither an answer nor a closed connection until it closes its own.
            answers.cancel()
            await asyncio.gather(answers, return_exceptions=True)
            upstream_writer.transport.abort()
            while await client_reader.read(256 * 1024):
                pass
        except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # a connection closed before a whole request, or a request this proxy does not parse
        finally:
            answers.cancel()
            for writer in (client_writer, upstream_writer):
                writer.transport.abort()

    async def _request(self, reader, upstream, client) -> bool:
        """Passes on the connection's one request (see the module's docstring); False if it was cut."""
        head = await reader.readuntil(b"\r\n\r\n")
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, target, _ = request_line.split(" ", 2)
        headers = {name.strip().lower(): value.strip() for name, _, value in
                   (line.partition(":") for line in header_lines if line)}
        parts = urlsplit(target)
        query = {name: values[0] for name, values in parse_qs(parts.query, keep_blank_values=True).items()}
        request = Forwarded(method, parts.path, query, int(headers.get("content-length", 0)))
        if "transfer-encoding" in headers:
            raise OSError("a body without a Content-Length is not forwarded")
        with self._lock:
            self.requests.append(request)
        kept = [line for line in header_lines if line and not line.lower().startswith(("connection:", "keep-alive:"))]
        upstream.write("\r\n".join([request_line, *kept, "Connection: close", "", ""]).encode("latin-1"))
        cut_after = self._take_cut(request)
        stall_after = self._take_stall(request)
        remaining = request.length
        while remaining:
            chunk = await reader.read(min(remaining, 256 * 1024))
            if not chunk:
                raise asyncio.IncompleteReadError(b"", remaining)
            if stall_after is not None and request.sent + len(chunk) >= stall_after:
                upstream.write(chunk[:stall_after - request.sent])
                await upstream.drain()
                request.sent = stall_after
                request.stalled = True
                raise Stalled
            if cut_after is not None and request.sent + len(chunk) >= cut_after:
                upstream.write(chunk[:cut_after - request.sent])
                await upstream.drain()
                request.sent = cut_after
                request.cut = True
                upstream.transport.abort()
                client.transport.abort()
                return False
            upstream.write(chunk)
            await upstream.drain()
            request.sent += len(chunk)
            remaining -= len(chunk)
        return True

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(256 * 1024):
                writer.write(chunk)
                await writer.drain()
            writer.write_eof()
        except (OSError, RuntimeError):
            writer.transport.abort()
