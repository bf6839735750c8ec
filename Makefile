# The two commands of the README: `make book` and `make test`. Both set up .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: book test lab sync student publish browser clean

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -r requirements.txt
	$(BIN)/pip install --no-deps -e .
	touch $(STAMP)

book: $(STAMP)  ## execute every chapter in small mode and build _build/html/index.html
	$(BIN)/python book/build.py --size small

test: $(STAMP) browser  ## unit tests, every chapter in smoke and full-on-fixtures mode, a strict build, a browser check
	$(BIN)/python -m pytest

browser:  ## Debian's Chromium and ChromeDriver for the browser test, where they can be installed (else it is skipped)
	@{ command -v chromium || command -v google-chrome; } >/dev/null && command -v chromedriver >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; } || \
	  echo "Chromium could not be installed here: the browser test will be skipped."

lab: $(STAMP)  ## JupyterLab on the chapters' reader editions (_build/jupyter), with the book's outputs after `make book`
	$(BIN)/python book/reader.py
	$(BIN)/jupyter lab _build/jupyter

student: $(STAMP)  ## the nbgrader course of the chapters: _build/course (source/ for you, release/ for the students)
	$(BIN)/python book/student.py

publish: $(STAMP)  ## push the built site (_build/html) to origin's gh-pages branch, as the book's workflow does
	$(BIN)/python book/publish.py

sync: $(STAMP)  ## write each chapter's paired .ipynb (no outputs) from its .py source
	$(BIN)/jupytext --update --to ipynb notebooks/[0-9][0-9]_*.py

clean:
	rm -rf _build
