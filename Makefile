# Attest. `make demo` runs the product; `make test` runs every check on PostgreSQL and Redis.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

# The test suite's services; `make test` starts them when they are installed but stopped.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/attest
TEST_BROKER_URL ?= redis://127.0.0.1:6379/0
TEST_ENV := DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) \
	SECRET_KEY=attest-tests-only DEBUG=false
# The browser tests (tests/e2e) drive Debian's Chromium; Playwright's own browser download
# cannot be fetched here, so `playwright install` is never run.
CHROMIUM := /usr/bin/chromium
# bench/campaign.py drives the reviewer's page with Debian's wrk.
WRK := /usr/bin/wrk

.PHONY: demo test lint check services browser wrk bench reliability clean

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "Attest needs Python 3.11 or newer ($(PYTHON) is older)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==26.3

$(VENV)/.installed-demo: pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

$(VENV)/.installed-reliability: pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e '.[test,reliability]'
	touch $@

# Without DATABASE_URL and CELERY_BROKER_URL: SQLite under var/ and tasks run in-process.
# With both set: PostgreSQL, Redis and a Celery worker started beside the web server.
demo: $(VENV)/.installed-demo
	export DEBUG=$${DEBUG:-true}; \
	$(BIN)/python manage.py migrate --noinput && \
	$(BIN)/python manage.py load_demo && \
	if [ -n "$$CELERY_BROKER_URL" ]; then \
		$(BIN)/celery -A config worker --loglevel=INFO --concurrency=2 & \
		worker=$$!; trap 'kill $$worker 2>/dev/null' EXIT; \
	fi; \
	$(BIN)/python manage.py runserver 127.0.0.1:8000

# One pytest process per core, each with its own test database (test_attest_gw0, ...); a file's
# tests stay in one process, so the worker tests' Redis databases are never shared.
test: $(VENV)/.installed-test services browser lint check
	$(TEST_ENV) $(BIN)/pytest -n auto --dist loadfile

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

check: $(VENV)/.installed-test services
	$(TEST_ENV) $(BIN)/python manage.py check --fail-level WARNING
	$(TEST_ENV) $(BIN)/python manage.py makemigrations --check --dry-run

services: $(VENV)/.installed-test
	@if ! (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then \
		command -v pg_ctlcluster >/dev/null \
			|| { echo "PostgreSQL is not running on 127.0.0.1:5432 and not installed" >&2; exit 1; }; \
		for version in $$(ls /etc/postgresql); do \
			pg_ctlcluster --skip-systemctl-redirect $$version main start; \
		done; \
	fi
	@if ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then \
		command -v redis-server >/dev/null \
			|| { echo "Redis is not running on 127.0.0.1:6379 and not installed" >&2; exit 1; }; \
		redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no; \
	fi
	@for i in $$(seq 100); do \
		(exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null && (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null && break; \
		sleep 0.2; \
	done
	@$(BIN)/python -m config.createdb "$(TEST_DATABASE_URL)"

# Debian's package $(1) when $(2) is missing: apt-get install alone first, `apt-get update` only
# when the package lists are missing or old; as root, or through sudo.
define apt_install
	@if [ ! -x $(2) ]; then \
		sudo=""; \
		if [ "$$(id -u)" != 0 ]; then \
			command -v sudo >/dev/null \
				|| { echo "$(2) is missing: install Debian's $(1) as root" >&2; exit 1; }; \
			sudo=sudo; \
		fi; \
		install="$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(1)"; \
		$$install || { $$sudo apt-get update -q && $$install; }; \
	fi
endef

browser:
	$(call apt_install,chromium,$(CHROMIUM))

wrk:
	$(call apt_install,wrk,$(WRK))

bench: $(VENV)/.installed-test services wrk
	$(TEST_ENV) $(BIN)/python bench/collect.py
	$(TEST_ENV) $(BIN)/python bench/campaign.py

# The long fault and load runs (tests marked `reliability`; `make test` runs the fast ones):
# worker kills, Redis restarts under a thousand queued tasks, every hostile filter value, and
# 40 reviewers deciding for 10 minutes on a 100,000-item campaign. Redis is started by the tests
# themselves on RELIABILITY_REDIS_PORT (6391), never the shared 6379. Figures land in
# test-artifacts/reliability/load.json; docs/reliability.md reports the last full run.
reliability: $(VENV)/.installed-reliability services
	$(TEST_ENV) $(BIN)/pytest -m reliability -s tests/reliability

clean:
	rm -rf $(VENV) var
