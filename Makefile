# The README's commands. Works from a fresh clone with only python3 (3.11), make, PostgreSQL
# and RabbitMQ: uv is installed into .tools/ when it is not on PATH.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.13.8
UV := $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON_PREFERENCE := only-system
# Imports are much faster with compiled bytecode, and some machines set PYTHONDONTWRITEBYTECODE.
export UV_COMPILE_BYTECODE := 1
# Pact's core otherwise reports usage over the network.
export PACT_DO_NOT_TRACK := true

# Dev-only signing secret shared by both services and `make token`. Never use in production.
export JWT_SECRET ?= dev-only-hs256-secret-change-me-0123456789abcdef
export CATALOG_JWT_SECRET ?= $(JWT_SECRET)
export ORDERS_JWT_SECRET ?= $(JWT_SECRET)

SUB ?= alice
ROLE ?= customer
PYTEST_ARGS ?=
DETACH ?=
YES ?=
LINES ?= 20
LOCK_INPUTS := uv.lock pyproject.toml libs/common/pyproject.toml libs/devtools/pyproject.toml \
	services/catalog/pyproject.toml services/orders/pyproject.toml

.PHONY: help check-python install install-run up up-d down logs reset test lint fmt typecheck \
	token clean bench chaos

help:
	@echo "make up      provision, migrate, seed and run the stack on 127.0.0.1, its logs on the"
	@echo "             console (Ctrl-C stops it); make up DETACH=1 (or make up-d) leaves it running"
	@echo "make down    stop a stack make up left running;  make logs   follow its logs"
	@echo "make reset   drop the schemas, roles, queues make up created (asks; YES=1 does not)"
	@echo "make test    lint, types, import contracts and every test suite"
	@echo "make token SUB=alice ROLE=customer|admin   print a signed dev token"
	@echo "make bench   the benchmark beside the bare baseline (about 6 min; BENCH_ARGS=--quick)"
	@echo "make chaos   orders and cancels under a fault schedule, then the accounting"
	@echo "             (CHAOS_DURATION=600 seconds of faults, CHAOS_SEED=1, CHAOS_ARGS=...)"
	@echo "make fmt | make lint | make typecheck | make clean"

# uv may use only a system Python 3.11 (pyproject.toml: python-downloads = "never", the lock
# and the images are for 3.11 only): say so plainly, before uv fails with a resolver error.
check-python:
	@for py in python3.11 python3 python; do \
	  command -v $$py >/dev/null 2>&1 && \
	    $$py -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null && exit 0; \
	done; \
	found=$$(python3 --version 2>&1 || echo "no python3"); \
	echo "make: this project needs Python 3.11 on PATH (python3.11 or python3); found: $$found." >&2; \
	echo "  uv is told never to download a Python, and the lock and the images are for 3.11 only." >&2; \
	echo "  Debian 12: sudo apt-get install python3 python3-venv (its python3 is 3.11)" >&2; \
	echo "  Ubuntu 24.04: sudo add-apt-repository ppa:deadsnakes/ppa &&" \
	  "sudo apt-get install python3.11 python3.11-venv" >&2; \
	echo "  macOS: brew install python@3.11   (then run make again: it finds python3.11)" >&2; \
	exit 1

$(CURDIR)/.tools/bin/uv: | check-python
	python3 -m venv $(CURDIR)/.tools
	$(CURDIR)/.tools/bin/pip install --quiet uv==$(UV_VERSION)

# Everything: the services, the dev tooling and the dev group (lint, types, tests).
.venv/.synced: $(LOCK_INPUTS) | check-python $(UV)
	$(UV) sync --locked
	@touch $@ .venv/.synced-run

# What running needs: the services and the dev tooling, not the dev group (checkov, pact,
# mypy, ...). --inexact keeps what `make test` installed.
.venv/.synced-run: $(LOCK_INPUTS) | check-python $(UV)
	$(UV) sync --locked --inexact --no-default-groups --group run
	@touch $@

install: .venv/.synced

install-run: check-python
	@echo "[make up] 1/6 install: .venv from uv.lock, only what running needs (uv sync)"
	@$(MAKE) --no-print-directory -s .venv/.synced-run

# shop-dev lives in libs/devtools (shop_dev): in the `run` group, never in an image.
up: install-run
	@$(UV) run --no-sync shop-dev up $(if $(filter-out 0 no false,$(DETACH)),--detach)

up-d:
	@$(MAKE) --no-print-directory up DETACH=1

down: .venv/.synced-run
	@$(UV) run --no-sync shop-dev down

logs: .venv/.synced-run
	@$(UV) run --no-sync shop-dev logs --lines $(LINES)

reset: .venv/.synced-run
	@$(UV) run --no-sync shop-dev reset $(if $(filter-out 0 no false,$(YES)),--yes)

lint: install
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen lint-imports

typecheck: install
	$(UV) run --frozen mypy

fmt: install
	$(UV) run --frozen ruff check --fix .
	$(UV) run --frozen ruff format .

test: lint typecheck
	$(UV) run --frozen pytest $(PYTEST_ARGS)

token: .venv/.synced-run
	@$(UV) run --no-sync shop-token --sub "$(SUB)" --role "$(ROLE)"

# A stack still running is stopped first (its pids are in .run/, which goes).
clean:
	@if [ -f .run/stack.json ] && [ -x .venv/bin/shop-dev ]; then .venv/bin/shop-dev down; fi
	rm -rf .venv .tools .run .mypy_cache .ruff_cache .pytest_cache
	@echo "make clean: removed .venv, .tools, .run (logs, pids, tokens) and the caches."
	@echo "  Left in place: what make up created in PostgreSQL (database, schemas, roles) and"
	@echo "  RabbitMQ (queues, exchanges). make reset drops those; it needs .venv, so run it first."

# Not part of `make test`: starts its own stack and baseline, loads them on loopback, writes
# docs/performance.md's "Latest run" (see that page). Needs wrk (apt-get install wrk).
BENCH_ARGS ?=
bench: install
	$(UV) sync --locked --inexact --group bench
	BENCH_COMMAND="make bench $(BENCH_ARGS)" $(UV) run --no-sync python -m bench $(BENCH_ARGS)

# Not part of `make test` (a bounded round of the same runs there): its own database, vhost and
# private RabbitMQ node, the four processes, CHAOS_DURATION seconds of faults, then the
# accounting; exits 1 on any violation. See docs/operations.md, "Chaos runs".
CHAOS_DURATION ?= 600
CHAOS_SEED ?= 1
CHAOS_ARGS ?=
chaos: install
	$(UV) run --frozen python -m tests.chaos --duration $(CHAOS_DURATION) --seed $(CHAOS_SEED) \
		$(CHAOS_ARGS)
