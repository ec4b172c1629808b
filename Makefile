# The two commands of the README:  `make run`  (chat page)  and  `make test`.
# Both install what they need into .venv/ and skip what is already current.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
# torch comes from the CPU wheel on disk; without it a multi-GB CUDA build is pulled.
FIND_LINKS := --find-links /opt/wheels
# Portable x86-64 build of llama.cpp: -march=native would enable AMX tiles, which
# this kind of VM reports but does not allow (SIGILL at the first matmul).
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
	-DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
LLAMA := llama-cpp-python[server]==0.3.36

.PHONY: run test install install-test models lint bench eval clean-index

run: install models
	$(VENV)/bin/rag ui

test: install-test models
	$(VENV)/bin/ruff check rag ui tests benchmarks
	$(VENV)/bin/python -m pytest -q

$(VENV)/bin/python:
	python3 -m venv $(VENV)

$(VENV)/.llama: | $(VENV)/bin/python
	@echo ">> Building llama-cpp-python from source (first run only, ~5-7 min on 2 cores); cmake progress follows."
	set -o pipefail; CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PY) -m pip install -v --no-cache-dir "$(LLAMA)" 2>&1 \
		| grep --line-buffered -E '^\s*\[ *[0-9]+%\]|Successfully|ERROR|error:' 
	touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.llama
	$(PY) -m pip install -q uv
	$(UV) pip install --python $(PY) $(FIND_LINKS) -e ".[llamacpp,ui,eval]"
	touch $@

install: $(VENV)/.installed

$(VENV)/.installed-test: $(VENV)/.installed
	$(UV) pip install --python $(PY) $(FIND_LINKS) -e ".[llamacpp,ui,eval,test]"
	command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium)
	touch $@

install-test: $(VENV)/.installed-test

models: install
	$(VENV)/bin/rag setup

lint:
	$(VENV)/bin/ruff check rag ui tests benchmarks

bench: install models
	$(PY) benchmarks/retrieval_bench.py
	$(PY) benchmarks/answer_bench.py

eval: install models
	$(VENV)/bin/rag eval all
