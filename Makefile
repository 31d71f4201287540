# Quick start on a machine without ROS: `make demo` and `make test` (each creates .venv once).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# DDS stays on this machine; a per-run domain id keeps parallel runs apart.
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export ROS_DOMAIN_ID ?= $(shell echo $$(( $$$$ % 100 + 100 )))
export RMW_IMPLEMENTATION ?= rmw_fastrtps_cpp

.PHONY: venv demo test test-fast lint bench clean

venv: $(STAMP)

$(STAMP): requirements.txt setup.py
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(VPY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/seg-perception demo --out out/demo

test: $(STAMP)
	$(VPY) -m pytest

test-fast: $(STAMP)
	$(VPY) -m pytest -m 'not slow'

lint: $(STAMP)
	$(VPY) -m pytest test/test_flake8.py test/test_pep257.py test/test_copyright.py

bench: $(STAMP)
	$(VENV)/bin/seg-perception bench core

clean:
	rm -rf $(VENV) out build install log
