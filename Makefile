# The two commands of the README: `make demo` (the main job) and `make test` (the suite).
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test lint bench clean
setup:
	@bash scripts/setup_env.sh

demo: setup
	$(VENV)/bin/llmtrain demo $(ARGS)

test:
	@bash scripts/setup_env.sh --with-test-tools
	$(PY) -m pytest -q $(ARGS)

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

bench: setup
	$(PY) bench/shakespeare_char.py

clean:
	rm -rf runs .pytest_cache
