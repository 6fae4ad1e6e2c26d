# attnscope's two entry points: `make run` (the explorer app on the default model and corpus) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv run test bench bench-views bench-corpus bench-app bench-atlas clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt torch==2.13.0
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

# The main job: the explorer app on the default model and corpus (UD English EWT, indexed on first start).
# EWT is read from ../shared/data when it is there, otherwise downloaded once into the cache.
EWT_DIR := $(abspath $(wildcard ../shared/data/ud_english_ewt))
PORT ?= 8000
run: venv
	ATTNSCOPE_EWT_DIR="$${ATTNSCOPE_EWT_DIR:-$(EWT_DIR)}" $(VENV)/bin/attnscope serve --port $(PORT)

# The browser tests drive Debian's Chromium (Playwright cannot download browsers here).
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium

# pytest exits 5 when it collects nothing: that is a failure here, not a pass.
test: venv $(CHROMIUM)
	$(PY) -m pytest -q tests

bench: venv
	$(PY) bench/capture.py

# P1: attnscope's views against BertViz 1.4.1 in headless Chromium (npm fetches BertViz's JS once).
bench-views: venv $(CHROMIUM)
	$(PY) bench/views.py

# P3-P5: indexing throughput, bytes per token, recall@50 and search latency on UD English EWT.
bench-corpus: venv
	$(PY) bench/corpus.py

# P6 and R2: the explorer app in Chromium and the server under 16 concurrent clients.
bench-app: venv $(CHROMIUM)
	$(PY) bench/app.py

# The head atlas on UD English EWT against the raw batched forward.
bench-atlas: venv
	$(PY) bench/atlas.py

clean:
	rm -rf $(VENV) build src/*.egg-info
