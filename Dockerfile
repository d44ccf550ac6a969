# One image for every Python process: the API (gunicorn, the default command), the relay,
# the workers and the one-shot `imgpipe setup`. docker-compose.yml runs each with its own command.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATABASE_PATH=/data/imgpipe.db

WORKDIR /app
COPY pyproject.toml README.md gunicorn.conf.py ./
COPY api ./api
COPY imgpipe ./imgpipe
COPY processor ./processor
COPY notify_config ./notify_config
COPY cli ./cli
# EXTRAS=moderation adds the moderation model and its runtime (docker-compose.yml: IMGPIPE_EXTRAS).
ARG EXTRAS=""
RUN pip install ".${EXTRAS:+[$EXTRAS]}" \
    && useradd --system --uid 10001 --home-dir /app imgpipe \
    && mkdir /data && chown imgpipe /data

USER imgpipe
VOLUME /data
EXPOSE 8000
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--workers", "2", "api.wsgi:app"]
