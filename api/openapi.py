"""GET /openapi.json: the HTTP contract as an OpenAPI 3.1 document.

Kept as data next to the routes it describes; tests/integration/test_openapi.py validates real
answers from a running stack against it, and fails when a route exists that it does not describe.
"""

from __future__ import annotations

import copy

from flask import Blueprint, current_app

from api.contract import batch_schema, new_upload_schema
from api.listing import CURSOR_PATTERN, DEFAULT_LIMIT, MAX_LIMIT
from imgpipe.uploads import CALLBACK_STATES, STATUSES
from imgpipe.error_codes import ApiError
from imgpipe.webhook_errors import DELIVERY_ERRORS
from imgpipe.engines import ENGINES
from imgpipe.formats import ALL_CONTENT_TYPES, OUTPUT_FORMATS, writable_formats
from imgpipe.multipart import MAX_PARTS, MIN_PART_SIZE
from imgpipe.version import VERSION

bp = Blueprint("openapi", __name__)

ID_PATTERN = "^[0-9a-f]{32}$"
NULLABLE_URL = {"type": ["string", "null"], "format": "uri"}
TIMESTAMP = {"type": "string", "format": "date-time"}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict:
    return _json(_ref("Error"), description)


def _closed(properties: dict, required: list[str] | None = None) -> dict:
    """An object with exactly these properties: an answer that grows a field must update the spec."""
    return {"type": "object", "properties": properties, "required": required or list(properties),
            "additionalProperties": False}


# An upload as GET /uploads lists it; GET /uploads/<id> adds its callback.
SUMMARY_PROPERTIES = {
    "id": {"type": "string", "pattern": ID_PATTERN},
    "status": _ref("Status"),
    "error": _ref("UploadError"),
    "created_at": TIMESTAMP,
    "updated_at": TIMESTAMP,
    "filename": {"type": "string"},
    "content_type": {"type": "string"},
    "key": {"type": "string"},
    "deleted_at": {"type": ["string", "null"], "format": "date-time",
                   "description": "When the upload was deleted (its objects removed); null otherwise."},
    "results": _ref("UploadResults"),
    "image": _closed({
        "width": {"type": ["integer", "null"]},
        "height": {"type": ["integer", "null"]},
        "format": {"type": ["string", "null"]},
        "bytes": {"type": ["integer", "null"]},
        "blurhash": {"type": ["string", "null"], "minLength": 6,
                     "description": "A BlurHash of the picture (https://blurha.sh): a blurred stand-in a page "
                                    "decodes and shows while the image loads; null until completed."},
        "dominant_color": {"type": ["string", "null"], "pattern": "^#[0-9a-f]{6}$",
                           "description": "The colour covering most of the picture, #rrggbb; null until completed."},
    }),
    "moderation": _ref("Moderation"),
}

# NewUpload and NewUploadBatch, the request bodies, are added by document_for from api/contract.py.
SCHEMAS = {
    "Error": _closed({"error": _closed({"code": {"type": "string"}, "message": {"type": "string"}})}),
    "Status": {"type": "string", "enum": list(STATUSES),
               "description": "pending → processing → completed | failed, and deleted from any of them; "
                              "never back."},
    "UploadError": {
        "oneOf": [{"type": "null"}, _closed({"code": {"type": "string"}, "message": {"type": "string"}})],
        "description": "null unless the upload failed; then a stable code (not_an_image, corrupt_image, …) and a message.",
    },
    "UploadBatchCreated": _closed({
        "uploads": {"type": "array", "description": "One entry per file, in order.",
                    "items": {"oneOf": [_ref("UploadCreated"), _ref("MultipartUploadCreated"),
                                        _ref("BatchEntryRefused")]}},
    }),
    "BatchEntryRefused": _closed({
        "error": _closed({"code": {"type": "string"}, "message": {"type": "string"}}),
        "status": {"enum": [400, 415], "description": "What POST /uploads would have answered for this entry."},
    }),
    "UploadCreated": _closed({
        "id": {"type": "string", "pattern": ID_PATTERN},
        "status": {"const": "pending"},
        "key": {"type": "string", "pattern": "^originals/[0-9a-f]{32}\\.[a-z0-9]+$"},
        "upload": _closed({
            "method": {"const": "PUT"},
            "url": {"type": "string", "format": "uri"},
            "headers": {**_closed({"Content-Type": {"type": "string"}, "If-None-Match": {"const": "*"},
                                   "Content-Length": {"type": "string", "pattern": "^[0-9]+$"}}),
                        "description": "Send every one of these headers with the PUT: the URL's signature covers "
                                       "them. Content-Length is the declared size (curl and browsers send it "
                                       "themselves from the file; a browser refuses to set it by hand)."},
            "expires_at": TIMESTAMP,
        }),
    }),
    "MultipartUploadCreated": _closed({
        "id": {"type": "string", "pattern": ID_PATTERN},
        "status": {"const": "pending"},
        "key": {"type": "string", "pattern": "^originals/[0-9a-f]{32}\\.[a-z0-9]+$"},
        "multipart": {**_closed({
            "upload_id": {"type": "string", "description": "The store's multipart upload id."},
            "key": {"type": "string", "description": "The object key, as key."},
            "part_size": {"type": "integer", "minimum": MIN_PART_SIZE,
                          "description": "Bytes of every part but the last, which holds the rest."},
            "part_count": {"type": "integer", "minimum": 1, "maximum": MAX_PARTS},
            "expires_at": {**TIMESTAMP, "description": "Until when parts may be sent and the upload completed "
                                                       "(IMGPIPE_MULTIPART_TTL); later, it is aborted."},
        }), "description": "Send part n (1..part_count) with GET /uploads/{id}/multipart/parts/{n}'s URL, "
                           "then POST /uploads/{id}/multipart/complete."},
    }),
    "PartUrl": _closed({
        "part_number": {"type": "integer", "minimum": 1, "maximum": MAX_PARTS},
        "url": {"type": "string", "format": "uri"},
        "method": {"const": "PUT"},
        "headers": {**_closed({"Content-Length": {"type": "string", "pattern": "^[0-9]+$"}}),
                    "description": "The URL signs the part's length: storage refuses a PUT of any other."},
        "size": {"type": "integer", "minimum": 1, "description": "Bytes of this part."},
        "expires_at": TIMESTAMP,
    }),
    "PartList": _closed({
        "parts": {"type": "array", "description": "The parts the store holds, in order, as it lists them.",
                  "items": _closed({"part_number": {"type": "integer", "minimum": 1},
                                    "size": {"type": "integer", "minimum": 0},
                                    "etag": {"type": "string"}})},
    }),
    "CompleteParts": _closed({
        "parts": {"type": "array", "minItems": 1, "maxItems": MAX_PARTS,
                  "description": "Every part 1..part_count once, with the ETag its PUT was answered with.",
                  "items": _closed({"part_number": {"type": "integer", "minimum": 1},
                                    "etag": {"type": "string"}})},
    }),
    "UploadStatus": _closed({
        "id": {"type": "string", "pattern": ID_PATTERN},
        "status": _ref("Status"),
        "error": _ref("UploadError"),
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
    }),
    "UploadResults": _closed({
        "id": {"type": "string", "pattern": ID_PATTERN},
        "status": _ref("Status"),
        "original": NULLABLE_URL,
        "resized": NULLABLE_URL,
        "compressed": NULLABLE_URL,
        "thumbnail": NULLABLE_URL,
        "formats": {"type": "object", "propertyNames": {"enum": list(OUTPUT_FORMATS)},
                    "additionalProperties": {"type": "object", "additionalProperties": NULLABLE_URL},
                    "description": "Per format, the URL of every preset made in it: the same URLs as presets, "
                                   "grouped the other way."},
        "presets": {"type": "object", "additionalProperties": {
                        "type": "object", "propertyNames": {"enum": list(OUTPUT_FORMATS)},
                        "additionalProperties": NULLABLE_URL},
                    "description": "Per preset, the URL of its object in each format it is made in: once completed, "
                                   "what the upload has of the presets in use; before, what it is going to get "
                                   "(null URLs). The top-level resized, compressed and thumbnail are the built-in "
                                   "presets' JPEG URLs, null when the upload has none."},
        "sizes": {"type": "object", "additionalProperties": _closed({
                      "width": {"type": ["integer", "null"]}, "height": {"type": ["integer", "null"]}}),
                  "description": "Per preset, the width and height of its objects (for srcset); null for objects "
                                 "stored before sizes were recorded, and before the upload is completed."},
        "expires_at": {"type": ["string", "null"], "format": "date-time",
                       "description": "When the URLs expire; null before completion and, with IMGPIPE_DELIVERY="
                                      "public, for permanent derivative URLs (the original's lasts "
                                      "IMGPIPE_RESULT_URL_TTL)."},
    }),
    "UploadRecord": _closed({**SUMMARY_PROPERTIES, "callback": _ref("Callback")}),
    "UploadSummary": _closed(SUMMARY_PROPERTIES),
    "UploadList": _closed({
        "uploads": {"type": "array", "items": _ref("UploadSummary"), "description": "Newest first."},
        "next_cursor": {"type": ["string", "null"], "pattern": CURSOR_PATTERN,
                        "description": "Pass as cursor for the page after this one; null on the last page."},
    }),
    "Moderation": {
        "oneOf": [{"type": "null"}, _closed({
            "score": {"type": "number", "minimum": 0, "maximum": 1,
                      "description": "The model's probability that the picture is not safe for work."},
            "flagged": {"type": "boolean",
                        "description": "score at or over the threshold. In reject mode a flagged upload is failed "
                                       "(rejected_by_moderation) and has no derivatives; in flag mode it completes."},
            "threshold": {"type": "number", "minimum": 0, "maximum": 1,
                          "description": "IMGPIPE_MODERATION_THRESHOLD when the upload was scored."},
            "model": _closed({"name": {"type": "string"}, "version": {"type": "string"}}),
        })],
        "description": "null when moderation was off for the upload, or before it was processed.",
    },
    "Callback": {
        "oneOf": [{"type": "null"}, _closed({
            "url": {"type": "string", "format": "uri"},
            "state": {"enum": [*CALLBACK_STATES, None],
                      "description": "pending until a try is answered 2xx (delivered) or the last try fails (failed); "
                                     "skipped, with no try, for an upload whose URL expired unused; "
                                     "null for uploads made before this server sent webhooks."},
            "attempts": {"type": "array", "items": _closed({
                "at": TIMESTAMP,
                "http_status": {"type": ["integer", "null"], "description": "null when no HTTP answer came."},
                "error": {"enum": [*DELIVERY_ERRORS, None],
                          "description": "Why the try failed, as a category (what the receiver answered is never "
                                         "stored; http_status has its status); null when it was delivered."},
            })},
        })],
        "description": "null without a callback_url; otherwise where the webhook goes and every try so far.",
    },
    "Healthy": _closed({
        "status": {"const": "ok"},
        "checks": _closed({name: {"const": "ok"} for name in ("database", "redis", "storage")}),
        "database": _ref("DatabaseHealth"),
        "version": _ref("Version"),
    }),
    "Unhealthy": _closed({
        "status": {"const": "unavailable"},
        "down": {"type": "array", "items": {"enum": ["database", "redis", "storage"]}},
        "checks": _closed({name: {"enum": ["ok", "down"]} for name in ("database", "redis", "storage")}),
        "error": _closed({"code": {"const": ApiError.UNAVAILABLE}, "message": {"type": "string"}}),
        "database": _ref("DatabaseHealth"),
        "version": _ref("Version"),
    }),
    "Version": {"type": "string", "description": "This API's imgpipe version (the OpenAPI info.version too)."},
    "DatabaseHealth": _closed({
        "ok": {"type": "boolean", "description": "Whether the database answered."},
        "engine": {"enum": list(ENGINES), "description": "The engine DATABASE_URL names (sqlite by default)."},
    }),
}

UPLOAD_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"},
             "description": "The id POST /uploads answered (32 hex digits); anything else is answered 404."}
UNAUTHORIZED = _error("IMGPIPE_API_TOKEN is set and the request did not send it (unauthorized), or a browser "
                      "upload token was sent that has expired (token_expired) or is not validly signed and "
                      "formed (invalid_token).")
FORBIDDEN = _error("A browser upload token was sent: it may only create uploads and read the uploads made with it "
                   "(forbidden).")
USED_UP = _error("A browser upload token was sent that may not create this many more files or bytes "
                 "(token_exhausted), or that may only read the uploads made with it (forbidden).")
NOT_FOUND = _error("No upload with this id.")
RATE_LIMITED = _error("Too many requests from this client (rate_limited): wrong credentials and requests without one "
                      "per address, a browser upload token's creations per token; the Retry-After header says in how "
                      "many seconds to try again. The API token is not limited unless IMGPIPE_RATE_LIMIT_API_TOKEN "
                      "says so.")


def _create(deprecated: bool = False) -> dict:
    return {
        "summary": "Ask for an upload URL" + (" (older path)" if deprecated else ""),
        "description": "Records a pending upload and answers a presigned PUT URL. Send exactly `size` bytes "
                       "there with the headers given (storage refuses any other length, and a second PUT); "
                       "processing starts when the object lands. With `multipart: true`, or a size from "
                       "IMGPIPE_MULTIPART_THRESHOLD_MB on, the answer is a multipart upload instead, sent in parts "
                       "(docs/guides/resumable-uploads.md).",
        "operationId": "createUploadLegacy" if deprecated else "createUpload",
        "deprecated": deprecated,
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("NewUpload")}}},
        "responses": {
            "201": _json({"oneOf": [_ref("UploadCreated"), _ref("MultipartUploadCreated")]},
                         "A pending upload and where to PUT its bytes, in one PUT or in parts."),
            "400": _error("The body is not the JSON object this call expects, size included, or is nested more than "
                          "32 deep (invalid_request), "
                          "the size is over the limit (too_large), a format cannot be written "
                          "(unsupported_output_format), a preset does not exist (unknown_preset), or the callback "
                          "URL leads to a forbidden address (callback_not_allowed)."),
            "401": UNAUTHORIZED,
            "403": USED_UP,
            "413": _error("The request body is over 64 KiB."),
            "415": _error("The content type is not an accepted image type."),
            "429": RATE_LIMITED,
            "503": _error("Object storage is unavailable."),
        },
    }


CREATE_BATCH = {
    "summary": "Ask for several upload URLs at once",
    "description": "Each entry is handled as POST /uploads handles its body; the answer has one entry per file, "
                   "in order: what POST /uploads would answer, or the refusal in that entry's place.",
    "operationId": "createUploadBatch",
    "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("NewUploadBatch")}}},
    "responses": {
        "201": _json(_ref("UploadBatchCreated"), "One entry per file."),
        "400": _error("The body is not a JSON object with a non-empty files list of objects (invalid_request), "
                      "or has more files than the limit (too_many_files)."),
        "401": UNAUTHORIZED,
        "403": USED_UP,
        "413": _error("The request body is over 64 KiB."),
        "429": RATE_LIMITED,
        "503": _error("Object storage is unavailable."),
    },
}


def _status(deprecated: bool = False) -> dict:
    return {
        "summary": "An upload's status" + (" (older path)" if deprecated else ""),
        "operationId": "getStatusLegacy" if deprecated else "getStatus",
        "deprecated": deprecated,
        "parameters": [UPLOAD_ID],
        "responses": {"200": _json(_ref("UploadStatus"), "pending → processing → completed | failed."),
                      "401": UNAUTHORIZED, "403": FORBIDDEN, "404": NOT_FOUND},
    }


def _results(deprecated: bool = False) -> dict:
    return {
        "summary": "Presigned GET URLs of the original and its versions" + (" (older path)" if deprecated else ""),
        "operationId": "getResultsLegacy" if deprecated else "getResults",
        "deprecated": deprecated,
        "parameters": [UPLOAD_ID],
        "responses": {"200": _json(_ref("UploadResults"), "URLs once completed, null before."),
                      "401": UNAUTHORIZED, "403": FORBIDDEN, "404": NOT_FOUND,
                      "503": _error("Object storage is unavailable.")},
    }


DELIVERY_HEADERS = {
    "Vary": {"schema": {"const": "Accept"}, "description": "The format depends on Accept."},
    "ETag": {"schema": {"type": "string"},
             "description": "Strong; names the object the redirect points to (in private mode, and the window its "
                            "URL was signed in)."},
    "Cache-Control": {"schema": {"type": "string"},
                      "description": "`public, max-age=N` (IMGPIPE_DELIVERY_MAX_AGE) when the URL alone opened it "
                                     "(signed, or public mode); `private, max-age=N` when the API credential did."},
}
DELIVER = {
    "summary": "One derivative, in the best format the client accepts: a redirect to its object",
    "description": "Negotiates from Accept among the formats the upload has for the preset: AVIF, then WebP, then "
                   "JPEG and PNG, honouring q-values. AVIF and WebP go only to a client that names them; a wildcard "
                   "stands for JPEG and PNG, and a client that accepts none of the formats there are gets JPEG "
                   "(else PNG), never 406. Answers 302 to the object: its permanent URL in public delivery mode, a "
                   "fresh presigned GET in private mode. Private mode opens to a signed delivery URL (sig, exp) or "
                   "the API credential; public mode (IMGPIPE_DELIVERY=public) to anyone. HEAD answers the same "
                   "without a body. Refusals carry Cache-Control: no-store (docs/guides/delivery.md).",
    "operationId": "deliverDerivative",
    "security": [{"apiToken": []}, {"deliverySignature": []}, {}],
    "parameters": [
        UPLOAD_ID,
        {"name": "preset", "in": "path", "required": True, "schema": {"type": "string"},
         "description": "A preset of this server (built in: resized, compressed, thumbnail)."},
        {"name": "sig", "in": "query", "required": False, "schema": {"type": "string"},
         "description": "The delivery signature a web app's backend minted (imgpipe delivery-url)."},
        {"name": "exp", "in": "query", "required": False, "schema": {"type": "string"},
         "description": "When the signed URL stops working, Unix seconds, as minted (signed with the rest)."},
        {"name": "Accept", "in": "header", "required": False, "schema": {"type": "string"}},
        {"name": "If-None-Match", "in": "header", "required": False, "schema": {"type": "string"}},
    ],
    "responses": {
        "302": {"description": "To the object in the chosen format.",
                "headers": {"Location": {"schema": {"type": "string", "format": "uri"}}, **DELIVERY_HEADERS}},
        "304": {"description": "If-None-Match names the object the redirect would point to (or is *).",
                "headers": DELIVERY_HEADERS},
        "401": UNAUTHORIZED,
        "403": _error("The delivery signature is malformed, does not match the upload, preset and exp "
                      "(invalid_delivery_signature), or has expired (delivery_url_expired); or a browser upload "
                      "token was sent (forbidden)."),
        "404": _error("No upload with this id, no such preset, or none the upload has (not_found)."),
        "409": _error("The upload is not completed yet, or failed (upload_not_completed)."),
        "410": _error("The upload was deleted (upload_deleted)."),
        "429": RATE_LIMITED,
    },
}


LIST_UPLOADS = {
    "summary": "Uploads, newest first, a page at a time",
    "description": "Ordered by creation time (then id), newest first. Pages are a keyset: uploads created "
                   "while a client pages through come before its first page, never into a later one, so no "
                   "upload is skipped or repeated.",
    "operationId": "listUploads",
    "parameters": [
        {"name": "status", "in": "query", "required": False, "schema": _ref("Status"),
         "description": "Only uploads in this status. Left out: every upload but the deleted ones."},
        {"name": "flagged", "in": "query", "required": False, "schema": {"enum": ["true", "false"], "default": "false"},
         "description": "true: only the uploads the moderation model flagged (see moderation in each entry)."},
        {"name": "limit", "in": "query", "required": False,
         "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
         "description": "Uploads per page."},
        {"name": "cursor", "in": "query", "required": False, "schema": {"type": "string", "pattern": CURSOR_PATTERN},
         "description": "next_cursor of the page before, handed back as it is."},
    ],
    "responses": {
        "200": _json(_ref("UploadList"), "One page."),
        "400": _error("A parameter is unknown, repeated or out of range, or the cursor is not shaped as "
                      "next_cursor is (invalid_request)."),
        "401": UNAUTHORIZED,
        "403": FORBIDDEN,
    },
}

DELETE_UPLOAD = {
    "summary": "Delete an upload: its original and every derivative",
    "description": "Removes the original and the derivatives in every format; the upload stays listed as "
                   "deleted with its facts, and its results become null. Deleting again answers the same. "
                   "An upload with a callback_url gets a webhook with status deleted. A job still running "
                   "removes what it writes.",
    "operationId": "deleteUpload",
    "parameters": [UPLOAD_ID],
    "responses": {
        "200": _json(_ref("UploadStatus"), "The upload, deleted."),
        "401": UNAUTHORIZED,
        "403": FORBIDDEN,
        "404": NOT_FOUND,
        "503": _error("Object storage is unavailable: the upload is marked deleted, and asking again removes "
                      "its objects once storage is back (the sweeper does too)."),
    },
}

MULTIPART_REFUSED = _error("The upload is not sent in parts (not_multipart), is no longer pending "
                           "(upload_not_pending), or the store no longer has its multipart upload (multipart_not_open).")
MULTIPART_EXPIRED = _error("The multipart upload's time (IMGPIPE_MULTIPART_TTL) is over (upload_expired).")
STORAGE_DOWN = _error("Object storage is unavailable.")


NOT_ITS_OWN = _error("A browser upload token was sent that did not make this upload (forbidden): a token sends "
                     "the parts of its own uploads only.")


def _multipart(operation_id: str, summary: str, responses: dict, **more) -> dict:
    return {"summary": summary, "operationId": operation_id, "parameters": [UPLOAD_ID, *more.pop("parameters", [])],
            **more, "responses": {**responses, "401": UNAUTHORIZED, "403": NOT_ITS_OWN, "404": NOT_FOUND}}


MULTIPART_PATHS = {
    "/uploads/{id}/multipart/parts/{number}": {"get": _multipart(
        "signMultipartPart", "A URL for one part",
        {"200": _json(_ref("PartUrl"), "PUT exactly `size` bytes there; the answer's ETag header names the part."),
         "400": _error("The part number is outside 1..part_count (invalid_part_number)."),
         "409": MULTIPART_REFUSED, "410": MULTIPART_EXPIRED},
        parameters=[{"name": "number", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1},
                     "description": "The part number, 1..part_count."}],
        description="Pure signing, no call to storage: ask as often as needed, e.g. again after a URL expired.")},
    "/uploads/{id}/multipart/parts": {"get": _multipart(
        "listMultipartParts", "The parts the store holds",
        {"200": _json(_ref("PartList"), "As the store lists them: what a resuming client need not send again."),
         "409": MULTIPART_REFUSED, "410": MULTIPART_EXPIRED, "503": STORAGE_DOWN})},
    "/uploads/{id}/multipart/complete": {"post": _multipart(
        "completeMultipartUpload", "Join the parts into the original",
        {"200": _json(_ref("UploadRecord"), "The upload, still pending: processing starts when the object lands. "
                                            "Asking again once it succeeded answers the same."),
         "400": _error("The body is not a parts list (invalid_request), or does not name every part once "
                       "(multipart_parts_invalid)."),
         "409": _error("A part is not at the store (multipart_parts_missing), holds another size than the plan "
                       "(multipart_part_size; the parts' total, multipart_size_mismatch), or has another ETag than "
                       "named (multipart_etag_mismatch); or as for the other multipart calls."),
         "410": MULTIPART_EXPIRED, "503": STORAGE_DOWN},
        description="The API lists the parts at the store itself and holds each to its planned size and the "
                    "total to the declared size before it completes, with an identity of its own.",
        requestBody={"required": True, "content": {"application/json": {"schema": _ref("CompleteParts")}}})},
    "/uploads/{id}/multipart": {"delete": _multipart(
        "abortMultipartUpload", "Abort: drop every part at the store",
        {"200": _json(_ref("UploadStatus"), "The upload, failed with upload_aborted."),
         "409": MULTIPART_REFUSED, "503": STORAGE_DOWN})},
}

DOCUMENT = {
    "openapi": "3.1.0",
    "info": {
        "title": "imgpipe",
        "version": VERSION,
        "description": "Presigned uploads straight to object storage; a version per preset (built in: resized, "
                       "compressed and thumbnail) made in the background. Paths also answer with a trailing slash.",
    },
    "security": [{"apiToken": []}, {"uploadToken": []}],
    "paths": {
        "/uploads": {"post": _create(), "get": LIST_UPLOADS},
        "/uploads/batch": {"post": CREATE_BATCH},
        "/uploads/{id}": {"get": {
            "summary": "The whole record: status, error, results and image facts",
            "operationId": "getUpload",
            "parameters": [UPLOAD_ID],
            "responses": {"200": _json(_ref("UploadRecord"), "The upload."), "401": UNAUTHORIZED,
                          "403": FORBIDDEN, "404": NOT_FOUND},
        }, "delete": DELETE_UPLOAD},
        "/uploads/{id}/status": {"get": _status()},
        "/uploads/{id}/results": {"get": _results()},
        "/uploads/{id}/{preset}": {"get": DELIVER},
        **MULTIPART_PATHS,
        "/upload": {"post": _create(deprecated=True)},
        "/upload/{id}/status": {"get": _status(deprecated=True)},
        "/upload/{id}/result": {"get": _results(deprecated=True)},
        "/healthz": {"get": {
            "summary": "Whether the database, Redis and object storage answer",
            "operationId": "getHealth",
            "security": [],
            "responses": {"200": _json(_ref("Healthy"), "Everything answers."),
                          "503": _json(_ref("Unhealthy"), "Something is down; the answer names what, never why (that is in the API's log).")},
        }},
        "/login": {"get": {
            "summary": "Log a browser in with the one-time code of a link `imgpipe up` or `imgpipe login` printed",
            "operationId": "login",
            "security": [],
            "parameters": [{"name": "code", "in": "query", "required": True, "schema": {"type": "string"}}],
            "responses": {
                "303": {"description": "The code was good, and is now used up: a session cookie (HttpOnly, "
                                       "SameSite=Strict, Secure under TLS) is set, and the browser sent to the page.",
                        "headers": {"Location": {"schema": {"type": "string"}},
                                    "Set-Cookie": {"schema": {"type": "string"}}}},
                "401": _error("The code is unknown, used already or expired (invalid_login_link)."),
                "503": _error("Redis, where codes are kept, is unavailable (redis_unavailable)."),
            },
        }},
        "/metrics": {"get": {
            "summary": "Uploads by status, processing time, queue depth and relayed events (Prometheus text format)",
            "operationId": "getMetrics",
            "responses": {"200": {"description": "Prometheus exposition format 0.0.4.",
                                  "content": {"text/plain": {"schema": {"type": "string"}}}},
                          "401": UNAUTHORIZED, "403": FORBIDDEN},
        }},
        "/openapi.json": {"get": {
            "summary": "This document",
            "operationId": "getOpenApi",
            "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1."), "401": UNAUTHORIZED, "403": FORBIDDEN},
        }},
        "/": {"get": {
            "summary": "The upload page",
            "operationId": "getUploadPage",
            "responses": {"200": {"description": "HTML.", "content": {"text/html": {"schema": {"type": "string"}}}},
                          "401": UNAUTHORIZED, "403": FORBIDDEN},
        }},
    },
    "components": {
        "schemas": SCHEMAS,
        "securitySchemes": {"apiToken": {
            "type": "http", "scheme": "bearer",
            "description": "IMGPIPE_API_TOKEN (the local stack makes one): every call but /healthz and /login "
                           "needs it once the server has any credential. Browsers may send it as the password "
                           "of HTTP Basic authentication instead, or carry the session cookie /login sets.",
        }, "uploadToken": {
            "type": "http", "scheme": "bearer",
            "description": "Only when the server sets IMGPIPE_UPLOAD_TOKEN_SECRET: a short-lived browser upload token "
                           "minted by a web app's backend. It may create uploads (up to its files and bytes caps) "
                           "and read the status, results and record of the uploads made with it; nothing else.",
        }, "deliverySignature": {
            "type": "apiKey", "in": "query", "name": "sig",
            "description": "A signed delivery URL (IMGPIPE_DELIVERY_SECRET) opens GET /uploads/{id}/{preset} of "
                           "the upload and preset it was minted for, until its exp; nothing else.",
        }},
    },
}


def document_for(settings) -> dict:
    """The document with this deployment's limits and formats filled in, so clients (and fuzzers) know them."""
    document = copy.deepcopy(DOCUMENT)
    document["components"]["schemas"].update(
        NewUpload=new_upload_schema(ALL_CONTENT_TYPES, settings.max_upload_bytes, writable_formats(),
                                    settings.derivative_presets.names),
        NewUploadBatch=batch_schema(settings.max_batch))
    return document


@bp.get("/openapi.json")
def openapi_document():
    return document_for(current_app.extensions["imgpipe"].settings)
