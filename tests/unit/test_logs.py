"""LOG_FORMAT=json: one JSON object per line, for the app's own lines and gunicorn's."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import sys

import pytest

from imgpipe.logs import JsonFormatter, configure_logging, gunicorn_logconfig
from imgpipe.settings import Settings


def record(message, *args, exc_info=None) -> logging.LogRecord:
    return logging.LogRecord("processor.tasks", logging.WARNING, __file__, 1, message, args, exc_info)


def test_a_line_is_one_json_object_with_the_message_filled_in():
    line = JsonFormatter().format(record("upload %s: failed %s", "ab12", "not_an_image"))
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "upload ab12: failed not_an_image"
    assert entry["level"] == "warning"
    assert entry["logger"] == "processor.tasks"
    assert entry["time"][:2] == "20" and "T" in entry["time"]


def test_an_exception_is_kept_in_the_same_line():
    try:
        raise ValueError("bad \"quote\"\nand a newline")
    except ValueError:
        line = JsonFormatter().format(record("boom", exc_info=sys.exc_info()))
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "boom"
    assert "ValueError: bad \"quote\"" in entry["exception"]


@pytest.fixture
def restore_root_logger():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


def test_configure_logging_follows_log_format(restore_root_logger):
    configure_logging(Settings.from_env({"LOG_FORMAT": "json", "LOG_LEVEL": "debug"}))
    assert restore_root_logger.level == logging.DEBUG
    stream = io.StringIO()
    restore_root_logger.handlers[0].setStream(stream)
    logging.getLogger("api").info("upload %s: pending", "cd34")
    assert json.loads(stream.getvalue())["message"] == "upload cd34: pending"


def test_gunicorn_lines_go_through_the_json_formatter_once(restore_root_logger):
    logging.config.dictConfig(gunicorn_logconfig(Settings(log_format="json")))
    stream = io.StringIO()
    restore_root_logger.handlers[0].setStream(stream)
    logging.getLogger("gunicorn.error").info("Booting worker with pid: %s", 42)
    lines = stream.getvalue().splitlines()
    assert [json.loads(line)["message"] for line in lines] == ["Booting worker with pid: 42"]


@pytest.mark.parametrize("name, value", [("LOG_FORMAT", "xml"), ("LOG_LEVEL", "loud")])
def test_an_unknown_log_setting_is_refused_when_read(name, value):
    with pytest.raises(ValueError, match=name):
        Settings.from_env({name: value})
