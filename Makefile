# make run  — set up everything on a fresh machine and run the product (SQLite, published/).
# make test — set up everything and run the whole suite (lint, types, tests).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	mkdir -p drafts published
	$(BIN)/pipeline --config config.toml serve

lint: $(STAMP)
	$(BIN)/ruff check pipeline tests bench
	$(BIN)/mypy pipeline

test: $(STAMP) lint
	bash scripts/ensure-chromium
	$(BIN)/python -m pytest -n 2 -q

bench: $(STAMP)
	$(BIN)/python bench/bench_intake.py
	$(BIN)/python bench/bench_queries.py
	$(BIN)/python bench/bench_render.py
	$(BIN)/python bench/bench_web.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
