"""The version every part reports (the API's /healthz and OpenAPI document, `imgpipe --version`),
read from the installed package's metadata so pyproject.toml is the one place it is written."""

from __future__ import annotations

from importlib.metadata import version

VERSION = version("imgpipe")
