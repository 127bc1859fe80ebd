# One command runs the kiosk, one passes the tests; each creates .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= .kiosk-data

.PHONY: run test lint bench clean compiled

$(BIN)/kiosk: pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# The demo's staff account leaves kiosk mode: F12, then « accueil » and this password.
DEMO_STAFF_PASSWORD ?= borne de démonstration

$(DATA)/.staff: | $(BIN)/kiosk
	echo '$(DEMO_STAFF_PASSWORD)' | $(BIN)/kiosk --data-dir $(DATA) staff-account add accueil --role exam_office --password-stdin
	touch $@

# The kiosk's own modules compiled ahead, as an installed package's are (an editable
# install is not, and PYTHONDONTWRITEBYTECODE would leave every start compiling them);
# its message catalogues too (kiosk/i18n.py).
compiled: $(BIN)/kiosk
	$(BIN)/python -m compileall -q kiosk screens
	$(BIN)/python -m kiosk.i18n > /dev/null

run: $(BIN)/kiosk $(DATA)/.staff compiled
	$(BIN)/kiosk --data-dir $(DATA) --session demo

lint: $(BIN)/kiosk
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

bench: $(BIN)/kiosk compiled
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(DATA) .pytest_cache
