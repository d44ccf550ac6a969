# Two commands on a fresh machine: `make up`, then (elsewhere) `make test`.
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install up down test unit bench docs clean

# The moderation model and its runtime (about 175 MB) are installed only when asked for:
# `make up MODERATION=1`, or by turning moderation on (`make up IMGPIPE_MODERATION=flag`).
# The tests and the benchmark always install them: they run the real model.
MODERATION ?= $(filter flag reject,$(IMGPIPE_MODERATION))
test unit: MODERATION = 1

install:
	@scripts/install_python.sh $(if $(MODERATION),moderation)
	@scripts/install_redis.sh
	@scripts/build_minio.sh

up: install
	$(BIN)/imgpipe up

down:
	@if [ -x $(BIN)/imgpipe ]; then $(BIN)/imgpipe down; else echo "Nothing was running."; fi

# The browser tests need Chromium, and Node.js with npm to build the web app they load; the
# delivery tests put Debian's nginx in front as a caching proxy; the compose file's test needs
# the compose plugin; the test of the benchmark's old-design service needs the bench extra
# (Celery). The integration and fault tests run on PostgreSQL as well as SQLite, on a
# throwaway cluster of Debian's server.
test: install
	@scripts/install_bench_deps.sh
	@scripts/install_chromium.sh
	@scripts/install_nginx.sh
	@scripts/install_promtool.sh
	@scripts/install_node.sh
	@scripts/install_compose.sh
	@scripts/install_postgresql.sh
	$(BIN)/python -m pytest

unit: install
	$(BIN)/python -m pytest tests/unit

# Full run (a few minutes): bench/results.json and the table in BENCHMARKS.md, then the
# recovery measurements (sweeper, durability choices) in bench/recovery.json.
# `make bench BENCH_FLAGS=--quick` runs the smaller version of both.
bench:
	@scripts/install_python.sh moderation
	@scripts/install_redis.sh
	@scripts/build_minio.sh
	@scripts/install_bench_deps.sh
	@scripts/install_nginx.sh
	@scripts/install_postgresql.sh
	$(BIN)/python -m bench $(BENCH_FLAGS)
	$(BIN)/python -m bench.recovery $(BENCH_FLAGS)

# The references written from the code (configuration, errors, CLI, OpenAPI, migrations) and
# the figures from bench/*.json; tests/docs fails when they are out of date.
docs:
	@scripts/install_python.sh $(if $(MODERATION),moderation)
	$(BIN)/python -m scripts.docs

clean: down
	rm -rf var
