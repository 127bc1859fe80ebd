# One command runs the kiosk, one passes the tests; each creates .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= .kiosk-data

.PHONY: run test bench clean

$(BIN)/kiosk: pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

run: $(BIN)/kiosk
	$(BIN)/kiosk --data-dir $(DATA) --session demo

test: $(BIN)/kiosk
	$(BIN)/pytest

bench: $(BIN)/kiosk
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(DATA) .pytest_cache
