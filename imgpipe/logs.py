"""One logging setup for every imgpipe process: a line per event, JSON when LOG_FORMAT=json.

LOG_LEVEL and LOG_FORMAT are settings like any other (imgpipe.settings): read there, given here."""

from __future__ import annotations

import json
import logging

from imgpipe.settings import Settings


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler()
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())


def gunicorn_logconfig(settings: Settings) -> dict:
    """gunicorn's own lines (start-up, workers, errors) in the same JSON shape as the app's."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "root": {"level": settings.log_level.upper(), "handlers": ["stderr"]},
        "loggers": {name: {"level": "INFO", "handlers": [], "propagate": True}
                    for name in ("gunicorn.error", "gunicorn.access")},
    }
