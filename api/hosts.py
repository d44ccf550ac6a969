"""The Host names the API answers to. A page on any website can make a browser send requests to
a name the attacker controls that resolves to the owner's machine (DNS rebinding); the Host
header still carries that name, so refusing unknown names keeps such pages out.

/healthz is exempt: probes call it by address, and it says nothing a stranger could use.
"""

from __future__ import annotations

from flask import Flask, request

from api.access import OPEN_PATHS
from api.errors import error_response
from imgpipe.error_codes import ApiError
from imgpipe.settings import Settings


def install(app: Flask, settings: Settings) -> None:
    allowed = settings.api_hosts

    @app.before_request
    def require_known_host():
        if request.path in OPEN_PATHS or host_name(request.host) in allowed:
            return None
        return error_response(400, ApiError.UNKNOWN_HOST, "this API does not answer to that host name;"
                                                   " IMGPIPE_ALLOWED_HOSTS lists the names it does")


def host_name(host: str) -> str:
    """The name of a Host header, without its port or IPv6 brackets, lower case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0].rstrip(".") if ":" in host else host.rstrip(".")
