"""Every error code imgpipe gives, each with its one-line meaning: ApiError for what the API
answers, UploadFailure for why an upload failed (its status, record and webhook carry it),
ClientFailure for why the CLI could not finish a file on its own side.

The codes are a contract: clients branch on them, so they live here once and are used as
members everywhere else; docs/reference/errors.md is written from these classes (`make docs`),
and tests/unit/test_error_codes.py fails on a code spelled out as text elsewhere, or a member
nothing gives. A member is its code (a StrEnum), so it compares, logs, serialises and is
stored as that text. Here, on the shared floor, because the API, the relay, the workers and
`imgpipe reprocess` all give or read them.
"""

from __future__ import annotations

from enum import StrEnum


class ApiError(StrEnum):
    """A code the API answers with, `{"error": {"code", "message"}}`, and the HTTP statuses it comes with."""

    statuses: tuple[int, ...]  # empty: any status no other code has
    meaning: str

    def __new__(cls, code: str, statuses: tuple[int, ...], meaning: str):
        member = str.__new__(cls, code)
        member._value_ = code
        member.statuses = statuses
        member.meaning = meaning
        return member

    CALLBACK_NOT_ALLOWED = ("callback_not_allowed", (400,),
                            "the `callback_url` host is, or resolves to, an address inside a network")
    CROSS_SITE = ("cross_site", (403,),
                  "a browser request from another site to a call that must come from the API's own pages")
    DATABASE_UNAVAILABLE = ("database_unavailable", (503,),
                            "the database did not answer or dropped the connection (PostgreSQL restarting,"
                            " failing over, out of reach); the next request opens a new one")
    DELIVERY_URL_EXPIRED = ("delivery_url_expired", (403,), "a signed delivery URL past its `exp`")
    FORBIDDEN = ("forbidden", (403,),
                 "a browser upload token used for anything but creating uploads and reading the uploads made with it")
    HTTP_ERROR = ("http_error", (),
                  "any other HTTP error the web framework raises (none is known to reach a client)")
    INTERNAL = ("internal", (500,), "an unexpected error in the API; it is logged with its traceback. Report it")
    INVALID_DELIVERY_SIGNATURE = ("invalid_delivery_signature", (403,),
                                  "a delivery URL whose `sig` is malformed, does not match its upload, preset and"
                                  " `exp` (altered, or signed before `IMGPIPE_DELIVERY_SECRET` was changed), or"
                                  " an API without that secret")
    INVALID_LOGIN_LINK = ("invalid_login_link", (401,), "a one-time login link that is unknown, used or expired")
    INVALID_PART_NUMBER = ("invalid_part_number", (400,),
                           "a part URL was asked for a part number outside 1..part_count of the upload's plan")
    INVALID_REQUEST = ("invalid_request", (400,),
                       "the request is not what the call expects: not JSON, a missing or malformed field (a missing"
                       " `size` included), an unknown parameter, a cursor this server did not answer, or a file"
                       " posted as a form")
    INVALID_TOKEN = ("invalid_token", (401,),
                     "a browser upload token whose signature does not match, or that is malformed or valid for"
                     " more than a day")
    METHOD_NOT_ALLOWED = ("method_not_allowed", (405,),
                          "the path exists but not with this method; `Allow` lists those it takes")
    MULTIPART_ETAG_MISMATCH = ("multipart_etag_mismatch", (409,),
                               "a complete named a part with another ETag than the part the store holds")
    MULTIPART_NOT_OPEN = ("multipart_not_open", (409,),
                          "the store no longer has the multipart upload (it was aborted) and holds no object of the"
                          " declared size")
    MULTIPART_PART_SIZE = ("multipart_part_size", (409,),
                           "a part at the store holds another number of bytes than the plan gives it; upload it again"
                           " with its URL")
    MULTIPART_PARTS_INVALID = ("multipart_parts_invalid", (400,),
                               "a complete's parts list does not name each part 1..part_count exactly once")
    MULTIPART_PARTS_MISSING = ("multipart_parts_missing", (409,),
                               "a complete was asked for while the store lacks some parts; the message says which")
    MULTIPART_SIZE_MISMATCH = ("multipart_size_mismatch", (409,),
                               "the parts at the store do not add up to the declared size")
    NOT_FOUND = ("not_found", (404,),
                 "no such upload (or path); for `GET /uploads/<id>/<preset>`, also no such preset, or none the"
                 " upload has")
    NOT_MULTIPART = ("not_multipart", (409,), "a multipart call on an upload made for one PUT")
    RATE_LIMITED = ("rate_limited", (429,),
                    "too many requests from this client: wrong credentials or none per address, a browser token's"
                    " creations per token (`IMGPIPE_RATE_LIMIT_*`); `Retry-After` says in how many seconds to try"
                    " again")
    REDIS_UNAVAILABLE = ("redis_unavailable", (503,), "Redis did not answer; try again shortly")
    STORAGE_UNAVAILABLE = ("storage_unavailable", (503,),
                           "MinIO could not be reached (a `DELETE` has marked the upload deleted all the same)")
    TOKEN_EXHAUSTED = ("token_exhausted", (403,),
                       "a browser upload token's `files` or `bytes` cap would be passed; nothing of the request is"
                       " created")
    TOKEN_EXPIRED = ("token_expired", (401,), "a browser upload token past its `exp`")
    TOO_LARGE = ("too_large", (400, 413),
                 "the declared `size` is over `IMGPIPE_MAX_UPLOAD_BYTES` (400; MinIO then refuses any PUT of another"
                 " length); a request body over 64 KiB (413)")
    TOO_MANY_FILES = ("too_many_files", (400,), "a batch has more files than `IMGPIPE_MAX_BATCH`")
    UNAUTHORIZED = ("unauthorized", (401,),
                    "`IMGPIPE_API_TOKEN` is set and the request did not send it, as `Authorization: Bearer <token>`"
                    " or, from a browser, as the password of Basic authentication (any user name)")
    UNAVAILABLE = ("unavailable", (503,), "`GET /healthz` only: something is down, named in `down` and in the message")
    UNKNOWN_HOST = ("unknown_host", (400,), "the request's `Host` is not one of `IMGPIPE_ALLOWED_HOSTS`")
    UNKNOWN_PRESET = ("unknown_preset", (400,),
                      "`presets` names a preset this server does not have; the message lists those it has")
    UNSUPPORTED_MEDIA_TYPE = ("unsupported_media_type", (415,),
                              "the declared content type is not an accepted image type")
    UNSUPPORTED_OUTPUT_FORMAT = ("unsupported_output_format", (400,),
                                 "`formats` names a format this server cannot write; the message lists those it can")
    UPLOAD_DELETED = ("upload_deleted", (410,), "a derivative of an upload that was deleted: its objects are gone")
    UPLOAD_EXPIRED = ("upload_expired", (410,),
                      "the multipart upload's time (`IMGPIPE_MULTIPART_TTL`) is over: start a new upload")
    UPLOAD_NOT_COMPLETED = ("upload_not_completed", (409,),
                            "a derivative of an upload that is not completed (pending, processing or failed): ask"
                            " again once its status is completed")
    UPLOAD_NOT_PENDING = ("upload_not_pending", (409,),
                          "a multipart call on an upload that is no longer pending (completed, failed or deleted)")


# What becomes of an upload's original after each failure.
_REFUSED = "refused"  # its bytes can never become anything: the original is removed
_STORED_OTHERWISE = "stored otherwise"  # refused too: stored otherwise than its upload URL signed
_ABSENT = "absent"  # there is no original (any more) to go back to
_KEPT = "kept"  # a reason of the service's own: the original stays, for `imgpipe reprocess`


class UploadFailure(StrEnum):
    """Why an upload failed, as its row's error_code stores it."""

    meaning: str
    _original: str

    def __new__(cls, code: str, original: str, meaning: str):
        member = str.__new__(cls, code)
        member._value_ = code
        member._original = original
        member.meaning = meaning
        return member

    COPIED_ORIGINAL = ("copied_original", _STORED_OTHERWISE,
                       "stored with another content type than the declared one: a server-side copy"
                       " (x-amz-copy-source) keeps its source's")
    CORRUPT_IMAGE = ("corrupt_image", _REFUSED, "the image is truncated or damaged")
    EMPTY_FILE = ("empty_file", _REFUSED, "the upload has no bytes")
    ENCODED_ORIGINAL = ("encoded_original", _STORED_OTHERWISE,
                        "stored with a Content-Encoding (gzip, br, …), which the upload URL did not sign")
    ENCRYPTED_ORIGINAL = ("encrypted_original", _STORED_OTHERWISE,
                          "stored with customer-key encryption (SSE-C), which the upload URL did not sign")
    INTERNAL = ("internal", _KEPT,
                "processing failed `IMGPIPE_MAX_ATTEMPTS` times for a reason of the service's own; the message says"
                " why. `imgpipe reprocess --status failed` tries it again")
    MISSING_ORIGINAL = ("missing_original", _ABSENT,
                        "the original disappeared from the bucket before it was processed, or before a reprocess of"
                        " a failed upload")
    NOT_AN_IMAGE = ("not_an_image", _REFUSED, "the bytes are not an image (text, HTML, SVG, PDF, an executable, …)")
    OUT_OF_MEMORY = ("out_of_memory", _KEPT,
                     "processing the picture needed more memory than a job may use (`IMGPIPE_JOB_MEMORY_MB`);"
                     " `imgpipe reprocess` can try it under a larger cap")
    REJECTED_BY_MODERATION = ("rejected_by_moderation", _KEPT,
                              "with `IMGPIPE_MODERATION=reject`, the moderation model scored the picture at or over"
                              " `IMGPIPE_MODERATION_THRESHOLD`; no derivative was written")
    SIZE_MISMATCH = ("size_mismatch", _STORED_OTHERWISE, "stored with another length than the declared size")
    TOO_LARGE = ("too_large", _REFUSED,
                 "the object in the bucket is over `IMGPIPE_MAX_UPLOAD_BYTES` (it reached the bucket another way, or"
                 " before the limit was lowered: the upload URL allows no other size)")
    TOO_MANY_PIXELS = ("too_many_pixels", _REFUSED,
                       "width × height is over `IMGPIPE_MAX_PIXELS`, seen in the header before decoding")
    UNSIGNED_METADATA = ("unsigned_metadata", _STORED_OTHERWISE,
                         "stored with metadata the upload URL did not sign (user metadata, tags, a storage class)")
    UNSUPPORTED_FORMAT = ("unsupported_format", _REFUSED, "an image format imgpipe does not accept (e.g. ICO, PPM)")
    UPLOAD_ABORTED = ("upload_aborted", _ABSENT,
                      "the multipart upload was aborted by its client (`DELETE /uploads/{id}/multipart`); its parts"
                      " are gone")
    UPLOAD_EXPIRED = ("upload_expired", _ABSENT,
                      "nothing was uploaded before the upload URL expired (plus `IMGPIPE_UPLOAD_GRACE`)")

    @property
    def stored_otherwise(self) -> bool:
        """The original was stored otherwise than its upload URL signed (and is removed, as any
        refused for what it contains); the meaning says how."""
        return self._original == _STORED_OTHERWISE

    @property
    def rejects_content(self) -> bool:
        """Caused by the upload's own bytes, or by how they were stored: its original can never
        become anything, and the processing job removes it."""
        return self._original in (_REFUSED, _STORED_OTHERWISE)

    @property
    def leaves_no_original(self) -> bool:
        """Nothing to go back to: the bytes were refused (and removed), or there never was an
        original. A reprocess leaves such an upload as it is."""
        return self.rejects_content or self._original == _ABSENT

    @property
    def original_afterwards(self) -> str:
        """What the error table says becomes of the original."""
        return "removed" if self.rejects_content else "none" if self._original == _ABSENT else "kept"

    @classmethod
    def recorded(cls, code: str | None) -> UploadFailure | None:
        """The member a row's error_code names; None for none, or a code no longer given."""
        return cls._value2member_map_.get(code)


class ClientFailure(StrEnum):
    """Why `imgpipe upload` (or `imgpipe results --download`) could not finish a file for a reason
    on its own side of the API: the code its outcome's error carries (`--json`). An API's answer
    or a failed upload's error is passed on with its own code instead."""

    meaning: str

    def __new__(cls, code: str, meaning: str):
        member = str.__new__(cls, code)
        member._value_ = code
        member.meaning = meaning
        return member

    API_UNREACHABLE = ("api_unreachable", "no connection to the API, or none that answered")
    DOWNLOAD_FAILED = ("download_failed", "an original or a derivative could not be fetched from its URL (`--download`)")
    TIMEOUT = ("timeout", "the upload was still pending or processing when `--timeout` ran out")
    UNREADABLE_FILE = ("unreadable_file", "the file could not be read (missing, a directory, no permission)")
    UPLOAD_FAILED = ("upload_failed", "the store refused the PUT of the bytes, or could not be reached for it")
