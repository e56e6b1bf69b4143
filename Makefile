# make demo  - set up and run the MNIST-style batch inference job end to end (local processes)
# make test  - set up and run every test (import contracts, then pytest)
# make bench - run the benchmarks (results go in bench/README.md by hand)

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# extras the test suite needs; each issue's services add theirs here
TEST_EXTRAS := dev,ray,azure,s3,ui,notebook

.PHONY: demo test bench setup clean

$(VENV)/.installed-%: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[$*]'
	touch $@

setup: $(VENV)/.installed-$(TEST_EXTRAS) node_modules/.package-lock.json /usr/bin/chromium /usr/bin/chromedriver

# headless Chromium and its driver for the dashboard's browser tests (tests/ui/), from Debian
/usr/bin/chromium /usr/bin/chromedriver &:
	apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver

# Azurite (Azure Blob emulator) for the storage tests and benchmarks, pinned by package-lock.json
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

demo: $(VENV)/.installed-demo
	$(PY) examples/mnist/demo.py

test: setup
	$(VENV)/bin/lint-imports
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

clean:
	rm -rf $(VENV) demo_data bench/_work node_modules
