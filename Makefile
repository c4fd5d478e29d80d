# internimage-mm: the README's commands.
#   make test        environment (first run ~25 min here, then seconds) + lint + the CI test suite
#   make lint        ruff (settings in pyproject.toml)
#   make test-slow   learning runs (marked `slow`)
#   make bench-op    DCNv3 operator benchmark
#   make gpu-check   on a bare CUDA machine (torch + nvcc, nothing else): build ops_dcnv3 with its
#                    CUDA kernels, run the operator tests and the CUDA benchmark, print a report
#                    (without a GPU: the CPU part; needs no .venv)
#   make demo        synthetic COCO -> Mask R-CNN + tiny InternImage on the CPU (~4.5 min) -> COCO
#                    metrics and drawn predictions in work_dirs/demo
# The environment lives in .venv. Every install is constrained by requirements/constraints.txt,
# and torch is installed first from its pinned CPU wheel, so pip never resolves a CUDA torch.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
STAMPS := $(VENV)/.stamps
CONSTRAINTS := -c requirements/constraints.txt
MAX_JOBS ?= 2
PYTEST_ARGS ?=
# Set (e.g. in docker/Dockerfile) where torch is meant to come from PyPI with CUDA.
ALLOW_CUDA_TORCH ?=

OPS_SOURCES := ops_dcnv3/setup.py $(wildcard ops_dcnv3/csrc/*.cpp ops_dcnv3/csrc/*.h \
	ops_dcnv3/csrc/*/*.cpp ops_dcnv3/csrc/*/*.h ops_dcnv3/csrc/*/*.cu)

.PHONY: env ops lint test test-slow test-gpu gpu-check bench-op demo lock clean-ops

env: $(STAMPS)/project

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMPS)/build: requirements/build.txt | $(BIN)/python
	$(PIP) install -q -U pip
	$(PIP) install -q -r requirements/build.txt
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/torch: requirements/torch.txt $(STAMPS)/build
	$(PIP) install -q $(CONSTRAINTS) -r requirements/torch.txt
	@touch $@

# onedl-mmcv compiles its C++ ops against the installed torch (~25 min on 2 cores the first
# time; pip caches the wheel). torchvision is a CUDA build: --no-deps, see internimage_mm/compat.py.
$(STAMPS)/mm: requirements/mm.txt requirements/mmcv.txt requirements/tests.txt \
		requirements/torchvision.txt requirements/constraints.txt $(STAMPS)/torch
	$(PIP) install -q $(CONSTRAINTS) -r requirements/mm.txt -r requirements/tests.txt
	MAX_JOBS=$(MAX_JOBS) $(PIP) install --no-build-isolation --no-deps $(CONSTRAINTS) -r requirements/mmcv.txt
	$(PIP) install -q --no-deps $(CONSTRAINTS) -r requirements/torchvision.txt
	@if [ -z "$(ALLOW_CUDA_TORCH)" ] && $(PIP) list 2>/dev/null | grep -i '^nvidia-'; then \
		echo 'error: a CUDA torch dependency was installed (nvidia-* above)'; exit 1; fi
	@touch $@

# The extension is built in place (editable, 'compat' mode: a path entry, no import hook) and
# rebuilt incrementally by ninja when a source changes.
$(STAMPS)/ops: $(OPS_SOURCES) $(STAMPS)/torch
	@test -f $(STAMPS)/ops-installed || { \
		$(PIP) install -q --no-build-isolation --no-deps --config-settings editable_mode=compat -e ops_dcnv3 \
		&& touch $(STAMPS)/ops-installed; }
	cd ops_dcnv3 && MAX_JOBS=$(MAX_JOBS) ../$(BIN)/python setup.py -q build_ext --inplace
	@touch $@

ops: $(STAMPS)/ops

$(STAMPS)/project: pyproject.toml $(STAMPS)/mm $(STAMPS)/ops
	$(PIP) install -q --no-build-isolation --no-deps -e .
	@touch $@

lint: env
	$(BIN)/ruff check .

test: env lint
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS) tests

test-slow: env
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS) tests

test-gpu: env
	$(BIN)/python -m pytest -m gpu $(PYTEST_ARGS) tests

bench-op: env
	$(BIN)/python tools/analysis_tools/benchmark_dcnv3.py

# No dependency on `env`: a GPU machine has its own torch and no package registry. The .venv's
# Python is used where one exists, else python3.
GPU_CHECK_PYTHON ?= $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON))
gpu-check:
	$(GPU_CHECK_PYTHON) tools/misc/gpu_check.py $(GPU_CHECK_ARGS)

# Detection demo on the CPU: generate data/synthetic_coco (once), train Mask R-CNN with a tiny
# InternImage from scratch (600 iterations, validated every 200), evaluate the last checkpoint
# (COCO bbox/segm table) and draw its predictions on the val images into work_dirs/demo/vis.
DEMO_CONFIG := configs/detection/mask-rcnn_internimage-tiny_fpn_1xb4-600iter_synthetic.py
DEMO_DIR    := work_dirs/demo

demo: env
	@test -f data/synthetic_coco/annotations/instances_val2017.json \
		|| $(BIN)/python tools/misc/make_synthetic_coco.py data/synthetic_coco
	PYTHONUNBUFFERED=1 $(BIN)/python tools/train.py $(DEMO_CONFIG) --work-dir $(DEMO_DIR)
	PYTHONUNBUFFERED=1 $(BIN)/python tools/test.py $(DEMO_CONFIG) "$$(cat $(DEMO_DIR)/last_checkpoint)" \
		--work-dir $(DEMO_DIR)/test --show-dir $(DEMO_DIR)/vis
	@echo "demo: predictions drawn in $(DEMO_DIR)/vis, logs and checkpoint in $(DEMO_DIR)"

# Re-pin requirements/constraints.txt from the current environment.
lock: env
	{ sed -n '1,2p' requirements/constraints.txt; echo 'torch==2.13.0'; echo 'torchvision==0.28.0'; \
	  $(PIP) freeze --exclude-editable | grep -v -i -E '^(torch|torchvision|onedl-|ops-dcnv3|internimage)'; \
	} > requirements/constraints.txt.new && mv requirements/constraints.txt.new requirements/constraints.txt

clean-ops:
	rm -rf ops_dcnv3/build ops_dcnv3/ops_dcnv3/_C*.so $(STAMPS)/ops
