# The two commands a newcomer needs: `make up` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip install -q --disable-pip-version-check

.PHONY: up test test-all test-slow test-faults test-fuzz test-security bench lint protos conformance clean

$(VENV)/.base: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) -e .
	touch $@

$(VENV)/.test: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) -e '.[test]'
	touch $@ $(VENV)/.base

up: $(VENV)/.base
	$(VENV)/bin/tiercel up $(ARGS)

test: $(VENV)/.test
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-slow: $(VENV)/.test
	$(PY) -m pytest -q -m slow $(PYTEST_ARGS)

# The fault suite (about 2 min; CI runs it after make test): services as real processes, NATS and a 3-node cluster; figures in
# build/faults.json (docs/reliability.md quotes them).
test-faults: $(VENV)/.test
	$(PY) -m pytest -q -m 'faults or fault_smoke' -s $(PYTEST_ARGS)

test-fuzz: $(VENV)/.test
	$(PY) -m pytest -q -m fuzz $(PYTEST_ARGS)

# The security suite (also part of make test): mutual TLS, identities, socket, NATS credentials, logs.
test-security: $(VENV)/.test
	$(PY) -m pytest -q tests/test_api_security.py tests/test_security.py $(PYTEST_ARGS)

test-all: $(VENV)/.test
	$(PY) -m pytest -q -m '' $(PYTEST_ARGS)

bench: $(VENV)/.base
	$(VENV)/bin/tiercel bench all $(ARGS)

conformance: $(VENV)/.base
	$(PYTHON) ../shared/conformance/run.py --cmd "$(VENV)/bin/tiercel"

lint: $(VENV)/.test
	$(VENV)/bin/ruff check services tests tools

protos: $(VENV)/.test
	$(PY) tools/gen_protos.py

clean:
	rm -rf $(VENV) build *.egg-info
