# The two commands of the README: `make book` and `make test`. Both set up .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: book test sync clean

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -r requirements.txt
	$(BIN)/pip install --no-deps -e .
	touch $(STAMP)

book: $(STAMP)  ## execute every chapter in small mode and build _build/html/index.html
	$(BIN)/python book/build.py --size small

test: $(STAMP)  ## unit tests, every chapter in smoke mode, and a strict build of the book
	$(BIN)/python -m pytest

sync: $(STAMP)  ## write each chapter's paired .ipynb (no outputs) from its .py source
	$(BIN)/jupytext --update --to ipynb notebooks/[0-9][0-9]_*.py

clean:
	rm -rf _build
