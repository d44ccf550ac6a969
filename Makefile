# Two commands on a fresh machine: `make up`, then (elsewhere) `make test`.
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install up down test unit bench clean

install:
	@scripts/install_python.sh
	@scripts/install_redis.sh
	@scripts/build_minio.sh

up: install
	$(BIN)/imgpipe up

down:
	@if [ -x $(BIN)/imgpipe ]; then $(BIN)/imgpipe down; else echo "Nothing was running."; fi

# The browser test of the upload page needs Chromium; nothing else does. The integration and
# fault tests run on PostgreSQL as well as SQLite, on a throwaway cluster of Debian's server.
test: install
	@scripts/install_chromium.sh
	@scripts/install_postgresql.sh
	$(BIN)/python -m pytest

unit: install
	$(BIN)/python -m pytest tests/unit

# Full run (a few minutes): bench/results.json and the table in BENCHMARKS.md.
# `make bench BENCH_FLAGS=--quick` runs the smaller version (under a minute).
bench:
	@scripts/install_python.sh
	@scripts/install_redis.sh
	@scripts/build_minio.sh
	@scripts/install_bench_deps.sh
	@scripts/install_postgresql.sh
	$(BIN)/python -m bench $(BENCH_FLAGS)

clean: down
	rm -rf var
