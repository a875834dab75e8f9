# Parley's two commands: `make run` and `make test`. `make` alone only builds build/parley.
# Everything they need is installed by scripts/deps.sh (apt-get and npm), so a fresh
# Debian 12 machine needs nothing else.
JOBS ?= $(shell nproc)
BUILD := build
ASAN_BUILD := build/asan
DATA_DIR ?= ./var
LISTEN ?= 127.0.0.1:8080

.PHONY: all build run test unit e2e deps fuzz bench format lint clean

all: build

$(BUILD)/Makefile:
	@command -v cmake >/dev/null && pkg-config --exists libmicrohttpd jansson libsodium jemalloc || scripts/deps.sh build
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPARLEY_TESTS=OFF >/dev/null

build: $(BUILD)/Makefile
	@$(MAKE) --no-print-directory -C $(BUILD) -j$(JOBS) parley

run:
	@scripts/deps.sh build
	@$(MAKE) --no-print-directory build
	$(BUILD)/parley serve --listen $(LISTEN) --data-dir $(DATA_DIR)

$(ASAN_BUILD)/Makefile:
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DPARLEY_SANITIZE=ON -DPARLEY_WERROR=ON >/dev/null

asan: $(ASAN_BUILD)/Makefile
	@$(MAKE) --no-print-directory -C $(ASAN_BUILD) -j$(JOBS)

test:
	@scripts/deps.sh test
	@$(MAKE) --no-print-directory asan
	@PARLEY_BIN=$(CURDIR)/$(ASAN_BUILD)/parley UNIT_DIR=$(CURDIR)/$(ASAN_BUILD) tests/run.sh

unit: asan
	@UNIT_DIR=$(CURDIR)/$(ASAN_BUILD) tests/run.sh unit

e2e: asan
	@PARLEY_BIN=$(CURDIR)/$(ASAN_BUILD)/parley tests/run.sh e2e

fuzz:
	@scripts/deps.sh fuzz
	@fuzz/run.sh

bench:
	@scripts/deps.sh bench
	@$(MAKE) --no-print-directory build
	bench/http_baseline

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

lint: asan
	cppcheck --quiet --enable=warning,performance,portability --inline-suppr --error-exitcode=1 \
		--suppress=missingIncludeSystem --suppress=unknownMacro -Isrc src
	clang-tidy -p $(ASAN_BUILD) --quiet $$(git ls-files 'src/*.c') 2>/dev/null

clean:
	rm -rf build
