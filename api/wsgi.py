"""The WSGI entry point gunicorn serves: `gunicorn api.wsgi:app`."""

from api import create_app
from imgpipe.logs import configure_logging

configure_logging()
app = create_app()
