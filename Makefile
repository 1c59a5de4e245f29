# Two commands do all the set-up on a fresh machine (Python 3.11+ with venv):
#   make run    install into .venv and serve the bundled example notes on http://127.0.0.1:8080/
#   make test   install into .venv with the test extras and run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: run test install install-test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

install-test: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'

run: install
	$(BIN)/feedsvc serve --config config/feedsvc.toml

test: install-test
	$(BIN)/python -m pytest

bench: install-test
	$(BIN)/python bench/scan.py --notes 10000
	$(BIN)/python bench/render.py --notes 10000
	$(BIN)/python bench/serve.py --notes 10000

clean:
	rm -rf $(VENV) data build *.egg-info
