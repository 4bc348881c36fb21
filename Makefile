# A thin wrapper: installs missing Debian packages, configures meson once, builds, and runs.
# The real build is meson's (meson.build); the real tests are meson's and pytest's.

BUILD  ?= build
# Debian's interpreter: the tests use Debian's python3-pykcs11 and python3-cryptography.
PYTHON ?= /usr/bin/python3
PYTEST_ARGS ?=

.PHONY: all deps build check unit integration demo bench clean sanitize valgrind fuzz fuzz-check

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

check: unit integration sanitize valgrind fuzz-check

# Sanitizers and valgrind (doc/security.md, "Sanitizers and valgrind"). `sanitize`: the whole
# suite, unit and integration, on an ASan + UBSan build (clang: its UBSan honours log_path); any
# report, in a test or in a process the tests started, fails the run. `valgrind`: the agent's
# integration tests with parafd and its token helper under memcheck: any error or definite
# leak fails the run.
SAN_BUILD ?= build-asan
SAN_CC ?= clang
SAN_ENV = ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:halt_on_error=1:print_stacktrace=1:detect_stack_use_after_return=1:check_initialization_order=1 \
	UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1 \
	LSAN_OPTIONS=suppressions=$(abspath test/sanitizers/lsan.supp):print_suppressions=0
VALGRIND_TESTS ?= test/test_agent.py test/test_policy.py test/test_faults.py test/test_hotplug.py

$(SAN_BUILD)/build.ninja:
	CC=$(SAN_CC) meson setup $(SAN_BUILD) -Db_sanitize=address,undefined -Db_lundef=false \
		-Dc_args=-fno-sanitize-recover=all -Dc_link_args=-fno-sanitize-recover=all

sanitize: deps $(SAN_BUILD)/build.ninja
	ninja -C $(SAN_BUILD)
	$(SAN_ENV) meson test -C $(SAN_BUILD) --print-errorlogs --timeout-multiplier 3
	$(SAN_ENV) PARAF_SANITIZE=1 PARAF_BUILD=$(abspath $(SAN_BUILD)) \
		$(PYTHON) -m pytest -v -rs -p no:cacheprovider $(PYTEST_ARGS) test

valgrind: build
	PARAF_VALGRIND=1 PARAF_BUILD=$(abspath $(BUILD)) \
		$(PYTHON) -m pytest -v -rs -p no:cacheprovider $(PYTEST_ARGS) $(VALGRIND_TESTS)

# Fuzzing (doc/security.md, "Fuzzing"): the libFuzzer targets of test/fuzz, built with clang,
# ASan and UBSan in $(FUZZ_BUILD). `fuzz-check`: the regression inputs, then FUZZ_CHECK_TIME
# seconds per target from the committed seed corpus (left unchanged); `fuzz`: FUZZ_TIME seconds
# per target, new inputs kept and merged in $(FUZZ_BUILD)/fuzz-corpus. A crash fails the run and
# its input is saved to test/fuzz/regressions/TARGET. FUZZ_TARGETS: a subset.
FUZZ_BUILD ?= build-fuzz
FUZZ_TIME ?= 600
FUZZ_CHECK_TIME ?= 60
FUZZ_TARGETS ?=

fuzz-check: deps
	FUZZ_BUILD=$(FUZZ_BUILD) sh scripts/fuzz.sh check $(FUZZ_CHECK_TIME) $(FUZZ_TARGETS)

fuzz: deps
	FUZZ_BUILD=$(FUZZ_BUILD) sh scripts/fuzz.sh run $(FUZZ_TIME) $(FUZZ_TARGETS)

demo: build
	PARAF_BUILD=$(abspath $(BUILD)) PYTHON=$(PYTHON) sh scripts/demo.sh

bench: build
	PARAF_BUILD=$(abspath $(BUILD)) $(PYTHON) test/bench.py

clean:
	rm -rf $(BUILD) $(SAN_BUILD) $(FUZZ_BUILD)
