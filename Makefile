# perfopt: GNU make is the front door. See README.md and docs/architecture.md.
#
#   make            libperfopt.a, libperfopt.so (versioned soname), libperfopt-auto, perfopt, examples
#   make test       unit tests (cmocka) and CLI tests
#   make asan/tsan  the same suite under AddressSanitizer+UBSan / ThreadSanitizer
#   make bench      benchmarks (BENCH <name> <value> <unit> lines)
#   make demo       profiles a real workload and writes its report (make demo-viz: the chart example)
#   make demo-python  the PyTorch progressive-training example (python/, docs/python.md)
#   make install PREFIX=/usr/local DESTDIR=
#   make format / lint / fuzz / clean
#
# Objects go to $(BUILD) (default build/), so several builds (asan, tsan, a helper's own) can share
# one tree without stepping on each other.

BUILD ?= build
PREFIX ?= /usr/local
DESTDIR ?=
CC ?= cc
ifeq ($(origin CC),default)
CC := cc
endif

VERSION := 0.1.0
SOVERSION := 0

# Dependencies: scripts/install-deps installs whichever Debian packages are missing (nothing when
# all are there) and $(BUILD)/deps.mk records their pkg-config flags. Only goals that build read it,
# so `make clean`, `make format` or `make -n clean` never run apt-get.
NO_DEPS_GOALS := clean format uninstall help print-lib-src
ifneq ($(filter-out $(NO_DEPS_GOALS),$(or $(MAKECMDGOALS),all)),)
include $(BUILD)/deps.mk
endif
$(BUILD)/deps.mk: scripts/install-deps
	@mkdir -p $(BUILD)
	@scripts/install-deps || { echo "scripts/install-deps failed: see above" >&2; exit 1; }
	@{ echo "CJSON_CFLAGS := $$(pkg-config --cflags libcjson)"; \
	   echo "CJSON_LIBS := $$(pkg-config --libs libcjson)"; \
	   echo "CMOCKA_CFLAGS := $$(pkg-config --cflags cmocka)"; \
	   echo "CMOCKA_LIBS := $$(pkg-config --libs cmocka)"; \
	   echo "DW_CFLAGS := $$(pkg-config --cflags libdw libelf)"; \
	   echo "DW_LIBS := $$(pkg-config --libs libdw libelf)"; \
	   echo "MHD_CFLAGS := $$(pkg-config --cflags libmicrohttpd)"; \
	   echo "MHD_LIBS := $$(pkg-config --libs libmicrohttpd)"; } > $@.tmp && mv $@.tmp $@

WARN := -Wall -Wextra -Wshadow -Wconversion -Wstrict-prototypes -Wmissing-prototypes
OPT ?= -O2 -g
SAN ?=
CFLAGS_BASE := -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) -Iinclude -Isrc -pthread $(SAN)
# The command and the examples see the public header only.
PUBLIC_CFLAGS := -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) -Iinclude -pthread $(SAN)

LIB_CFLAGS := $(CFLAGS_BASE) -fPIC -fvisibility=hidden -DPERFOPT_BUILDING $(CJSON_CFLAGS) $(MHD_CFLAGS) \
              $(DW_CFLAGS)
LIB_LIBS := $(CJSON_LIBS) $(MHD_LIBS) $(DW_LIBS) -ldl -lm -lpthread
APP_CFLAGS := $(CFLAGS_BASE) $(CJSON_CFLAGS)
APP_LDFLAGS := $(SAN) -pthread -rdynamic

# ---- sources -------------------------------------------------------------------------------
LIB_SRC := $(sort $(filter-out src/auto/%,$(wildcard src/*.c src/*/*.c)))
AUTO_SRC := $(sort $(wildcard src/auto/*.c))
CLI_SRC := $(sort $(wildcard cli/*.c))
EXAMPLE_SRC := $(sort $(wildcard examples/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c))
TEST_SUPPORT_SRC := $(sort $(wildcard tests/support/*.c))
BENCH_SRC := $(sort $(wildcard bench/bench_*.c))
FUZZ_SRC := $(sort $(wildcard fuzz/fuzz_*.c))

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
LIB_TEST_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj-test/%.o)
AUTO_OBJ := $(AUTO_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_SUPPORT_OBJ := $(TEST_SUPPORT_SRC:%.c=$(BUILD)/obj/%.o)

LIB_A := $(BUILD)/libperfopt.a
# The test build of the library: test hooks and allocation-failure injection (PERFOPT_TESTING).
LIB_TEST_A := $(BUILD)/libperfopt-test.a
LIB_SO := $(BUILD)/libperfopt.so.$(VERSION)
AUTO_A := $(BUILD)/libperfopt-auto.a
AUTO_SO := $(BUILD)/libperfopt-auto.so.$(VERSION)
PERFOPT := $(BUILD)/perfopt
EXAMPLES := $(EXAMPLE_SRC:examples/%.c=$(BUILD)/examples/%)
TESTS := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
BENCHES := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

.PHONY: all lib test unit-tests cli-tests bench demo install uninstall asan tsan format lint fuzz \
        fuzz-smoke clean check-deps
.DEFAULT_GOAL := all

all: lib $(PERFOPT) $(EXAMPLES)
lib: $(LIB_A) $(LIB_SO) $(AUTO_A) $(AUTO_SO)

# Module-specific rules (fake NVML library, browser test, ...).
-include $(sort $(wildcard mk/*.mk))

# ---- compile -------------------------------------------------------------------------------
$(BUILD)/obj/src/%.o: src/%.c include/perfopt.h
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) -MMD -MP -c $< -o $@

# The auto-instrumentation runtime must never instrument itself.
$(BUILD)/obj/src/auto/%.o: src/auto/%.c include/perfopt.h
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) $(DW_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj-test/src/%.o: src/%.c include/perfopt.h
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) -DPERFOPT_TESTING -MMD -MP -c $< -o $@

$(BUILD)/obj/cli/%.o: cli/%.c include/perfopt.h
	@mkdir -p $(dir $@)
	$(CC) $(PUBLIC_CFLAGS) $(CJSON_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj/examples/%.o: examples/%.c include/perfopt.h
	@mkdir -p $(dir $@)
	$(CC) $(PUBLIC_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj/tests/%.o: tests/%.c include/perfopt.h
	@mkdir -p $(dir $@)
	$(CC) $(APP_CFLAGS) $(CMOCKA_CFLAGS) -DPERFOPT_TESTING -Itests -MMD -MP -c $< -o $@

$(BUILD)/obj/%.o: %.c include/perfopt.h
	@mkdir -p $(dir $@)
	$(CC) $(APP_CFLAGS) $(CMOCKA_CFLAGS) -Itests -MMD -MP -c $< -o $@

-include $(shell find $(BUILD)/obj $(BUILD)/obj-test -name '*.d' 2>/dev/null)

# ---- libraries -----------------------------------------------------------------------------
# The static library is one relocatable object, so a program that uses any part of it gets all of
# it, constructors included: PERFOPT_OUT then works however little of the API a program calls.
$(BUILD)/obj/libperfopt.o: $(LIB_OBJ)
	$(CC) -r -nostdlib -o $@ $^
$(BUILD)/obj-test/libperfopt-test.o: $(LIB_TEST_OBJ)
	$(CC) -r -nostdlib -o $@ $^

$(LIB_A): $(BUILD)/obj/libperfopt.o
	rm -f $@ && ar rcs $@ $^
$(LIB_TEST_A): $(BUILD)/obj-test/libperfopt-test.o
	rm -f $@ && ar rcs $@ $^

$(LIB_SO): $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,libperfopt.so.$(SOVERSION) $(SAN) -o $@ $^ $(LIB_LIBS)
	ln -sf libperfopt.so.$(VERSION) $(BUILD)/libperfopt.so.$(SOVERSION)
	ln -sf libperfopt.so.$(SOVERSION) $(BUILD)/libperfopt.so

$(AUTO_A): $(AUTO_OBJ)
	rm -f $@ && ar rcs $@ $^

$(AUTO_SO): $(AUTO_OBJ) $(LIB_SO)
	$(CC) -shared -Wl,-soname,libperfopt-auto.so.$(SOVERSION) $(SAN) -o $@ $(AUTO_OBJ) \
	  -L$(BUILD) -lperfopt $(DW_LIBS) $(LIB_LIBS)
	ln -sf libperfopt-auto.so.$(VERSION) $(BUILD)/libperfopt-auto.so.$(SOVERSION)
	ln -sf libperfopt-auto.so.$(SOVERSION) $(BUILD)/libperfopt-auto.so

# Programs link the static library so they run from the build tree without LD_LIBRARY_PATH.
STATIC_LIBS := $(LIB_A) $(LIB_LIBS)
TEST_LIBS := $(LIB_TEST_A) $(LIB_LIBS)

$(PERFOPT): $(CLI_OBJ) $(LIB_A)
	$(CC) $(APP_LDFLAGS) -o $@ $(CLI_OBJ) $(STATIC_LIBS)

$(BUILD)/examples/%: $(BUILD)/obj/examples/%.o $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(APP_LDFLAGS) -o $@ $< $(STATIC_LIBS)

# ---- tests ---------------------------------------------------------------------------------
$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(TEST_SUPPORT_OBJ) $(LIB_TEST_A)
	@mkdir -p $(dir $@)
	$(CC) $(APP_LDFLAGS) -o $@ $< $(TEST_SUPPORT_OBJ) $(TEST_LIBS) $(CMOCKA_LIBS)

# The auto-instrumentation test: compiled with -finstrument-functions, linked with libperfopt-auto.
AUTO_TEST := $(BUILD)/tests/test_auto
TESTS += $(AUTO_TEST)
$(AUTO_TEST): tests/auto/test_auto.c $(TEST_SUPPORT_OBJ) $(AUTO_A) $(LIB_TEST_A)
	@mkdir -p $(dir $@)
	$(CC) $(APP_CFLAGS) $(CMOCKA_CFLAGS) -DPERFOPT_TESTING -Itests -finstrument-functions -o $@ $< \
	  $(TEST_SUPPORT_OBJ) $(APP_LDFLAGS) $(AUTO_A) $(TEST_LIBS) $(DW_LIBS) $(CMOCKA_LIBS)

# Extra prerequisites tests need before they run (fake libraries, fixtures); mk/*.mk add to it.
TEST_DEPS ?=

# T=test_cache runs one test binary only.
T ?=
RUN_TESTS = $(if $(T),$(filter %/$(T),$(TESTS)),$(TESTS))
unit-tests: all $(RUN_TESTS) $(TEST_DEPS)
	@BUILD=$(BUILD) sh tests/run-tests.sh $(RUN_TESTS)

cli-tests: all $(TEST_DEPS)
	@BUILD=$(BUILD) sh tests/cli/run.sh

# One after the other, even under -j: the CLI tests drive terminals and time real programs.
test:
	@$(MAKE) --no-print-directory unit-tests
	@$(MAKE) --no-print-directory cli-tests

asan:
	$(MAKE) BUILD=build-asan OPT="-O1 -g" \
	  SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" test

tsan:
	$(MAKE) BUILD=build-tsan OPT="-O1 -g" SAN="-fsanitize=thread" PERFOPT_TSAN=1 test

# ---- benchmarks and demo ------------------------------------------------------------------
$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(APP_LDFLAGS) -o $@ $< $(STATIC_LIBS)

# The profiler bench also measures the auto-instrumentation probe.
$(BUILD)/bench/bench_profile: $(BUILD)/obj/bench/bench_profile.o $(AUTO_A) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(APP_LDFLAGS) -o $@ $< $(AUTO_A) $(STATIC_LIBS) $(DW_LIBS)

BENCH_DEPS ?=
# Benchmarks run one at a time after the C ones (mk/*.mk add their targets).
BENCH_AFTER ?=
bench: all $(BENCHES) $(BENCH_DEPS)
	@set -e; for b in $(BENCHES); do echo "# $$b"; BUILD=$(BUILD) $$b; done
	@set -e; for t in $(BENCH_AFTER); do $(MAKE) --no-print-directory $$t; done

DEMO_DIR ?= demo-out
demo: all
	@mkdir -p $(DEMO_DIR)
	BUILD=$(BUILD) sh scripts/demo.sh $(DEMO_DIR)
# the memory-optimized visualization example (README "Examples")
.PHONY: demo-viz
demo-viz: all
	$(BUILD)/examples/viz_optimization --out $(DEMO_DIR)/viz-c

# ---- install -------------------------------------------------------------------------------
# The loader cache must learn the new soname before an installed program can start: ldconfig runs
# when installing for real (DESTDIR empty). A PREFIX outside the loader's path still needs
# LD_LIBRARY_PATH or -Wl,-rpath (README "Building").
LDCONFIG ?= ldconfig
DOC_FILES := README.md docs/api.md docs/cli.md docs/formats.md docs/architecture.md
DOCDIR = $(PREFIX)/share/doc/perfopt
MANDIR = $(PREFIX)/share/man/man1
install: all
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin \
	  $(DESTDIR)$(MANDIR) $(DESTDIR)$(DOCDIR)
	install -m 644 include/perfopt.h $(DESTDIR)$(PREFIX)/include/perfopt.h
	install -m 644 $(LIB_A) $(AUTO_A) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(LIB_SO) $(AUTO_SO) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libperfopt.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libperfopt.so.$(SOVERSION)
	ln -sf libperfopt.so.$(SOVERSION) $(DESTDIR)$(PREFIX)/lib/libperfopt.so
	ln -sf libperfopt-auto.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libperfopt-auto.so.$(SOVERSION)
	ln -sf libperfopt-auto.so.$(SOVERSION) $(DESTDIR)$(PREFIX)/lib/libperfopt-auto.so
	install -m 755 $(PERFOPT) $(DESTDIR)$(PREFIX)/bin/perfopt
	for pc in perfopt perfopt-auto; do \
	  sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' $$pc.pc.in \
	    > $(DESTDIR)$(PREFIX)/lib/pkgconfig/$$pc.pc || exit 1; done
	sed -e 's|/usr/local/share/doc/perfopt|$(DOCDIR)|g' docs/perfopt.1 > $(DESTDIR)$(MANDIR)/perfopt.1
	install -m 644 $(DOC_FILES) $(DESTDIR)$(DOCDIR)/
	@if [ -z "$(DESTDIR)" ]; then \
	  echo "$(LDCONFIG)"; $(LDCONFIG) || echo "make install: $(LDCONFIG) failed: run it as root" \
	    "(or set LD_LIBRARY_PATH=$(PREFIX)/lib) before starting a program linked with -lperfopt" >&2; \
	fi

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/include/perfopt.h $(DESTDIR)$(PREFIX)/bin/perfopt \
	  $(DESTDIR)$(PREFIX)/lib/libperfopt* $(DESTDIR)$(PREFIX)/lib/pkgconfig/perfopt.pc \
	  $(DESTDIR)$(PREFIX)/lib/pkgconfig/perfopt-auto.pc $(DESTDIR)$(MANDIR)/perfopt.1
	rm -rf $(DESTDIR)$(DOCDIR)

# ---- quality -------------------------------------------------------------------------------
FORMAT_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
format:
	clang-format -i $(FORMAT_FILES)

lint: lib
	BUILD=$(BUILD) scripts/check-layers
	@# one clang-tidy per core, 8 files each (xargs fails when any of them does)
	printf '%s\n' $(LIB_SRC) $(CLI_SRC) | xargs -P$$(nproc) -n8 sh -c \
	  'clang-tidy --quiet "$$@" -- -std=c11 -D_GNU_SOURCE -Iinclude -Isrc $(CJSON_CFLAGS)' clang-tidy
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	  --suppress=missingIncludeSystem --suppress=nullPointerRedundantCheck:src/linux/probe.c \
	  --inline-suppr -Iinclude -Isrc src cli

# libFuzzer targets (clang): `make fuzz` builds them, `make fuzz-smoke` runs each briefly.
FUZZ_CC ?= clang
FUZZ_BUILD := build-fuzz
FUZZERS := $(FUZZ_SRC:fuzz/%.c=$(FUZZ_BUILD)/%)
fuzz: $(FUZZERS)
$(FUZZ_BUILD)/%: fuzz/%.c $(LIB_SRC) include/perfopt.h
	@mkdir -p $(FUZZ_BUILD)
	$(FUZZ_CC) -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc \
	  $(CJSON_CFLAGS) -DPERFOPT_BUILDING -o $@ $< $(LIB_SRC) $(LIB_LIBS)
# The escaping target includes cli/terminal.c.
$(FUZZ_BUILD)/fuzz_cli_escape: cli/terminal.c cli/cli.h
FUZZ_RUNS ?= 20000
fuzz-smoke: fuzz
	@set -e; for f in $(FUZZERS); do n=$$(basename $$f); mkdir -p fuzz/corpus/$$n fuzz/seeds/$$n; \
	  echo "# $$n"; $$f -runs=$(FUZZ_RUNS) -max_len=65536 fuzz/corpus/$$n fuzz/seeds/$$n >/dev/null 2>$(FUZZ_BUILD)/$$n.log \
	  || { tail -30 $(FUZZ_BUILD)/$$n.log; exit 1; }; done; echo "fuzz-smoke: all targets ran clean"

clean:
	rm -rf build build-asan build-tsan build-fuzz build-* demo-out

# For scripts/check-layers: the library's sources.
print-lib-src:
	@echo $(LIB_SRC)
