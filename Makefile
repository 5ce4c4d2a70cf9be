# Developer / CI entry points for ltp_tfmot.
#
#   make venv    - create .venv (python3 -m venv) and install requirements
#   make bazel   - install Debian's bazel-bootstrap (Bazel 4.2.3) if missing
#   make test    - run the Bazel test suite (bazel test //...) with the venv
#   make pytest  - run the tests directly with pytest
#   make lint    - ruff (max line length 120)
#   make demo    - run examples/find_lottery_ticket.py
#   make wheel   - build a wheel into dist/
#   make clean   - remove build outputs (keeps .venv); distclean also drops .venv

SHELL := /bin/bash
.DEFAULT_GOAL := test

PYTHON3 ?= python3
VENV := .venv
VENV_PY := $(VENV)/bin/python
REQUIREMENTS := requirements-dev.txt
REQUIREMENTS_NODEPS := requirements-nodeps.txt
# Written after a successful install; rebuilt whenever a requirements file changes.
VENV_STAMP := $(VENV)/.ltp_tfmot-requirements.stamp

BAZEL ?= bazel
BAZEL_TEST_FLAGS ?=
# Bazel cannot see into .venv: tag test actions with a checksum of the
# requirements so that cached test results are dropped when they change.
REQUIREMENTS_ID = $(shell cat $(REQUIREMENTS) $(REQUIREMENTS_NODEPS) | cksum | cut -d' ' -f1)
BAZEL_TARGETS ?= //...

# Same TensorFlow environment as the Bazel tests get (see .bazelrc).
TF_ENV := TF_CPP_MIN_LOG_LEVEL=2 TF_USE_LEGACY_KERAS=1 PYTHONPATH=$(CURDIR)

# Use sudo for apt-get only when not root (CI runs as root, often without sudo).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_GET := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get
PIP := $(VENV_PY) -m pip --disable-pip-version-check --no-input

.PHONY: venv bazel test pytest lint demo wheel clean distclean

venv: $(VENV_STAMP)

$(VENV_STAMP): $(REQUIREMENTS) $(REQUIREMENTS_NODEPS)
	@if [ ! -x "$(VENV_PY)" ]; then \
	  echo ">>> creating $(VENV) with $$(command -v $(PYTHON3))"; \
	  if ! $(PYTHON3) -m venv $(VENV); then \
	    echo ">>> python3 -m venv failed; installing Debian's python3-venv"; \
	    rm -rf $(VENV); \
	    $(APT_GET) update && $(APT_GET) install -y python3-venv && \
	    $(PYTHON3) -m venv $(VENV); \
	  fi; \
	fi
	$(PIP) install -r $(REQUIREMENTS)
	$(PIP) install --no-deps -r $(REQUIREMENTS_NODEPS)
	@touch $@

bazel:
	@if command -v $(BAZEL) >/dev/null 2>&1; then \
	  echo ">>> using $$(command -v $(BAZEL))"; \
	else \
	  echo ">>> installing Debian's bazel-bootstrap"; \
	  $(APT_GET) update && $(APT_GET) install -y bazel-bootstrap; \
	fi

test: venv bazel
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(BAZEL) test \
	  --test_env=LTP_TFMOT_REQUIREMENTS_ID=$(REQUIREMENTS_ID) \
	  $(BAZEL_TEST_FLAGS) $(BAZEL_TARGETS)

pytest: venv
	env $(TF_ENV) $(VENV_PY) -m pytest tests -q

lint: venv
	$(VENV)/bin/ruff check ltp_tfmot tests examples

demo: venv
	env $(TF_ENV) $(VENV_PY) examples/find_lottery_ticket.py

wheel: venv
	$(VENV_PY) -m build --wheel

clean:
	@if command -v $(BAZEL) >/dev/null 2>&1 && [ -f WORKSPACE ]; then \
	  $(BAZEL) clean --expunge; \
	fi
	rm -rf build dist *.egg-info .pytest_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
