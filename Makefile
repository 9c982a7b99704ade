# The two commands a new user needs: `make run` and `make test`. Both bootstrap .venv from the
# committed lock file on first use (and again whenever the lock changes).

PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint format lock manage clean chromium nginx

# The browser tests drive the system Chromium (Playwright cannot download browsers here).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	@$(VPY) -m pip install --quiet --upgrade pip
	@$(VPY) -m pip install --quiet --require-virtualenv -r requirements.lock
	@touch $(STAMP)

## Start the app on its embedded defaults (PostgreSQL in .data/pg, the DeepSeek simulator
## unless DEEPSEEK_API_KEY is set) at http://127.0.0.1:$${PORT:-8000}/. Ctrl-C stops everything.
run: $(STAMP)
	@$(VPY) -m chatsite.launcher run

## The whole suite; uses DATABASE_URL / REDIS_URL when set, an embedded PostgreSQL otherwise.
test: $(STAMP) chromium nginx
	@$(VPY) -m chatsite.launcher test $(ARGS)

chromium:
	@command -v chromium >/dev/null 2>&1 || { echo "[make] installing Chromium for the browser tests"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }

# The compose deployment's proxy (deploy/nginx.conf), which a test runs in front of a worker.
nginx:
	@command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || { echo "[make] installing nginx for the proxy's tests"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq nginx-light; }

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DEBUG=1 DATABASE_URL=postgres://lint@127.0.0.1/lint $(VENV)/bin/mypy .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

## Any manage.py command against the embedded database: make manage ARGS="createsuperuser"
manage: $(STAMP)
	@$(VPY) -m chatsite.launcher manage $(ARGS)

## Re-resolve the pinned versions after editing pyproject.toml.
lock:
	rm -rf /tmp/lock-venv && $(PYTHON) -m venv /tmp/lock-venv
	/tmp/lock-venv/bin/pip install --quiet --upgrade pip
	/tmp/lock-venv/bin/pip install --quiet -e '.[dev]'
	/tmp/lock-venv/bin/pip freeze --exclude-editable | grep -v '^-e' > requirements.lock

clean:
	rm -rf $(VENV) .data/staticfiles
