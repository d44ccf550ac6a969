"""POSTing a webhook to an address that passed the callback check, and to no other.

The host is resolved once, its addresses checked (imgpipe.callback_addresses), and the
connection made to one of exactly those addresses: a DNS answer that changes between the check
and the connection cannot send the request elsewhere. The Host header, and over HTTPS the
certificate check and SNI, still use the name. Redirects are not followed: a 3xx is an answer
like any other that is not 2xx.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from urllib.parse import urlsplit

from imgpipe.callback_addresses import WEB_PORTS, Resolver, delivery_addresses, resolve_host

USER_AGENT = "imgpipe-webhook/1"


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self):
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self.address = address

    def connect(self):
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post_webhook(url: str, body: bytes, headers: dict[str, str], *, allowed_hosts: frozenset[str],
                 timeout: float, allowed_ports: frozenset[int] | None = WEB_PORTS,
                 resolve: Resolver = resolve_host) -> int:
    """POST `body` as JSON to `url` and return the HTTP status of the answer.

    Raises CallbackRefused for a port not allowed or a host that resolves to a forbidden address, OSError when it does
    not resolve or no address accepts a connection, http.client.HTTPException for a broken answer.
    Only connecting moves on to the next address; once a request is sent its answer counts.
    """
    parts = urlsplit(url)
    connection_class = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    refused: OSError | None = None
    for address in delivery_addresses(url, allowed_hosts, resolve, allowed_ports=allowed_ports):
        connection = connection_class(parts.hostname, port, address, timeout)
        try:
            try:
                connection.connect()
            except OSError as error:
                refused = error
                continue
            connection.request("POST", target, body=body, headers={
                "Content-Type": "application/json", "User-Agent": USER_AGENT, **headers})
            return connection.getresponse().status
        finally:
            connection.close()
    raise refused or OSError(f"{parts.hostname} has no address")
