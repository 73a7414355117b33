# Entry points of the project. Every target installs what it needs first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PROTOS := $(wildcard protos/captioning_events/v1/*.proto)
GENERATED := libs/captioning_events/.generated

.PHONY: help install protos up status down test test-unit proto-check proto-lock settings-table clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

install: $(STAMP) $(GENERATED)  ## create .venv with the pinned dependencies and generate the event code

$(VENV)/.tools: 
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip==25.3
	$(PY) -m pip install -q grpcio-tools==1.81.1 protobuf==6.33.6
	touch $@

$(GENERATED): $(PROTOS) $(VENV)/.tools
	rm -rf libs/captioning_events
	$(PY) -m grpc_tools.protoc -Iprotos --python_out=libs --pyi_out=libs $(PROTOS)
	touch $@

$(STAMP): pyproject.toml $(GENERATED)
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

protos: $(GENERATED)  ## generate Python code from protos/

up: install  ## install (first run) and start Kafka, S3 and Triton; prints cold/warm start times
	$(PY) -m localinfra up

status: install  ## show whether each local server is healthy
	$(PY) -m localinfra status

down: install  ## stop the local servers
	$(PY) -m localinfra down

test: install  ## run every test; starts (and stops) the real servers it needs
	$(PY) -m pytest

test-unit: install  ## run only the tests that need no server
	$(PY) -m pytest -m "not integration"

proto-check: install  ## fail when the schemas break the published lock
	$(PY) -m captioning_common.events.compat

proto-lock: install  ## record compatible schema additions in protos/published.lock.json
	$(PY) -m captioning_common.events.compat --write

settings-table: install  ## print the README table of every setting
	$(PY) -m captioning_common.settings_doc

clean: down  ## stop servers and remove the venv, generated code and local state
	rm -rf $(VENV) libs/captioning_events .local
