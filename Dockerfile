# One image for every Python process: the API (gunicorn, the default command), the relay,
# the workers and the one-shot `imgpipe setup`. docker-compose.yml runs each with its own command.
# PYTHON_IMAGE is the base (any Debian-based Python 3.11+); the project lives in a virtual
# environment, so it never mixes with the base's own packages.
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE}

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/imgpipe \
    PATH=/opt/imgpipe/bin:$PATH \
    DATABASE_PATH=/data/imgpipe.db

# PIP_CA_BUNDLE: a CA bundle inside the base for pip to trust, where the package index is reached
# through a proxy with its own CA. EXTRAS=moderation adds the moderation model and its runtime
# (docker-compose.yml: IMGPIPE_EXTRAS).
ARG PIP_CA_BUNDLE=""
ARG EXTRAS=""
WORKDIR /app

# The dependencies first, in their own layer: it is rebuilt only when pyproject.toml changes.
COPY pyproject.toml ./
RUN if [ -n "$PIP_CA_BUNDLE" ]; then export PIP_CERT="$PIP_CA_BUNDLE"; fi \
    && python3 -m venv "$VIRTUAL_ENV" \
    && python3 -c 'import tomllib; project = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
extras = [name for name in "'"$EXTRAS"'".split(",") if name]; \
print("\n".join(project["dependencies"] + [dep for name in extras for dep in project["optional-dependencies"][name]]))' \
       > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY README.md gunicorn.conf.py ./
COPY api ./api
COPY imgpipe ./imgpipe
COPY processor ./processor
COPY notify_config ./notify_config
COPY cli ./cli
RUN if [ -n "$PIP_CA_BUNDLE" ]; then export PIP_CERT="$PIP_CA_BUNDLE"; fi \
    && pip install --no-deps ".${EXTRAS:+[$EXTRAS]}" \
    && useradd --system --uid 10001 --create-home --home-dir /home/imgpipe imgpipe \
    && mkdir /data && chown imgpipe /data

USER imgpipe
VOLUME /data
EXPOSE 8000
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--workers", "2", "api.wsgi:app"]
