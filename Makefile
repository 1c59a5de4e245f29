# Two commands do all the set-up on a fresh machine (Python 3.11+ with venv):
#   make run    install into .venv and serve the bundled example notes on http://127.0.0.1:8080/
#   make test   install into .venv with the test extras and run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

# requirements.lock pins the runtime dependencies (the Dockerfile installs from it),
# requirements-test.lock pins those plus the test extras (CI); both serve as pip constraints, so
# `pip install -e .` without them keeps working. `make lock` re-resolves after pyproject.toml
# changes, keeping existing pins; `make lock LOCK_FLAGS=--upgrade` moves every pin to the latest.
LOCK_VENV ?= .venv-lock
LOCK_FLAGS ?=
PIP_COMPILE = $(LOCK_VENV)/bin/pip-compile --quiet --strip-extras --allow-unsafe \
	--no-emit-index-url --no-emit-find-links --no-emit-trusted-host $(LOCK_FLAGS)

.PHONY: run test install install-test bench clean lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -c requirements.lock -e .

install-test: $(BIN)/python
	$(BIN)/pip install --quiet -c requirements-test.lock -e '.[test]'

$(LOCK_VENV)/bin/pip-compile:
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install --quiet pip-tools

lock: $(LOCK_VENV)/bin/pip-compile
	$(PIP_COMPILE) --extra test -o requirements-test.lock pyproject.toml
	$(PIP_COMPILE) --build-deps-for wheel -c requirements-test.lock -o requirements.lock pyproject.toml

run: install
	$(BIN)/feedsvc serve --config config/feedsvc.toml

test: install-test
	$(BIN)/python -m pytest

bench: install-test
	$(BIN)/python bench/scan.py --notes 10000
	$(BIN)/python bench/render.py --notes 10000
	$(BIN)/python bench/serve.py --notes 10000

clean:
	rm -rf $(VENV) $(LOCK_VENV) data build *.egg-info
