# Remora Admin. `make run` starts the console; `make test` runs every check CI runs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# A Python >= 3.12: $(PYTHON) if given, else python3.13/python3.12 on PATH, else pyenv's newest.
PYTHON ?= $(shell for p in python3.14 python3.13 python3.12 $$( (pyenv root 2>/dev/null || echo $$HOME/.pyenv) | xargs -I{} sh -c 'ls -d {}/versions/3.1[2-9]*/bin/python3 2>/dev/null' | sort -rV) python3; do \
  command -v $$p >/dev/null 2>&1 || [ -x "$$p" ] || continue; \
  $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { command -v $$p 2>/dev/null || echo $$p; } && break; \
done)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HTMX_VERSION := 4.0.1
PICO_VERSION := 2.1.1

.PHONY: help run code test test-fast lint venv vendor bench clean lab lab-down lab-status lab-needs-root dist

help:
	@echo "make run    - start the console on http://127.0.0.1:8000 (PORT to change): the web"
	@echo "              server, an RQ worker, the ticker (reaper and re-queuer) and a Redis"
	@echo "              (REDIS_URL, else a private redis-server, else in-process fakeredis);"
	@echo "              migrates, loads the topology and the demo people first"
	@echo "make code USER=bob - a demo person's current two-factor code (make run lists who has one)"
	@echo "make lab    - build (cached) and boot beamrider, sunjammer and remora2 as real Debian 12"
	@echo "              hosts on this machine (root); make run then runs its jobs on them"
	@echo "make lab-status / make lab-down - the lab hosts' state / stop and remove them"
	@echo "make test   - lint, checks and the whole test suite against real services (lab included)"
	@echo "make test-fast - the same without the lab's tests (no root needed for the lab)"
	@echo "make bench  - run the benchmarks under bench/"
	@echo "make dist   - the install bundle for a Debian 12 server in dist/ (a Python 3.12+, the"
	@echo "              wheelhouse, deploy/install.sh; README: Install on a server)"
	@echo "make vendor - re-vendor htmx $(HTMX_VERSION) and Pico CSS $(PICO_VERSION) from npm"

$(STAMP): pyproject.toml
	@if [ -z "$(PYTHON)" ]; then \
	  echo "No Python 3.12 or newer found (Django 6 needs it). Install one (e.g. 'pyenv install 3.13')" \
	       "or run: make $(MAKECMDGOALS) PYTHON=/path/to/python3.12" >&2; exit 1; fi
	@echo "Creating $(VENV) with $(PYTHON) ($$($(PYTHON) --version))"
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	@DEBUG=$${DEBUG:-true} $(PY) manage.py devstack

# USER is also the login name in every shell's environment: only a USER= given to make counts.
code: $(STAMP)
	@if [ "$(origin USER)" != "command line" ]; then \
	  echo "Which demo person? make code USER=bob (make run lists who uses two-factor)" >&2; \
	  exit 2; fi
	@DEBUG=true $(PY) manage.py demo_code '$(USER)'

lab-needs-root:
	@[ "$$(id -u)" = 0 ] || { echo "make: the lab needs root (namespaces, cgroups, mounts); run it as root" >&2; exit 1; }

# The lab needs root and no Django: it runs with the venv's Python, imports nothing of the app.
LAB := $(PY) -m lab
lab lab-down lab-status: lab-needs-root $(STAMP)
	@$(LAB) $(patsubst lab,up,$(patsubst lab-%,%,$@))

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: $(STAMP) lint
	DEBUG=true $(PY) manage.py check --fail-level WARNING
	DEBUG=true $(PY) manage.py makemigrations --check --dry-run
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP) lint
	$(PY) -m pytest -m "not lab" $(PYTEST_ARGS)

# The bundle's Python is the newest pyenv 3.12+ (or DIST_PYTHON=/prefix/bin/python3.X).
dist:
	deploy/build-bundle.sh $(if $(DIST_PYTHON),--python $(DIST_PYTHON))

bench: $(STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

vendor:
	@tmp=$$(mktemp -d) && cd $$tmp && \
	  npm pack --silent htmx.org@$(HTMX_VERSION) @picocss/pico@$(PICO_VERSION) >/dev/null && \
	  tar xzf htmx.org-$(HTMX_VERSION).tgz && cp package/dist/htmx.min.js package/LICENSE $(CURDIR)/static/vendor/htmx/ && rm -rf package && \
	  tar xzf picocss-pico-$(PICO_VERSION).tgz && cp package/css/pico.min.css package/LICENSE.md $(CURDIR)/static/vendor/pico/ && \
	  printf 'htmx.org $(HTMX_VERSION)\n@picocss/pico $(PICO_VERSION)\n' > $(CURDIR)/static/vendor/VERSIONS && \
	  rm -rf $$tmp && echo "Vendored htmx $(HTMX_VERSION) and Pico CSS $(PICO_VERSION) into static/vendor/"

clean:
	rm -rf $(VENV) var/staticfiles dist
