"""Read by gunicorn from its working directory: with LOG_FORMAT=json its own lines are JSON too,
and the API refuses to listen beyond loopback without a credential (api.access.check_binding)."""

import sys

from imgpipe.logs import gunicorn_logconfig
from imgpipe.settings import Settings

try:
    _settings = Settings.from_env()
except ValueError:
    _settings = None  # on_starting says why and stops
if _settings is not None and _settings.log_format == "json":
    logconfig_dict = gunicorn_logconfig(_settings)


def on_starting(server):
    """Before gunicorn binds: a refused setting stops it without ever listening."""
    from api.access import StartRefused, check_binding
    from imgpipe.settings import Settings

    try:
        check_binding(Settings.from_env(), server.cfg.bind)
    except (StartRefused, ValueError) as refusal:
        server.log.error("refusing to start: %s", refusal)
        sys.exit(1)
