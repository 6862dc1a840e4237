# The README's commands. Works from a fresh clone with only python3, make, PostgreSQL and
# RabbitMQ: uv is installed into .tools/ when it is not on PATH.
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

.PHONY: help install up test lint fmt typecheck token clean

help:
	@echo "make up      provision, migrate, seed and run the stack on 127.0.0.1 (Ctrl-C stops)"
	@echo "make test    lint, types, import contracts and every test suite"
	@echo "make token SUB=alice ROLE=customer|admin   print a signed dev token"
	@echo "make fmt | make lint | make typecheck | make clean"

$(CURDIR)/.tools/bin/uv:
	python3 -m venv $(CURDIR)/.tools
	$(CURDIR)/.tools/bin/pip install --quiet uv==$(UV_VERSION)

.venv/.synced: uv.lock pyproject.toml libs/common/pyproject.toml libs/devtools/pyproject.toml services/catalog/pyproject.toml services/orders/pyproject.toml | $(UV)
	$(UV) sync --locked
	@touch $@

install: .venv/.synced

# shop-dev and shop-token live in libs/devtools (shop_dev): in the dev group, never in an image.
up: install
	$(UV) run --frozen shop-dev

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

token: install
	@$(UV) run --frozen shop-token --sub "$(SUB)" --role "$(ROLE)"

clean:
	rm -rf .venv .tools .run .mypy_cache .ruff_cache .pytest_cache
