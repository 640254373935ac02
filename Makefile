# The two commands: `make run` (web + worker + beat with the demo tenant) and `make test`.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell (cat requirements.txt; python3 --version) | cksum | cut -d' ' -f1)
WEB_PORT ?= 8000
export WEB_PORT

.PHONY: run test lint venv bench clean

$(STAMP): requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

venv: $(STAMP)

# Development mode; outgoing calls may reach the demo API that a later issue serves on 127.0.0.1.
run: export DEBUG ?= true
run: export OUTBOUND_ALLOWED_HOSTS ?= 127.0.0.1
run: $(STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py load_demo --base-url http://127.0.0.1:$(WEB_PORT)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/honcho start

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(PY) scripts/test_deps.py
	$(PY) -m pytest $(PYTEST_ARGS) || { status=$$?; [ $$status -ne 5 ] || echo "pytest collected no tests: failing" >&2; exit $$status; }

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) db.sqlite3* test-db.sqlite3* .local/celery-*.sqlite3
