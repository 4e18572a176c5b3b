# Gantry: `make demo` runs the whole thing on a local control plane; `make test` runs every test.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev,runtime]'
	touch $@

venv: $(STAMP)  ## create .venv with the operator, the runtime extra and dev tools

system-deps:  ## Debian packages the tests use (Prometheus for canary analysis)
	@command -v prometheus >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null; }
	@command -v openssl >/dev/null || { apt-get update -qq && apt-get install -y -qq openssl >/dev/null; }

lint: venv  ## ruff, mypy --strict, import contracts, CRD drift
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

crd: venv  ## regenerate crds/ (and the chart's copy) from the API models
	$(VENV)/bin/gantry crd > crds/serving.gantry.dev_modeldeployments.yaml
	cp crds/serving.gantry.dev_modeldeployments.yaml charts/gantry/crds/

unit: venv system-deps  ## unit and component tests (no cluster)
	$(PY) -m pytest tests -q

cluster-up: venv  ## build (once) and start the local control plane with KWOK GPU nodes
	$(PY) -m e2e.cluster up

cluster-down: venv  ## stop every process cluster-up started
	$(PY) -m e2e.cluster down

e2e: venv system-deps  ## end-to-end scenarios on the local control plane (or $$KUBECONFIG's)
	$(PY) -m pytest e2e -q

test: lint unit e2e  ## everything CI runs

demo: venv  ## local control plane + operator: a model to Ready, a canary promoted, a faulty one rolled back; stays up (make demo-down)
	$(PY) -m e2e.demo

demo-down: venv  ## stop what `make demo` left running: operator, model servers, control plane
	$(PY) -m e2e.demo down
.PHONY: demo-down

chart-crd:  ## copy crds/ into charts/gantry/crds (run after `make crd`; a test compares them)
	cp crds/serving.gantry.dev_modeldeployments.yaml charts/gantry/crds/

chart-check: venv system-deps  ## the chart without a cluster: helm lint, values schema, promtool
	$(PY) -m pytest tests/chart -q

bench: venv system-deps  ## benchmarks: ratios against baselines run in the same process
	$(PY) -m bench.operator
	$(PY) -m bench.scaling_bench
	$(PY) -m bench.runtime_bench --quick

clean:  ## remove local state (keeps the build cache outside the repo)
	-$(PY) -m e2e.cluster down
	rm -rf .cluster .pytest_cache .mypy_cache .ruff_cache

.PHONY: help venv system-deps lint crd unit cluster-up cluster-down e2e test demo bench clean
.PHONY: chart-crd chart-check
