# vaenb: two commands on a fresh machine.
#   make run    set up if needed, then run the main job (train + evaluate on the embedded data)
#   make test   set up if needed, then run the whole fast test suite
# Everything else is listed by `make help`.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.vaenb-setup
# auto: CUDA build when an NVIDIA GPU is visible, else the CPU build; or force `cpu` / `cuda`.
TORCH  ?= auto
TORCH_RANGE := torch>=2.2,<2.14
PROFILE ?= quick

# torch spin-waits in OpenMP when another process uses a core (2-30x slower): keep it polite.
export OMP_WAIT_POLICY ?= PASSIVE
export MPLBACKEND ?= Agg
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help setup run smoke test test-slow test-all lint export check docs bench browser-deps gpu-check

help:
	@echo "make run        set up if needed; run the main job (PROFILE=$(PROFILE))"
	@echo "make test       set up if needed; run the fast test suite (notebooks + tests/)"
	@echo "make smoke      the smoke reproduction of every paper into .cache/smoke (part of CI)"
	@echo "make test-slow  the flagged slow tests (slow notebook cells, @pytest.mark.slow)"
	@echo "make lint       ruff on the exported module, the notebooks, tests and tools"
	@echo "make export     nbdev_export + nbdev_clean + README.md"
	@echo "make check      fail if the export or the notebooks are not clean"
	@echo "make docs       build the offline HTML docs into site/ (npm registry needed once for MathJax etc.)"
	@echo "make gpu-check  every paper run config builds and trains on the GPU, CPU/GPU loss agreement, img/s (small on a CPU)"
	@echo "make bench      run every benchmark script in tests/bench (prints tables; minutes)"
	@echo "make browser-deps  chromium + playwright + voila for the real-browser widget test (in test-slow)"
	@echo "TORCH=cpu|cuda|auto chooses the torch build at setup (default auto)"

setup: $(STAMP)

$(STAMP): pyproject.toml settings.ini .ci/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=23.2"
	@want="$(TORCH)"; \
	if [ "$$want" = auto ]; then \
	  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then want=cuda; else want=cpu; fi; \
	fi; \
	if $(BIN)/python -c "import torch" 2>/dev/null; then \
	  echo "setup: torch already installed ($$($(BIN)/python -c 'import torch;print(torch.__version__)'))"; \
	elif [ "$$want" = cuda ]; then \
	  echo "setup: installing the CUDA build of torch from the default index"; \
	  $(BIN)/python -m pip install "$(TORCH_RANGE)"; \
	else \
	  echo "setup: installing a CPU build of torch"; \
	  if $(BIN)/python -m pip install -q --no-index --no-deps "$(TORCH_RANGE)" 2>/dev/null; then \
	    v=$$($(BIN)/python -c "import importlib.metadata as m; print(m.version('torch'))"); \
	    $(BIN)/python -m pip install -q "torch==$$v"; \
	  else \
	    $(BIN)/python -m pip install "$(TORCH_RANGE)" --index-url https://download.pytorch.org/whl/cpu --extra-index-url https://pypi.org/simple; \
	  fi; \
	fi
	$(BIN)/python -m pip install -q -e ".[dev]" -c .ci/constraints.txt
	$(BIN)/python -m pip check
	$(BIN)/python -m ipykernel install --sys-prefix --name vaenb --display-name "vaenb (venv)" >/dev/null
	touch $(STAMP)

run: setup
	$(BIN)/vaenb reproduce --profile $(PROFILE)

smoke: setup
	rm -rf .cache/smoke
	$(BIN)/vaenb reproduce --profile smoke --results .cache/smoke/runs --reports .cache/smoke/reports

# Notebook cells run in forked workers: one OpenMP thread each keeps two workers from fighting.
test: setup
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 --dist load -q

test-slow: setup
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -m slow --override-ini addopts="-p no:cacheprovider"

test-all: test test-slow

lint: setup
	$(BIN)/ruff check vaenb tests tools nbs

export: setup
	$(BIN)/nbdev_export
	$(BIN)/nbdev_clean
	$(BIN)/vaenb readme

check: setup
	bash .ci/check-clean

docs: setup
	OMP_NUM_THREADS=1 $(BIN)/vaenb docs --out site

bench: setup
	@for b in tests/bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

gpu-check: setup
	$(BIN)/python tools/gpu_check.py

browser-deps: setup
	command -v chromium >/dev/null || (apt-get update && apt-get install -y --no-install-recommends chromium)
	$(BIN)/python -m pip install -q -e ".[dev,browser]" -c .ci/constraints.txt
