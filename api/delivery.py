"""One address per derivative: GET (and HEAD) /uploads/<id>/<preset> redirects to its object.

The format is negotiated from `Accept` (imgpipe.negotiation) among those the upload has for the
preset, so one address serves AVIF to a browser that shows it and JPEG to one that does not;
`Vary: Accept` tells caches so. The answer is a 302 to the object itself: the permanent URL in
public delivery mode, a fresh presigned GET (signed by the read identity) in private mode, so the
API never carries image bytes. Who may ask is api.access's to say (a signed delivery URL, the API
credential, or anyone in public mode).

A redirect may be kept for IMGPIPE_DELIVERY_MAX_AGE seconds. Its ETag names the object it points
to, so a client holding it is answered 304 while the object stays the same. In private mode the
presigned URL is signed as of the start of a window (IMGPIPE_RESULT_URL_TTL minus the max-age
long), and the ETag names the window too: every redirect of a window points at the same URL, so
browsers and caches keep one copy of the image, and a redirect kept, or renewed by a 304, never
outlives the URL it points to.
"""

from __future__ import annotations

import hashlib
import time
from datetime import datetime, timezone

from flask import Blueprint, Response, current_app, g, request

from api.validation import RequestRejected
from imgpipe import uploads
from imgpipe.delivery_urls import DeliveryRefused, verify
from imgpipe.error_codes import ApiError
from imgpipe.negotiation import choose
from imgpipe.records import permanent_url

bp = Blueprint("delivery", __name__)
ENDPOINT = "delivery.deliver"
PUBLIC = "public"
# How api.access admitted the request: by the URL alone (anyone holding it may be answered from a
# shared cache), or by a credential (only that client's own cache may keep the answer).
BY_URL = "url"
_UNJUDGED = object()


def judged_by_url(settings) -> bool:
    """Whether the request is for a derivative's address and its URL alone decides: always in public
    mode, and in private mode when it carries a signature (right or wrong)."""
    return request.endpoint == ENDPOINT and (settings.delivery == PUBLIC or "sig" in request.args)


def url_refusal(settings) -> DeliveryRefused | None:
    """Why the URL opens nothing, None when it opens the address; judged once per request, as both
    api.limits and api.access ask."""
    verdict = g.get("delivery_refusal", _UNJUDGED)
    if verdict is _UNJUDGED:
        verdict = None
        if settings.delivery != PUBLIC:
            args, view = request.args, request.view_args or {}
            try:
                verify(settings.delivery_secret, view.get("upload_id", ""), view.get("preset", ""),
                       args.get("sig", ""), args.get("exp"), time.time())
            except DeliveryRefused as refused:
                verdict = refused
        g.delivery_refusal = verdict
    return verdict


@bp.get("/uploads/<upload_id:upload_id>/<preset>", strict_slashes=False)
def deliver(upload_id: str, preset: str):
    svc = current_app.extensions["imgpipe"]
    settings = svc.settings
    objects = _objects_of(uploads.get_upload(svc.db, upload_id), upload_id, preset, settings.derivative_presets)
    chosen = choose(request.headers.get("Accept"), frozenset(objects))
    stored = objects[chosen]
    signed_at = None if settings.delivery == PUBLIC else signing_moment(
        uploads.utcnow(), settings.result_url_ttl, settings.delivery_max_age)
    etag = hashlib.sha256(f"{stored.key}\n{chosen}\n{signed_at and signed_at.isoformat()}".encode()).hexdigest()[:32]
    visibility = "public" if g.get("delivery_access") == BY_URL else "private"
    if request.if_none_match.contains_weak(etag):
        response = Response(status=304)
    else:
        response = Response(status=302)
        response.headers["Location"] = _location(svc, stored.key, signed_at)
    response.set_etag(etag)
    response.headers["Cache-Control"] = f"{visibility}, max-age={settings.delivery_max_age}"
    response.vary.add("Accept")
    return response


@bp.after_request
def no_store_refusals(response: Response) -> Response:
    """A refusal says how things stand now (not completed yet, URL expired): no cache may keep it."""
    if response.status_code >= 400:
        response.headers["Cache-Control"] = "no-store"
    return response


def _objects_of(row: dict | None, upload_id: str, preset: str, presets) -> dict:
    """format -> object of the preset the upload has; refused when there is none to send."""
    if row is None:
        raise RequestRejected(404, ApiError.NOT_FOUND, f"no upload with id {upload_id!r}")
    if presets.get(preset) is None:
        raise RequestRejected(404, ApiError.NOT_FOUND,
                              f"no preset {preset!r}; this server's presets are {', '.join(presets.names)}")
    if row["status"] == uploads.DELETED:
        raise RequestRejected(410, ApiError.UPLOAD_DELETED, f"upload {upload_id} was deleted; its derivatives are gone")
    if row["status"] != uploads.COMPLETED:
        raise RequestRejected(409, ApiError.UPLOAD_NOT_COMPLETED,
                              f"upload {upload_id} is {row['status']}, not completed: it has no derivatives yet")
    objects = uploads.derivative_objects(row).get(preset)
    if not objects:
        raise RequestRejected(404, ApiError.NOT_FOUND, f"upload {upload_id} has no {preset!r} derivative")
    return objects


def signing_moment(now: datetime, ttl: int, max_age: int) -> datetime:
    """The start of the window `now` is in. A URL signed then lives until start + ttl; a redirect
    given before the window ends is kept at most max_age longer, which is no later."""
    window = ttl - max_age  # at least 1: settings keep max_age below ttl
    return datetime.fromtimestamp(int(now.timestamp()) // window * window, timezone.utc)


def _location(svc, key: str, signed_at: datetime | None) -> str:
    settings = svc.settings
    if signed_at is None:
        return permanent_url(settings.public_s3_url, settings.s3_bucket_name, key)
    return svc.storage.presign_get(key, settings.result_url_ttl, signed_at)
