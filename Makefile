# Entry points of the project. Every target installs what it needs first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PROTOS := $(wildcard protos/captioning_events/v1/*.proto)
GENERATED := libs/captioning_events/.generated

MODEL_VERSION_DIR := model_repository/scene_captioner/1
EXPORTED := $(MODEL_VERSION_DIR)/student/captioner.json
PROFANITY := services/moderation/profanity_model.npz
SEED   ?= 0

.PHONY: help demo bench install protos model-repository model eval up status down test test-unit hostile chaos proto-check proto-lock settings-table serving-env chart-test chart-readme clean chromium screenshots kube-test

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
	$(PY) -m pip install -q -e '.[dev,model,services,nudenet,triton]'
	touch $@

protos: $(GENERATED)  ## generate Python code from protos/

model-repository: $(EXPORTED) $(PROFANITY)  ## export the student to ONNX; prepare the pretrained classifier, detector, text reader and the moderation's profanity model from pinned packages
	$(PY) -m perception prepare

# The moderation service's profanity model (git-ignored): made when missing, or again when the pinned
# alt-profanity-check is reinstalled or the export changes.
$(PROFANITY): services/moderation/profanity.py $(STAMP)
	$(PY) -m services.moderation.profanity export

$(EXPORTED): models/student/model.safetensors models/student/config.json $(STAMP)
	$(PY) -m captioner export models/student --out $(MODEL_VERSION_DIR)/student --int8 $(MODEL_VERSION_DIR)/student-int8 --name captioner-student

model: install  ## generate the scene data, train the teacher, distil the student (about 1.25 h on 2 cores)
	$(PY) -m captioner generate --out data/scenes --train 24000 --test 500 --novel 500 --seed $(SEED)
	$(PY) -m captioner train --data data/scenes/train.json --out models/teacher --arch teacher --epochs 12 --seed $(SEED)
	$(PY) -m captioner distill --data data/scenes/train.json --teacher models/teacher --out models/student --arch student --epochs 12 --seed $(SEED)

eval: install model-repository  ## evaluate teacher and student (reports/captioner_eval.json), then the served captioner on real photos (reports/real_photos.json)
	test -f data/scenes/test.json || $(PY) -m captioner generate --out data/scenes --train 0 --test 500 --novel 500 --seed $(SEED)
	$(PY) -m captioner evaluate --data data/scenes --teacher models/teacher --student models/student
	$(PY) -m perception evaluate --out reports/real_photos.json

demo: install model-repository  ## run the whole pipeline end to end on generated images, then stop what it started
	$(PY) -m localinfra.demo

bench: install model-repository  ## the pipeline side by side with its models alone and a plain transformers loop: bursts, open-loop latency, scale-out, CPU per component; reports/bench.json and plots
	$(PY) -m localinfra.bench

up: install model-repository  ## install (first run) and start Kafka, S3, Triton and the four services, and leave them running
	$(PY) -m localinfra up

status: install  ## show whether each local server and service is healthy
	$(PY) -m localinfra status

down: install  ## stop the services and the local servers
	$(PY) -m localinfra down

# The console's browser tests drive Debian's chromium (Playwright downloads no browser); Nanum draws the Korean captions.
CHROMIUM := /usr/bin/chromium
BROWSER_FONT := /usr/share/fonts/truetype/nanum

chromium:  ## install Debian's chromium and a Korean font for the console's browser tests (apt-get, once)
	@if [ ! -x $(CHROMIUM) ] || [ ! -d $(BROWSER_FONT) ]; then \
		echo "chromium: installing Debian's chromium and fonts-nanum (first run)..."; \
		sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq chromium fonts-nanum >/dev/null \
		&& echo "chromium: $$($(CHROMIUM) --version)"; \
	fi

test: install model-repository chromium  ## run every test but the long hostile-input runs and the Kubernetes install; starts (and stops) the real servers it needs
	$(PY) -m pytest

screenshots: install model-repository chromium  ## run the console's browser tests and keep their screenshots in docs/screenshots/ (the README shows them)
	SCREENSHOTS_DIR=docs/screenshots $(PY) -m pytest tests/integration/test_console.py

test-unit: install model-repository  ## run only the tests that need no server
	$(PY) -m pytest -m "not integration and not hostile and not kube"

hostile: install model-repository  ## long hostile-input runs: schemathesis on both APIs, 25,000 mutated images in process, 1,200 uploaded
	$(PY) -m pytest -m hostile -s tests/unit/test_upload_fuzz.py tests/integration/test_hostile_input.py

kube-test: install  ## helm install --wait of helm/captioning into a local Kubernetes control plane (etcd, kube-apiserver, controller manager, scheduler, kwok nodes) with strict server-side validation: about 20 s; the first run builds the control plane (6-15 min on 2 cores)
	$(PY) -m pytest -m kube -s tests/kube

chaos: install model-repository  ## fault injection on a pipeline of its own (3 brokers, 2 caption replicas): 580 items (over 500 uploads), 24 service SIGKILLs, a broker, MinIO and Triton restarted; reports/chaos.json
	$(PY) -m localinfra.chaos --seed $(SEED)

proto-check: install  ## fail when the schemas break the published lock
	$(PY) -m captioning_common.events.compat

proto-lock: install  ## record compatible schema additions in protos/published.lock.json
	$(PY) -m captioning_common.events.compat --write

settings-table: install  ## print the README table of every setting
	$(PY) -m captioning_common.settings_doc

serving-env: install model-repository  ## build .local/serving-venv (the services image's Python: no torch) and .local/triton-venv, check their imports, write reports/serving_env.json with their sizes
	$(PY) -m localinfra.serving_env

chart-test: install  ## helm lint --strict, helm template over helm/captioning/ci/, kubeconform -strict and the chart's unit tests (tests/chart, about 10 s; first run builds helm and kubeconform, 2-3 min)
	$(PY) -m pytest tests/chart

chart-readme: install  ## regenerate the parameter table of helm/captioning/README.md from the @param lines of values.yaml
	$(PY) -m localinfra.chart_tools readme

clean:  ## stop servers and remove the venv, generated code, exports and local state
	if [ -x $(PY) ]; then $(PY) -m localinfra down; fi
	rm -rf $(VENV) libs/captioning_events .local $(MODEL_VERSION_DIR)/student $(MODEL_VERSION_DIR)/student-int8 $(PROFANITY)
