"""Read by gunicorn from its working directory: with LOG_FORMAT=json its own lines are JSON too."""

from imgpipe.logs import gunicorn_logconfig, wants_json

if wants_json():
    logconfig_dict = gunicorn_logconfig()
