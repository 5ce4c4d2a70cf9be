# Developer / CI entry points for ltp_tfmot.
#
#   make venv    - create .venv (python3 -m venv) and install requirements
#   make bazel   - install Debian's bazel-bootstrap (Bazel 4.2.3) if missing
#   make test    - run the Bazel test suite (bazel test //...) with the venv
#   make pytest  - run the tests directly with pytest
#   make lint    - ruff (max line length 120)
#   make demo    - install the package with its examples extra into .venv-demo (nothing else), then run
#                  examples/lottery_experiment.py (LeNet-300-100 lottery search on MNIST, report + plot)
#   make wheel   - build a wheel into dist/
#   make clean   - remove build outputs (keeps .venv); distclean also drops .venv
#   make test-matrix - build the package once, then for each of MATRIX_PYTHONS (3.10 3.11 3.12 3.13) install
#                  the wheel into a fresh .matrix/py3.X venv and run a copy of tests/ against it with pytest
#                  (one version: make test-py3.12; summary: make matrix-summary)
#   make coverage - pytest under coverage (branch) of ltp_tfmot; report here, html + xml into htmlcov/
#   make dist    - sdist + wheel into dist/, then twine check --strict

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
# Bazel keeps its server, install and outputs in the clone (ignored by git and by Bazel's own package walk), not in
# ~/.cache/bazel: a test run leaves nothing behind outside the clone and the temporary directory.
BAZEL_ROOT := $(CURDIR)/.bazel-root
BAZEL_CMD = $(BAZEL) --output_user_root=$(BAZEL_ROOT)
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
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(BAZEL_CMD) test \
	  --test_env=LTP_TFMOT_REQUIREMENTS_ID=$(REQUIREMENTS_ID) \
	  $(BAZEL_TEST_FLAGS) $(BAZEL_TARGETS)

pytest: venv
	env $(TF_ENV) $(VENV_PY) -m pytest tests -q

lint: venv
	$(VENV)/bin/ruff check ltp_tfmot tests examples

# The demo runs as a user would: a venv of its own holding only the package and its examples extra.
DEMO_VENV := .venv-demo
DEMO_STAMP := $(DEMO_VENV)/.ltp_tfmot-demo.stamp

$(DEMO_STAMP): setup.py README.md $(shell find ltp_tfmot -name "*.py" 2>/dev/null)
	@if [ ! -x $(DEMO_VENV)/bin/python ]; then $(PYTHON3) -m venv $(DEMO_VENV); fi
	$(DEMO_VENV)/bin/python -m pip --disable-pip-version-check --no-input install '.[examples]'
	@touch $@

demo: $(DEMO_STAMP)
	env TF_CPP_MIN_LOG_LEVEL=2 $(DEMO_VENV)/bin/python examples/lottery_experiment.py

wheel: venv
	$(VENV_PY) -m build --wheel

clean:
	@if command -v $(BAZEL) >/dev/null 2>&1 && [ -f WORKSPACE ]; then \
	  $(BAZEL_CMD) clean --expunge; \
	fi
	rm -rf build dist *.egg-info .pytest_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) $(DEMO_VENV) $(BAZEL_ROOT)

# --- Python version matrix, coverage, release artefacts --------------------------------------------------------

.PHONY: test-matrix matrix-wheel matrix-summary clean-matrix coverage dist

MATRIX_PYTHONS ?= 3.10 3.11 3.12 3.13
# Self-ignoring (it holds a .gitignore of '*'), like a venv made by Python 3.13.
MATRIX_DIR := .matrix
# Extras installed with the wheel, in one resolution with requirements-dev.txt (the pinned test requirements:
# tensorflow==2.21.0, ...); then requirements-nodeps.txt, as `make venv` does.
MATRIX_EXTRAS ?= tests
MATRIX_PYTEST_ARGS ?= tests -q
# The tests copied for each version (test-matrix passes a snapshot taken when it starts).
MATRIX_TESTS ?= tests
MATRIX_WHEEL_STAMP := $(MATRIX_DIR)/dist/.built
MATRIX_SOURCES := setup.py MANIFEST.in README.md LICENSE $(wildcard pyproject.toml) \
  $(shell find ltp_tfmot -name '*.py' 2>/dev/null)
MATRIX_TARGETS := $(addprefix test-py,$(MATRIX_PYTHONS))
.PHONY: $(MATRIX_TARGETS)

# One interpreter per version: MATRIX_PYTHON_3.X if set, else the newest pyenv build of 3.X, else python3.X
# on PATH (actions/setup-python puts it there).
find_matrix_python = py='$(MATRIX_PYTHON_$(1))'; \
  if [ -z "$$py" ]; then \
    py=$$(ls -d "$${PYENV_ROOT:-$$HOME/.pyenv}"/versions/$(1).*/bin/python 2>/dev/null | grep -v 't/bin/python$$' | sort -V | tail -n1); \
  fi; \
  if [ -z "$$py" ]; then py=$$(command -v python$(1) || true); fi; \
  if [ -z "$$py" ] || [ "$$("$$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" != "$(1)" ]; then \
    echo "no Python $(1) interpreter found (set MATRIX_PYTHON_$(1)=/path/to/python$(1))" >&2; exit 1; \
  fi

matrix-wheel: $(MATRIX_WHEEL_STAMP)

# Built once per change of the package: python -m build makes the sdist and then the wheel from the sdist (so a
# file missing from the sdist fails here, and no stale build/lib file can slip into the wheel).
$(MATRIX_WHEEL_STAMP): $(MATRIX_SOURCES)
	@mkdir -p $(MATRIX_DIR) && echo '*' > $(MATRIX_DIR)/.gitignore
	@if [ ! -x $(MATRIX_DIR)/build-tools/bin/python ]; then \
	  $(PYTHON3) -m venv $(MATRIX_DIR)/build-tools && \
	  $(MATRIX_DIR)/build-tools/bin/python -m pip --disable-pip-version-check --no-input install -q build; \
	fi
	rm -rf $(MATRIX_DIR)/dist
	$(MATRIX_DIR)/build-tools/bin/python -m build --outdir $(MATRIX_DIR)/dist .
	@touch $@

# For each version: a fresh venv, the wheel with [$(MATRIX_EXTRAS)] plus the test requirements, and
# pytest run from .matrix/py3.X/run, which holds only a copy of tests/ (imported as the package `tests`): the
# source tree is not on sys.path, so ltp_tfmot comes from the installed wheel (checked before pytest runs); an
# empty pytest.ini there keeps pytest from taking the repository's root as its rootdir.
# Results: .matrix/py3.X/{install.log,pytest.log,junit.xml,result.txt}.
$(MATRIX_TARGETS): test-py%: $(if $(MATRIX_FROZEN),,$(MATRIX_WHEEL_STAMP))
	@set -uo pipefail; \
	$(call find_matrix_python,$*); \
	dir=$(MATRIX_DIR)/py$*; abs=$(CURDIR)/$$dir; rm -f $$dir/result.txt; \
	whl=$$(ls $(MATRIX_DIR)/dist/*.whl); \
	echo ">>> Python $*: $$py; installing $$whl[$(MATRIX_EXTRAS)] into $$dir"; \
	t0=$$(date +%s); \
	{ $$py -m venv --clear $$dir && \
	  $$dir/bin/python -m pip --disable-pip-version-check --no-input install --upgrade pip && \
	  $$dir/bin/python -m pip --disable-pip-version-check --no-input install \
	    "$$whl[$(MATRIX_EXTRAS)]" -r $(REQUIREMENTS) && \
	  $$dir/bin/python -m pip --disable-pip-version-check --no-input install \
	    --no-deps -r $(REQUIREMENTS_NODEPS); } >$$dir.install.log 2>&1; \
	install_rc=$$?; mkdir -p $$dir; mv -f $$dir.install.log $$dir/install.log; \
	t1=$$(date +%s); \
	if [ $$install_rc -ne 0 ]; then \
	  tail -n 30 $$dir/install.log; \
	  echo "py$*  INSTALL FAILED (see $$dir/install.log)" | tee $$dir/result.txt; exit 1; \
	fi; \
	rm -rf $$dir/run && mkdir -p $$dir/run && cp -R $(MATRIX_TESTS) $$dir/run/tests && \
	find $$dir/run -name __pycache__ -type d -prune -exec rm -rf {} +; \
	printf '[pytest]\n' > $$dir/run/pytest.ini; \
	cd $$dir/run && \
	env -u PYTHONPATH TF_CPP_MIN_LOG_LEVEL=2 TF_USE_LEGACY_KERAS=1 MPLBACKEND=Agg \
	  $$abs/bin/python -c 'import ltp_tfmot, os, sys; f = ltp_tfmot.__file__; \
	    ok = f.startswith(os.path.realpath(sys.prefix)) or f.startswith(sys.prefix); \
	    print(">>> testing ltp_tfmot", ltp_tfmot.__version__, "from", f); sys.exit(0 if ok else 1)' || \
	  { echo "py$*  ltp_tfmot NOT imported from the installed wheel" | tee $$abs/result.txt; exit 1; }; \
	env -u PYTHONPATH TF_CPP_MIN_LOG_LEVEL=2 TF_USE_LEGACY_KERAS=1 MPLBACKEND=Agg \
	  $$abs/bin/python -m pytest --rootdir=. -p no:cacheprovider --junitxml=$$abs/junit.xml $(MATRIX_PYTEST_ARGS) \
	  2>&1 | tee $$abs/pytest.log; \
	test_rc=$${PIPESTATUS[0]}; t2=$$(date +%s); \
	$$abs/bin/python -c 'import sys, xml.etree.ElementTree as et; \
	  n = dict.fromkeys(("passed", "failed", "errors", "skipped", "xfailed"), 0); \
	  kind = lambda c: ("failed" if c.find("failure") is not None else "errors" if c.find("error") is not None \
	    else "passed" if c.find("skipped") is None else "xfailed" if c.find("skipped").get("type") == "pytest.xfail" \
	    else "skipped"); \
	  [n.__setitem__(kind(c), n[kind(c)] + 1) for c in et.parse(sys.argv[1]).getroot().iter("testcase")]; \
	  print("py%s  %s  passed %d  failed %d  errors %d  skipped %d  xfailed %d  install %ss  tests %ss" % ( \
	    sys.argv[2], sys.argv[3], n["passed"], n["failed"], n["errors"], n["skipped"], n["xfailed"], sys.argv[4], \
	    sys.argv[5]))' \
	  $$abs/junit.xml $* "$$($$abs/bin/python -V 2>&1 | cut -d' ' -f2)" $$((t1 - t0)) $$((t2 - t1)) \
	  2>/dev/null | tee $$abs/result.txt || echo "py$*  pytest exit $$test_rc, no junit.xml" | tee $$abs/result.txt; \
	exit $$test_rc

# Runs every version even when one fails; fails if any did. Every version tests the same wheel and the same
# tests: the wheel is built (if out of date) and tests/ copied once, when it starts (MATRIX_FROZEN=1 keeps the
# per-version runs from rebuilding the wheel while the package is being edited).
test-matrix: $(MATRIX_WHEEL_STAMP)
	@rm -rf $(MATRIX_DIR)/tests && cp -R tests $(MATRIX_DIR)/tests; \
	rc=0; for v in $(MATRIX_PYTHONS); do \
	  $(MAKE) --no-print-directory test-py$$v MATRIX_FROZEN=1 MATRIX_TESTS=$(MATRIX_DIR)/tests || rc=1; \
	done; \
	$(MAKE) --no-print-directory matrix-summary; exit $$rc

matrix-summary:
	@echo ">>> matrix results ($(MATRIX_DIR)/py3.X/result.txt)"; \
	for v in $(MATRIX_PYTHONS); do cat $(MATRIX_DIR)/py$$v/result.txt 2>/dev/null || echo "py$$v  no result"; done

clean-matrix:
	rm -rf $(MATRIX_DIR)

# Branch coverage of the package under the pytest suite (source tree, like `make pytest`). The report is
# printed even when a test fails; the exit status is pytest's.
coverage: venv
	@rm -f .coverage; \
	env $(TF_ENV) MPLBACKEND=Agg $(VENV)/bin/coverage run --branch --source=ltp_tfmot -m pytest tests -q; \
	rc=$$?; \
	$(VENV)/bin/coverage report -m && \
	$(VENV)/bin/coverage html -q -d htmlcov && \
	$(VENV)/bin/coverage xml -q -o htmlcov/coverage.xml && \
	echo ">>> html: htmlcov/index.html, xml: htmlcov/coverage.xml"; \
	exit $$rc

# sdist + wheel (the wheel built from the sdist) into dist/, checked as PyPI will render them.
dist: venv
	rm -f dist/ltp_tfmot-*.tar.gz dist/ltp_tfmot-*.whl
	$(VENV_PY) -m build --outdir dist .
	$(VENV)/bin/twine check --strict dist/ltp_tfmot-*
