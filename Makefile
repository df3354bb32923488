# The two commands of the README: `make demo` and `make test`. Both install what they need.
#
# Python 3.11: what Flex Consumption runs for this app (infra/) and what the tests and mypy target.
# Another interpreter: `make PYTHON=/path/to/python3.11 test`. A virtual environment built with another
# interpreter (its pyvenv.cfg says which) is rebuilt.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || echo python3)
PYTHON_VERSION := 3.11
VENV := .venv
PY := $(VENV)/bin/python
VENV_CHECKOV := .venv-checkov
PY_STAMP := $(VENV)/.installed
CHECKOV_STAMP := $(VENV_CHECKOV)/.installed
VENV_WORKFLOWS := .venv-workflows
WORKFLOWS_STAMP := $(VENV_WORKFLOWS)/.installed
NODE_STAMP := node_modules/.installed

# "<version> <real path>" of $(PYTHON) (empty when it does not run), and of the interpreter a virtual
# environment was built with (its pyvenv.cfg). They differ: FORCE, the environment is rebuilt.
INTERPRETER := $(strip $(shell $(PYTHON) -c 'import os, sys; print("%d.%d.%d" % sys.version_info[:3], os.path.realpath(sys._base_executable))' 2>/dev/null))
built_with = $(strip $(shell sed -n 's/^version = //p; s/^executable = //p' $(1)/pyvenv.cfg 2>/dev/null))
same = $(and $(findstring x$(1)x,x$(2)x),$(findstring x$(2)x,x$(1)x))
stale = $(if $(call same,$(call built_with,$(1)),$(INTERPRETER)),,FORCE)

.PHONY: all deps bytecode demo up test bench bench-profile bench-cli bench-throttle simulate-budget chaos soak fuzz lint typecheck infra-check workflow-check check-python clean FORCE

all: test

deps: $(PY_STAMP) $(CHECKOV_STAMP) $(WORKFLOWS_STAMP) $(NODE_STAMP) bytecode

# The deployed modules compiled once, as pip compiles every package it installs: a cold start reads
# their bytecode instead of compiling the app's source (about 50 ms of a 0.4-s import on this
# machine), even where nothing may write __pycache__ (PYTHONDONTWRITEBYTECODE, a read-only package).
# checked-hash: a .pyc serves only while its source is unchanged, whatever the files' times say.
# azure.yaml does the same before it packages the app.
bytecode: $(PY_STAMP)
	$(PY) -m compileall -q --invalidation-mode checked-hash function_app.py shared

# Refuse an interpreter this project does not build with, in one line that says what to do.
check-python:
	@case "$(word 1,$(INTERPRETER))" in \
	  $(PYTHON_VERSION).*) ;; \
	  "") echo "error: '$(PYTHON)' does not run: install Python $(PYTHON_VERSION), or name it: make PYTHON=/path/to/python$(PYTHON_VERSION)" >&2; exit 2 ;; \
	  *) echo "error: '$(PYTHON)' is Python $(word 1,$(INTERPRETER)); this project builds and deploys with $(PYTHON_VERSION) (Flex Consumption): make PYTHON=/path/to/python$(PYTHON_VERSION)" >&2; exit 2 ;; \
	esac

FORCE:

$(PY_STAMP): requirements.txt requirements-cli.txt requirements-dev.txt $(call stale,$(VENV)) | check-python
	$(PYTHON) -m venv --clear $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# checkov pins an old pycep-parser, so it lives in a virtual environment of its own.
$(CHECKOV_STAMP): requirements-checkov.txt $(call stale,$(VENV_CHECKOV)) | check-python
	$(PYTHON) -m venv --clear $(VENV_CHECKOV)
	$(VENV_CHECKOV)/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(VENV_CHECKOV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $@

# zizmor and check-jsonschema, apart from the app's tools (their pins need not agree).
$(WORKFLOWS_STAMP): requirements-workflows.txt $(call stale,$(VENV_WORKFLOWS)) | check-python
	$(PYTHON) -m venv --clear $(VENV_WORKFLOWS)
	$(VENV_WORKFLOWS)/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(VENV_WORKFLOWS)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-workflows.txt
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

lint: $(PY_STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: $(PY_STAMP)
	$(PY) -m mypy

infra-check: $(CHECKOV_STAMP)
	$(VENV_CHECKOV)/bin/checkov --directory infra --framework bicep --skip-download --compact --quiet

# The GitHub workflows, offline: zizmor's security audits (any finding fails) and the workflow schema
# that check-jsonschema vendors.
workflow-check: $(WORKFLOWS_STAMP)
	$(VENV_WORKFLOWS)/bin/zizmor --offline --no-progress .github/workflows
	$(VENV_WORKFLOWS)/bin/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml

# Every test and check: lint, types, Bicep policy, workflows, then pytest (unit, integration against Azurite
# and the Language emulator that the test session starts and stops itself, infra consistency, chaos).
test: deps lint typecheck infra-check workflow-check
	$(PY) -m pytest

demo: $(PY_STAMP) $(NODE_STAMP) bytecode
	$(PY) -m local.demo

# The local playground: Azurite, the Language emulator and the app (queue trigger and timer) until
# Ctrl-C; the settings for python -m cli and python -m local.upstream go to .playground/env.
up: $(PY_STAMP) $(NODE_STAMP) bytecode
	$(PY) -m local.playground

# Numbers behind the performance and cost claims (cold start, throughput, requests per job).
bench: $(PY_STAMP) $(NODE_STAMP) bytecode
	$(PY) -m local.bench

# The operator command line over 2,000 and 10,000 archived jobs: jobs/s and peak RSS of verify --all
# and export (memory must not grow with the archive). Not part of `make test`: it takes minutes.
bench-cli: $(PY_STAMP) $(NODE_STAMP)
	$(PY) -m local.bench.cli

# Nothing lost when the machine dies: 1,000 jobs, worker processes SIGKILLed mid-invocation and
# restarted, storage stopped twice, lost messages, duplicates; judged by storage alone (docs/development.md,
# "Chaos proofs"). Under 10 minutes on 2 cores; `make test` runs a small version.
chaos: $(PY_STAMP) $(NODE_STAMP) bytecode
	$(PY) -m local.proof.chaos --jobs 1000

# One Language quota, many jobs: 300 jobs at once, 3 worker processes, budget 480 a minute, the
# emulator at 600 a minute squeezed to 300 for 30 s; requests per 60-s window, 429s, lag, GETs per
# job; fails on the thresholds of docs/development.md, "The request budget, measured". A few minutes.
bench-throttle: $(PY_STAMP) $(NODE_STAMP) bytecode
	$(PY) -m local.bench.throttle

# 10,000 pending jobs against the S tier in virtual time (the real budget and poll policy, no
# sleeping): requests per minute, 429s, lag, no job timed out. Seconds.
simulate-budget: $(PY_STAMP)
	$(PY) -m local.bench.simulate_budget

# 5,000 jobs through one worker process: its memory must level off.
soak: $(PY_STAMP) $(NODE_STAMP) bytecode
	$(PY) -m local.proof.soak --jobs 5000 --every 1000

# Where the app's CPU goes: two app rounds under cProfile, own time grouped by package, top functions.
bench-profile: $(PY_STAMP) $(NODE_STAMP) bytecode
	$(PY) -m local.bench --profile

# Coverage-guided fuzzing (atheris) of the message parser and the answer parser, FUZZ_SECONDS each
# (default 60). Not part of `make test`, which runs each target for a second as a smoke test.
FUZZ_SECONDS ?= 60
fuzz: $(PY_STAMP)
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(PY) -m local.fuzz

clean:
	rm -rf $(VENV) $(VENV_CHECKOV) $(VENV_WORKFLOWS) node_modules .pytest_cache .mypy_cache .ruff_cache .demo .playground __pycache__ shared/__pycache__
