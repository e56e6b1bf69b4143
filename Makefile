# make demo  - set up and run the MNIST-style batch inference job end to end (local processes)
# make test  - set up and run every test (import contracts, then pytest); needs Python 3.10+, npm
#              (Node.js 20+) and, while Chromium is not installed, root or sudo for apt-get:
#              `make prerequisites` says what is missing and how to get it
# make bench - run the benchmarks (results go in bench/README.md by hand)
# make docs  - build the documentation site into site/ (open site/index.html)

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# extras the test suite needs; each issue's services add theirs here
TEST_EXTRAS := dev,ray,azure,s3,ui,notebook,docs

.PHONY: demo test bench setup prerequisites clean docs

$(VENV)/.installed-%: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[$*]'
	touch $@

setup: prerequisites $(VENV)/.installed-$(TEST_EXTRAS) node_modules/.package-lock.json /usr/bin/chromium /usr/bin/chromedriver

# apt-get needs root: sudo when make runs as another user
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# What the tests need besides Python, checked before anything is installed, so a missing one is
# explained at once (with how to get it) instead of failing later as "npm: command not found".
# The tests never skip: the storage tests need Azurite (npm), the dashboard's browser tests
# Chromium (apt-get, as root).
prerequisites:
	@missing=0; \
	if ! command -v npm >/dev/null 2>&1; then missing=1; \
	  echo "make: npm is missing. The storage tests run Azurite (the Azure Blob emulator), an npm"; \
	  echo "      package that make installs with 'npm ci'. Install Node.js 20 or later with npm"; \
	  echo "      (Debian/Ubuntu: apt-get install nodejs npm; or https://nodejs.org), then run make again."; \
	fi; \
	if ! { [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; } && [ "$$(id -u)" != 0 ] \
	    && ! command -v sudo >/dev/null 2>&1; then missing=1; \
	  echo "make: Chromium is not installed and this user cannot install it: the dashboard's browser"; \
	  echo "      tests need /usr/bin/chromium and /usr/bin/chromedriver, which make installs with"; \
	  echo "      apt-get (chromium chromium-driver) as root. Run 'make setup' once as root, or ask"; \
	  echo "      an administrator to install those two packages, then run make again."; \
	fi; \
	exit $$missing

# headless Chromium and its driver for the dashboard's browser tests (tests/ui/), from Debian
/usr/bin/chromium /usr/bin/chromedriver &:
	$(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium chromium-driver

# Azurite (Azure Blob emulator) for the storage tests and benchmarks, pinned by package-lock.json
# to a version whose engines accept Node.js 20
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

demo: $(VENV)/.installed-demo
	$(PY) examples/mnist/demo.py

test: setup
	$(VENV)/bin/lint-imports
	$(MAKE) docs
	$(PY) -m pytest -q

bench: setup $(VENV)/.installed-bench
	$(PY) bench/bench_images.py
	$(PY) bench/bench_dispatch.py
	$(PY) bench/bench_listing.py
	$(PY) bench/bench_tabular.py
	$(PY) bench/bench_remote.py
	$(PY) bench/bench_ray.py
	$(PY) bench/bench_pipeline.py
	$(PY) bench/bench_ui.py

# warnings are errors (strict: true in mkdocs.yml): a renamed function, command or flag breaks
# the build (not --quiet: it hides the warnings, and then strict passes); NO_MKDOCS_2_WARNING
# silences Material's notice about MkDocs 2, printed on every build
docs: $(VENV)/.installed-$(TEST_EXTRAS)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

clean:
	rm -rf $(VENV) demo_data bench/_work node_modules site
