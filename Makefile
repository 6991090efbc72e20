# make demo : create/update .venv, then train and evaluate the tiny model on the generated synthetic-motion set,
#             export it to ONNX (checked against PyTorch) and recognise a generated video with ONNX Runtime.
# make test : create/update .venv with everything the tests need, check the import boundaries, lint and format
#             (make lint), build the docs site strictly (make docs), then run the whole suite.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip

# PyTorch pins that install from the local wheel cache on the development machines.
ifeq ($(shell uname -m),aarch64)
TORCH_PINS ?= torch==2.9.1 torchvision==0.24.1
else
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1
endif

REPORT := build/test-report.xml

.PHONY: demo test lint docs venv edge-venv clean

$(VENV)/.created:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	touch $@

$(VENV)/.train: $(VENV)/.created pyproject.toml
	$(PIP) install --quiet $(TORCH_PINS)
	$(PIP) install --quiet -e '.[train]'
	touch $@

$(VENV)/.demo: $(VENV)/.train pyproject.toml
	$(PIP) install --quiet -e '.[train,export,runtime,gui]'
	touch $@

$(VENV)/.test: $(VENV)/.train pyproject.toml
	$(PIP) install --quiet -e '.[train,export,runtime,rtx,gui,test]'
	touch $@

venv: $(VENV)/.test

# The edge box: the wheel with only [runtime,gui,rtx] (no torch, no onnx), rebuilt when the wheel's inputs change.
EDGE := build/edge-venv
EDGE_INPUTS := pyproject.toml $(shell git ls-files stop_train stop_export stop_gui models 2>/dev/null)

$(EDGE)/.built: $(VENV)/.test $(EDGE_INPUTS)
	rm -rf $(EDGE) build/edge-wheel
	$(PIP) wheel --quiet --no-deps --no-build-isolation -w build/edge-wheel .
	$(PYTHON) -m venv $(EDGE)
	$(EDGE)/bin/python -m pip install --quiet --disable-pip-version-check "$$(ls build/edge-wheel/stop_toolkit-*.whl)[runtime,gui,rtx]"
	touch $@

edge-venv: $(EDGE)/.built

ifndef DEMO_RUN
# expanded once, so every step of the demo uses the same run
DEMO_RUN := runs/demo-$(shell date +%Y%m%d-%H%M%S)
endif

DEMO_VIDEO := runs/.synthetic-motion/UCF-101/MovingLeft/v_MovingLeft_g01_c01.avi

demo: $(VENV)/.demo
	$(PY) -m stop_train.demo --preset tiny
	$(PY) -m stop_train.cli --dataset synthetic-motion --preset tiny --pretrained none --epochs 18 \
		--batch-size 8 --lr 3e-4 --workers 1 --decay-exclude bias-norm-prompt --run-dir $(DEMO_RUN)
	$(VENV)/bin/stop-export $(DEMO_RUN) --check
	$(VENV)/bin/stop-recognize $(DEMO_RUN)/export/model.onnx --source $(DEMO_VIDEO) --protocol eval
	$(VENV)/bin/stop-recognize $(DEMO_RUN)/export/model.onnx --source $(DEMO_VIDEO) --predict-every 0.1

# the boundaries (import-linter contracts in pyproject.toml), lint and format, then the suite
lint: $(VENV)/.test
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# the docs site (mkdocs.yml; strict: a broken link, anchor or a page left out of the navigation fails)
docs: $(VENV)/.test
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

test: lint docs
	@mkdir -p build
	$(PY) -m pytest --junitxml=$(REPORT) $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build
