"""The WSGI entry point gunicorn serves: `gunicorn api.wsgi:app`."""

from api import create_app
from imgpipe.logs import configure_logging
from imgpipe.settings import Settings

settings = Settings.from_env()
configure_logging(settings)
app = create_app(settings)
