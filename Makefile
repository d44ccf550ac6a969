# Two commands on a fresh machine: `make up`, then (elsewhere) `make test`.
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install up down test unit bench clean

install:
	@scripts/install_python.sh
	@scripts/install_redis.sh
	@scripts/build_minio.sh
	@scripts/install_chromium.sh

up: install
	$(BIN)/imgpipe up

down:
	@if [ -x $(BIN)/imgpipe ]; then $(BIN)/imgpipe down; else echo "Nothing was running."; fi

test: install
	$(BIN)/python -m pytest

unit: install
	$(BIN)/python -m pytest tests/unit

clean: down
	rm -rf var
