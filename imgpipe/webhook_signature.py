"""Signing webhook bodies so receivers can tell them from forgeries and refuse replays.

The signature is HMAC-SHA256, keyed with IMGPIPE_WEBHOOK_SECRET, of "<timestamp>.<body>": the
timestamp (Unix seconds, sent in its own header) is covered, so a receiver that refuses old
timestamps also refuses a recorded request sent again. Pure: the caller passes the moment.
"""

from __future__ import annotations

import hashlib
import hmac

TIMESTAMP_HEADER = "X-Imgpipe-Timestamp"
SIGNATURE_HEADER = "X-Imgpipe-Signature"
SCHEME = "v1"
DEFAULT_TOLERANCE = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of b"<timestamp>.<body>" keyed with `secret`."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers a delivery carries; without a secret only the timestamp (nothing to sign with)."""
    headers = {TIMESTAMP_HEADER: str(timestamp)}
    if secret:
        headers[SIGNATURE_HEADER] = f"{SCHEME}={signature(secret, timestamp, body)}"
    return headers


def verify(secret: str, headers, body: bytes, now: float, tolerance: int = DEFAULT_TOLERANCE) -> bool:
    """True when `headers` (any mapping, looked up as sent) sign `body` with `secret` and the
    timestamp is within `tolerance` seconds of `now`: what a receiver checks."""
    timestamp, sent = headers.get(TIMESTAMP_HEADER, ""), headers.get(SIGNATURE_HEADER, "")
    if not timestamp.isdigit() or abs(now - int(timestamp)) > tolerance:
        return False
    scheme, _, digest = sent.partition("=")
    return scheme == SCHEME and hmac.compare_digest(digest, signature(secret, int(timestamp), body))
