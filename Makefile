# memtriage top-level Makefile: thin wrapper over CMake.
#   make deps    install missing Debian packages (root), or print the apt-get line
#   make build   configure and build into build/
#   make demo    deps + build + run the main job on the built-in workload
#   make test    deps + build + unit and end-to-end tests
#   make bench   overhead and analysis-speed benchmarks (bench/RESULTS.md)
#   make install PREFIX=/usr/local

BUILD  ?= build
PREFIX ?= /usr/local
JOBS   ?= $(shell nproc 2>/dev/null || echo 2)

# Build and test dependencies, Debian 12 package names.
DEPS = build-essential cmake pkg-config libzstd-dev libunwind-dev libdw-dev \
       libelf-dev libiberty-dev libcmocka-dev python3 git \
       libprotobuf-c-dev protobuf-c-compiler zlib1g-dev
# Used by tests and benchmarks: peers and alternative allocators.
TEST_DEPS = heaptrack valgrind libjemalloc2 libmimalloc2.0 golang-go prometheus python3-jsonschema \
            chromium chromium-driver python3-selenium fonts-dejavu-core

.PHONY: all deps build demo test bench install clean

all: build

deps:
	@missing=$$(for p in $(DEPS) $(TEST_DEPS); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
	    echo "memtriage: installing $$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else \
	    echo "memtriage: missing packages; run:"; \
	    echo "  sudo apt-get install -y $$missing"; exit 1; \
	fi

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS) -- --no-print-directory

demo: build
	./$(BUILD)/memtriage run --trim-probe -o $(BUILD)/demo.trace -- ./$(BUILD)/memtriage sim frontend
	./$(BUILD)/memtriage report --format html -o $(BUILD)/demo.html $(BUILD)/demo.trace
	@rc=0; /usr/bin/python3 tools/screenshot.py $(BUILD)/demo.html $(BUILD)/demo.png || rc=$$?; \
	if [ $$rc = 0 ]; then echo "memtriage: HTML report $(BUILD)/demo.html, its screenshot $(BUILD)/demo.png"; \
	elif [ $$rc = 77 ]; then echo "memtriage: HTML report $(BUILD)/demo.html (no screenshot: it needs chromium, chromium-driver and python3-selenium)"; \
	else echo "memtriage: HTML report $(BUILD)/demo.html (the screenshot failed, status $$rc)"; fi
	@echo
	@echo "memtriage: the same workload under four allocator configurations:"
	./$(BUILD)/memtriage compare --configs glibc,arena2,jemalloc,mimalloc -o $(BUILD)/demo-compare.json \
	    -- ./$(BUILD)/memtriage sim frontend

test: build
	cd $(BUILD) && ctest --output-on-failure -j 1

bench: build
	bash bench/run.sh

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD)
