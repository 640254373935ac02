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

run: $(STAMP)
	DEBUG=true $(PY) manage.py migrate --noinput
	DEBUG=true $(PY) manage.py createcachetable
	DEBUG=true $(PY) manage.py load_demo --base-url http://127.0.0.1:$(WEB_PORT)
	DEBUG=true PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/honcho start

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) scripts/test_deps.py
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) db.sqlite3* test-db.sqlite3* .local/celery-*.sqlite3
