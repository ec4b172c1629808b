# The two commands of the README:  `make run`  (chat page)  and  `make test`.
# Both install what they need into .venv/ and skip what is already current.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
# torch comes from the CPU wheel on disk; without it a multi-GB CUDA build is pulled.
FIND_LINKS := --find-links /opt/wheels
# llama.cpp is built for this CPU (-march=native) minus AMX: these VMs report
# AMX tiles but do not enable them, and ggml's AMX kernels die with SIGILL.
NO_AMX := -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=ON -DCMAKE_C_FLAGS='$(NO_AMX)' -DCMAKE_CXX_FLAGS='$(NO_AMX)'
LLAMA := llama-cpp-python[server]==0.3.36
# cmake prints each step as its whole compiler command (~1.5 kB); show "[17/193] quants.c.o".
SHORT_STEP := -e 's/^\s*(\[ *[0-9]+\/[0-9]+\]) .* -o ([^ ]*\/)?([^ \/]+).*/\1 \3/' \
	-e 's/^\s*(\[ *[0-9]+\/[0-9]+\]) (.{0,90}).*/\1 \2/'

.PHONY: run test unit install install-test models lint bench eval clean-index

run: install models
	$(VENV)/bin/rag ui

test: install-test models
	$(VENV)/bin/ruff check rag ui evals tests benchmarks
	$(VENV)/bin/python -m pytest -q

# The fast suite alone (fakes only, no model): seconds.
unit: install-test
	$(VENV)/bin/python -m pytest -q tests/unit

$(VENV)/bin/python:
	python3 -m venv $(VENV)

$(VENV)/.llama: | $(VENV)/bin/python
	@echo ">> Building llama-cpp-python from source (first run only, ~5-7 min on 2 cores); cmake progress follows."
	set -o pipefail; CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PY) -m pip install -v "$(LLAMA)" 2>&1 \
		| tee $(VENV)/llama-build.log \
		| { grep --line-buffered -E '^\s*\[ *[0-9]+(%|/[0-9]+)\]|Successfully|already satisfied|ERROR|error:|CMake Error' || true; } \
		| sed -u -E $(SHORT_STEP) \
		|| { echo "!! Building llama-cpp-python failed; its last lines follow (whole log: $(VENV)/llama-build.log)."; \
		     tail -n 30 $(VENV)/llama-build.log; exit 1; }
	touch $@

# Bytecode is compiled at install: where PYTHONDONTWRITEBYTECODE is set (CI, containers),
# every start would otherwise compile ~3,600 modules again (10 s of a cold `rag ask`).
COMPILE := --compile-bytecode

$(VENV)/.installed: pyproject.toml Makefile $(VENV)/.llama
	$(PY) -m pip install -q uv
	$(UV) pip install --python $(PY) $(FIND_LINKS) $(COMPILE) -e ".[llamacpp,ui,eval,milvus]"
	$(PY) -m compileall -q rag ui
	touch $@

install: $(VENV)/.installed

$(VENV)/.installed-test: $(VENV)/.installed
	$(UV) pip install --python $(PY) $(FIND_LINKS) $(COMPILE) -e ".[llamacpp,ui,eval,milvus,test]"
	command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium)
	touch $@

install-test: $(VENV)/.installed-test

models: install
	$(VENV)/bin/rag setup

lint:
	$(VENV)/bin/ruff check rag ui evals tests benchmarks

bench: install-test models
	$(PY) benchmarks/retrieval_bench.py
	$(PY) benchmarks/answer_bench.py
	$(PY) benchmarks/ui_bench.py

eval: install models
	$(VENV)/bin/rag eval all --hard-negatives
	$(VENV)/bin/rag eval article benchmarks/data/article_unanswerable.jsonl --results results/unanswerable
