# A thin wrapper: installs missing Debian packages, configures meson once, builds, and runs.
# The real build is meson's (meson.build); the real tests are meson's and pytest's.

BUILD  ?= build
# Debian's interpreter: the tests use Debian's python3-pykcs11 and python3-cryptography.
PYTHON ?= /usr/bin/python3
PYTEST_ARGS ?=

.PHONY: all deps build check unit integration demo bench clean

all: build

deps:
	@sh scripts/install-deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

unit: build
	meson test -C $(BUILD) --print-errorlogs

integration: build
	PARAF_BUILD=$(abspath $(BUILD)) $(PYTHON) -m pytest -v -p no:cacheprovider $(PYTEST_ARGS) test

check: unit integration

demo: build
	PARAF_BUILD=$(abspath $(BUILD)) PYTHON=$(PYTHON) sh scripts/demo.sh

bench: build
	PARAF_BUILD=$(abspath $(BUILD)) $(PYTHON) test/bench.py

clean:
	rm -rf $(BUILD)
