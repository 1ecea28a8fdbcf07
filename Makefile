# perfopt: GNU make is the front door. See README.md and docs/architecture.md.
#
#   make            libperfopt.a, libperfopt.so (versioned soname), libperfopt-auto, perfopt, examples
#   make test       unit tests (cmocka) and CLI tests
#   make asan/tsan  the same suite under AddressSanitizer+UBSan / ThreadSanitizer
#   make bench      benchmarks (BENCH <name> <value> <unit> lines)
#   make demo       profiles a real workload and writes its report
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

PKGS := cmocka libcjson libdw libelf libunwind

# Missing Debian packages are installed on first use (not for clean/format).
ifeq ($(filter clean format,$(MAKECMDGOALS)),)
ifneq ($(shell pkg-config --exists $(PKGS) 2>/dev/null && command -v rsvg-convert >/dev/null && \
               command -v tmux >/dev/null && command -v python3 >/dev/null && echo ok),ok)
$(info perfopt: installing missing dependencies with scripts/install-deps)
DEPS_RC := $(shell scripts/install-deps >&2; echo $$?)
ifneq ($(DEPS_RC),0)
$(error scripts/install-deps failed (exit $(DEPS_RC)); install: libcmocka-dev libcjson-dev libdw-dev libelf-dev pkg-config)
endif
endif
endif

WARN := -Wall -Wextra -Wshadow -Wconversion -Wstrict-prototypes -Wmissing-prototypes
OPT ?= -O2 -g
SAN ?=
CFLAGS_BASE := -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) -Iinclude -Isrc -pthread $(SAN)
CJSON_CFLAGS := $(shell pkg-config --cflags libcjson 2>/dev/null)
CJSON_LIBS := $(shell pkg-config --libs libcjson 2>/dev/null)
CMOCKA_CFLAGS := $(shell pkg-config --cflags cmocka 2>/dev/null)
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null)
DW_CFLAGS := $(shell pkg-config --cflags libdw libelf 2>/dev/null)
DW_LIBS := $(shell pkg-config --libs libdw libelf 2>/dev/null)

LIB_CFLAGS := $(CFLAGS_BASE) -fPIC -fvisibility=hidden -DPERFOPT_BUILDING $(CJSON_CFLAGS)
LIB_LIBS := $(CJSON_LIBS) $(DW_LIBS) -ldl -lm -lpthread
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
AUTO_OBJ := $(AUTO_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_SUPPORT_OBJ := $(TEST_SUPPORT_SRC:%.c=$(BUILD)/obj/%.o)

LIB_A := $(BUILD)/libperfopt.a
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

$(BUILD)/obj/%.o: %.c include/perfopt.h
	@mkdir -p $(dir $@)
	$(CC) $(APP_CFLAGS) $(CMOCKA_CFLAGS) -Itests -MMD -MP -c $< -o $@

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# ---- libraries -----------------------------------------------------------------------------
$(LIB_A): $(LIB_OBJ)
	@mkdir -p $(dir $@)
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

$(PERFOPT): $(CLI_OBJ) $(LIB_A)
	$(CC) $(APP_LDFLAGS) -o $@ $(CLI_OBJ) $(STATIC_LIBS)

$(BUILD)/examples/%: $(BUILD)/obj/examples/%.o $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(APP_LDFLAGS) -o $@ $< $(STATIC_LIBS)

# ---- tests ---------------------------------------------------------------------------------
$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(TEST_SUPPORT_OBJ) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(APP_LDFLAGS) -o $@ $< $(TEST_SUPPORT_OBJ) $(STATIC_LIBS) $(CMOCKA_LIBS)

# The auto-instrumentation test: compiled with -finstrument-functions, linked with libperfopt-auto.
AUTO_TEST := $(BUILD)/tests/test_auto
TESTS += $(AUTO_TEST)
$(AUTO_TEST): tests/auto/test_auto.c $(TEST_SUPPORT_OBJ) $(AUTO_A) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(APP_CFLAGS) $(CMOCKA_CFLAGS) -Itests -finstrument-functions -o $@ $< $(TEST_SUPPORT_OBJ) \
	  $(APP_LDFLAGS) $(AUTO_A) $(STATIC_LIBS) $(DW_LIBS) $(CMOCKA_LIBS)

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
bench: all $(BENCHES) $(BENCH_DEPS)
	@set -e; for b in $(BENCHES); do echo "# $$b"; BUILD=$(BUILD) $$b; done

DEMO_DIR ?= demo-out
demo: all
	@mkdir -p $(DEMO_DIR)
	BUILD=$(BUILD) sh scripts/demo.sh $(DEMO_DIR)

# ---- install -------------------------------------------------------------------------------
install: all
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 644 include/perfopt.h $(DESTDIR)$(PREFIX)/include/perfopt.h
	install -m 644 $(LIB_A) $(AUTO_A) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(LIB_SO) $(AUTO_SO) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libperfopt.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libperfopt.so.$(SOVERSION)
	ln -sf libperfopt.so.$(SOVERSION) $(DESTDIR)$(PREFIX)/lib/libperfopt.so
	ln -sf libperfopt-auto.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libperfopt-auto.so.$(SOVERSION)
	ln -sf libperfopt-auto.so.$(SOVERSION) $(DESTDIR)$(PREFIX)/lib/libperfopt-auto.so
	install -m 755 $(PERFOPT) $(DESTDIR)$(PREFIX)/bin/perfopt
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' perfopt.pc.in \
	  > $(DESTDIR)$(PREFIX)/lib/pkgconfig/perfopt.pc

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/include/perfopt.h $(DESTDIR)$(PREFIX)/bin/perfopt \
	  $(DESTDIR)$(PREFIX)/lib/libperfopt* $(DESTDIR)$(PREFIX)/lib/pkgconfig/perfopt.pc

# ---- quality -------------------------------------------------------------------------------
FORMAT_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
format:
	clang-format -i $(FORMAT_FILES)

lint:
	clang-tidy --quiet $(LIB_SRC) $(CLI_SRC) -- -std=c11 -D_GNU_SOURCE -Iinclude -Isrc $(CJSON_CFLAGS)
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
FUZZ_RUNS ?= 20000
fuzz-smoke: fuzz
	@set -e; for f in $(FUZZERS); do n=$$(basename $$f); mkdir -p fuzz/corpus/$$n fuzz/seeds/$$n; \
	  echo "# $$n"; $$f -runs=$(FUZZ_RUNS) -max_len=65536 fuzz/corpus/$$n fuzz/seeds/$$n >/dev/null 2>$(FUZZ_BUILD)/$$n.log \
	  || { tail -30 $(FUZZ_BUILD)/$$n.log; exit 1; }; done; echo "fuzz-smoke: all targets ran clean"

clean:
	rm -rf build build-asan build-tsan build-fuzz build-* demo-out
