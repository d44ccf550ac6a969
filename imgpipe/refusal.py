"""A request refused for what it asked: an HTTP status, a stable code and a sentence.

The API answers every one as its JSON error; the checks that raise them stay free of Flask.
"""

from __future__ import annotations

from imgpipe.error_codes import ApiError


class Refused(Exception):
    def __init__(self, status: int, code: ApiError, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
