# make run  — set up everything on a fresh machine and run the product (SQLite, published/).
# make test — set up everything and run the whole suite (lint, types, tests).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench screenshots clean catalogues

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The product alone for `make run`; the test tools too for `make test`.
# Bytecode compiled once, as an installation has it: with PYTHONDONTWRITEBYTECODE set,
# every command (and every render worker) would compile the package again.
$(VENV)/.run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	$(BIN)/python -m pipeline.messages compile
	$(BIN)/python -m compileall -q pipeline
	touch $@

$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m pipeline.messages compile
	$(BIN)/python -m compileall -q pipeline
	touch $@ $(VENV)/.run

# The error vocabulary's catalogues: .po (in git) -> .mo (built, never downloaded).
catalogues: $(VENV)/.run
	$(BIN)/python -m pipeline.messages compile

run: $(VENV)/.run
	mkdir -p drafts published
	$(BIN)/pipeline --config config.toml serve

lint: $(VENV)/.test
	$(BIN)/ruff check pipeline tests bench
	$(BIN)/mypy pipeline

test: lint
	bash scripts/ensure-chromium
	$(BIN)/python -m pytest -n 2 -q

bench: $(VENV)/.test
	$(BIN)/python bench/bench_intake.py
	$(BIN)/python bench/bench_queries.py
	$(BIN)/python bench/bench_month.py
	$(BIN)/python bench/bench_alerts.py
	$(BIN)/python bench/bench_render.py
	$(BIN)/python bench/bench_proofread.py
	$(BIN)/python bench/bench_web.py
	$(BIN)/python bench/bench_login.py

# Refresh the README's screenshots from the browser test.
screenshots: $(VENV)/.test
	bash scripts/ensure-chromium
	PIPELINE_SCREENSHOTS=1 $(BIN)/python -m pytest -q tests/test_web_browser.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
