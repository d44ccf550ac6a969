"""The one error the image steps raise for a bad upload."""

from __future__ import annotations

from imgpipe.error_codes import UploadFailure


class ImageRejected(Exception):
    """An upload that cannot become derivatives; .code is the stable error code, .message a human sentence."""

    def __init__(self, code: UploadFailure, message: str):
        # Both go to Exception so the error pickles (job queues pickle exceptions).
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"
