"""Every error the API answers is JSON: {"error": {"code", "message"}}, turned so in one place."""

from __future__ import annotations

import logging

from flask import Flask, g, jsonify
from flask_limiter import RateLimitExceeded
from werkzeug.exceptions import HTTPException

from imgpipe.engines import DatabaseUnavailable
from imgpipe.error_codes import ApiError
from imgpipe.refusal import Refused
from imgpipe.storage import StorageUnavailable

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: ApiError.INVALID_REQUEST,
    401: ApiError.UNAUTHORIZED,
    404: ApiError.NOT_FOUND,
    405: ApiError.METHOD_NOT_ALLOWED,
    413: ApiError.TOO_LARGE,
    415: ApiError.UNSUPPORTED_MEDIA_TYPE,
}


def error_response(status: int, code: ApiError, message: str):
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(Refused)
    def rejected(error: Refused):
        return error_response(error.status, error.code, error.message)

    @app.errorhandler(StorageUnavailable)
    def storage_down(error: StorageUnavailable):
        log.warning("storage unavailable: %s", error)
        return error_response(503, ApiError.STORAGE_UNAVAILABLE, "object storage is unavailable; try again shortly")

    @app.errorhandler(DatabaseUnavailable)
    def database_down(error: DatabaseUnavailable):
        log.warning("database unavailable: %s", error)
        return error_response(503, ApiError.DATABASE_UNAVAILABLE, "the database is unavailable; try again shortly")

    @app.errorhandler(RateLimitExceeded)
    def rate_limited(error: RateLimitExceeded):
        retry_after = g.get("retry_after", 60)
        response = error_response(429, ApiError.RATE_LIMITED,
                                  f"too many requests ({error.description}); try again in {retry_after} s")
        response.headers["Retry-After"] = str(retry_after)
        return response

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        status = error.code or 500
        response = error_response(status, _HTTP_CODES.get(status, ApiError.HTTP_ERROR), error.description or error.name)
        for name, value in error.get_headers():
            if name.lower() not in ("content-type", "content-length"):
                response.headers[name] = value  # e.g. Allow on a 405
        return response

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        log.exception("unhandled error")
        return error_response(500, ApiError.INTERNAL, "an unexpected error occurred")
