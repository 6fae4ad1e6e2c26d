# attnscope's two entry points: `make run` (the main job on the default model) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv run test bench bench-views bench-corpus bench-atlas clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt torch==2.13.0
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

run: venv
	$(VENV)/bin/attnscope inspect "The girl ran to a local pub to escape the din of her city."

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

bench-atlas: venv
	$(PY) bench/atlas.py

clean:
	rm -rf $(VENV) build src/*.egg-info
