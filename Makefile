# kgrag: two commands on a fresh machine.
#   make run   - install, prepare the local model, ingest data/, serve the API on 127.0.0.1:8000, show an answer
#   make test  - install (system packages the tests drive included), prepare the models, run the whole test suite
SHELL := /bin/bash
PY := .venv/bin/python
PIP := $(PY) -m pip
STAMP := .venv/.installed

.PHONY: install models run test test-fast lint clean-store system-deps

# Debian packages some tests drive: chromium (Playwright uses it; no browser download) and PostgreSQL 15 (the tests
# start their own server on 127.0.0.1). Needs root or passwordless sudo; skipped when both are present. `make test`
# runs it first, so the README's second command is enough on a fresh machine.
SYSTEM_PACKAGES := chromium postgresql-15 prometheus
system-deps:
	@if ! command -v chromium >/dev/null || ! command -v prometheus >/dev/null || [ ! -x /usr/lib/postgresql/15/bin/initdb ]; then \
		if [ "$$(id -u)" = 0 ]; then SUDO=; \
		elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO=sudo; \
		else echo "error: the tests need the Debian packages $(SYSTEM_PACKAGES), and installing them needs root" >&2; \
			echo "  fix: run \`sudo apt-get install -y $(SYSTEM_PACKAGES)\`, or run make as root" >&2; exit 1; fi; \
		if ! command -v apt-get >/dev/null; then \
			echo "error: no apt-get: install $(SYSTEM_PACKAGES) (or your system's equivalents) by hand" >&2; exit 1; fi; \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $(SYSTEM_PACKAGES); \
	fi

$(PY):
	python3 -m venv .venv
	$(PIP) install -q --upgrade pip

$(STAMP): $(PY) pyproject.toml constraints.txt scripts/install-llama.sh
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -c constraints.txt -e ".[dev]"
	bash scripts/install-llama.sh $(PY)
	touch $(STAMP)

install: $(STAMP)

models: install
	.venv/bin/kgrag model prepare --model qwen2.5-coder-1.5b
	.venv/bin/kgrag model prepare --model smollm2-135m

run: install
	bash scripts/run.sh

test: system-deps models
	.venv/bin/pytest

test-fast: install
	.venv/bin/pytest -m "not slow"

lint: install
	.venv/bin/ruff check .
	.venv/bin/mypy
	.venv/bin/lint-imports

clean-store:
	rm -rf store
