# The README's commands. `make run` and `make test` install what they need
# from Debian packages first; plain `make` only checks.
#   make          build everything (installs nothing)
#   make run      build and run the main job (cpex on the example gateway)
#   make test     build and run every test
#   make test-asan / make test-tsan   the same under sanitizers
#   make bench    build and run the benchmarks (cpex_bench, then cpex_bench_state)
#   make bench-callgrind   instructions per invoke of every bench case (JSON)
#   make bench-serve   requests/s and latency of `cpex serve` under wrk
#   make fuzz     build the libFuzzer targets and run each FUZZ_SECONDS (default 30)
#   make fuzz-build   only build them (clang; build-fuzz)
#   make format   reformat the C files with .clang-format (the test_format test checks)
BUILD ?= build
JOBS ?= 2
CMAKE_FLAGS ?=

.PHONY: all build deps run test test-asan test-tsan bench bench-callgrind bench-serve install \
        clean fuzz fuzz-build format

# `make` installs nothing: with a package missing it stops and prints the
# apt-get line. The README's two commands (run, test) install what they need.
all:
	@scripts/deps.sh --check build
	@$(MAKE) --no-print-directory build

build:
	cmake -S . -B $(BUILD) -DCPEX_WERROR=ON -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

deps:
	@scripts/deps.sh test

# The example requests hold one malformed line on purpose, so `cpex run`
# exits 1 after reporting it; `cpex check` first makes sure the gateway
# itself loads, so a real failure still fails this target.
run:
	@scripts/deps.sh build
	@$(MAKE) --no-print-directory build
	$(BUILD)/cpex check examples/gateway.yaml
	$(BUILD)/cpex run examples/gateway.yaml --input examples/requests.jsonl; \
	  rc=$$?; if [ $$rc -gt 1 ]; then exit $$rc; fi

test: deps
	@$(MAKE) --no-print-directory build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-asan: deps
	@scripts/deps.sh sanitize
	cmake -S . -B build-asan -DCPEX_WERROR=ON -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCPEX_SANITIZE=address,undefined >/dev/null
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j $(JOBS)

test-tsan: deps
	@scripts/deps.sh sanitize
	cmake -S . -B build-tsan -DCPEX_WERROR=ON -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCPEX_SANITIZE=thread >/dev/null
	cmake --build build-tsan -j $(JOBS)
	cd build-tsan && ctest --output-on-failure -j $(JOBS) -L 'core|e2e|serve|util'

# Fuzzing (docs/testing.md): fuzz/run.sh builds build-fuzz with clang and
# -fsanitize=fuzzer,address,undefined; a crash fails the target and leaves
# the input in build-fuzz/artifacts/<target>/. Longer: make fuzz FUZZ_SECONDS=3600
FUZZ_SECONDS ?= 30
FUZZ_TARGETS ?= kind config request manifest reply

fuzz-build:
	fuzz/run.sh --build-only

fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do fuzz/run.sh $$t $(FUZZ_SECONDS) || exit 1; done

bench: deps
	@$(MAKE) --no-print-directory build
	$(BUILD)/cpex_bench
	$(BUILD)/cpex_bench_routing
	$(BUILD)/cpex_bench_state
	$(BUILD)/cpex_bench_isolation
	$(BUILD)/cpex_bench_observe

# Every bench case under callgrind at N and 2N iterations (bench/callgrind.sh):
# instructions per invoke, stable on a loaded machine; prints the JSON
# (the shape of cpex_bench --json) and keeps it in $(BUILD)/bench-callgrind.json.
bench-callgrind: deps
	@$(MAKE) --no-print-directory build
	bench/callgrind.sh --build $(BUILD) --jobs $(JOBS)

# `cpex serve` under load (docs/performance.md): wrk against /v1/invoke,
# /v1/authz and the null endpoint beside them. BENCH_SECONDS (10) per run.
bench-serve:
	@scripts/deps.sh build
	@scripts/deps.sh bench-serve
	@$(MAKE) --no-print-directory build
	bench/serve/bench_serve.sh $(BUILD)

install: all
	cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) build-asan build-tsan

format:
	@scripts/format.sh
