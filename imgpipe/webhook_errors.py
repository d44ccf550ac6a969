"""Why a webhook try failed, as the category a delivery record stores.

Never the receiver's own bytes or an exception's text (a malformed status line is quoted in
it): the record is served to the upload's client, and what a receiver sends back is not ours
to repeat. The HTTP status, when there was one, is stored beside the category.
"""

from __future__ import annotations

import http.client
import socket
import ssl

from imgpipe.callback_addresses import CallbackRefused

HTTP_STATUS = "http_status"  # answered, but not 2xx
DELIVERY_ERRORS = (HTTP_STATUS, "not_allowed", "unresolvable", "timeout", "connection_refused", "tls_error",
                   "connection_failed", "bad_response")


def category(failure: BaseException) -> str:
    """The category of an exception a try raised; the most specific kind first."""
    for kind, name in ((CallbackRefused, "not_allowed"), (socket.gaierror, "unresolvable"),
                       (TimeoutError, "timeout"), (ConnectionRefusedError, "connection_refused"),
                       (ssl.SSLError, "tls_error"), (ssl.CertificateError, "tls_error"),
                       (OSError, "connection_failed"), (http.client.HTTPException, "bad_response")):
        if isinstance(failure, kind):
            return name
    raise TypeError(f"not a delivery failure: {type(failure).__name__}")
