# `make run` and `make test` work on a fresh machine: they create the virtual
# environment and install what is missing first.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
ARGS ?=

.PHONY: run test test-unit sysdeps bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

run: $(VENV)/.installed
	$(PY) -m hub --data ./data $(ARGS)

# End-to-end tests push and play with the ffmpeg CLI.
sysdeps:
	@command -v ffmpeg >/dev/null 2>&1 || { \
	  echo "installing ffmpeg (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null; }

test: $(VENV)/.installed sysdeps
	$(PY) -m pytest -q $(ARGS)

test-unit: $(VENV)/.installed
	$(PY) -m pytest -q -m "not e2e" $(ARGS)

bench: $(VENV)/.installed sysdeps
	$(PY) bench/ring.py
	$(PY) bench/ipc.py

clean:
	rm -rf $(VENV) *.egg-info
