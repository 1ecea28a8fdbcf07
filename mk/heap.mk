# Heap tracking (heap issue): the LD_PRELOAD shim libperfopt-heap.so, the programs its tests run
# under it and the bench's workload.
#
# The shim links only libc, libdl, pthread and libunwind, is never built with a sanitizer (ASan
# and TSan replace malloc themselves and must come first in the process; an instrumented program
# cannot take a second malloc), and keeps frame pointers (its stack walk starts in its own frames).
# The test children and the workload are plain programs for the same reason: under `make asan` /
# `make tsan` the test binary and libperfopt are instrumented, the processes traced are not.
HEAP_SHIM := $(BUILD)/libperfopt-heap.so
HEAP_SHIM_SRC := $(sort $(wildcard heap/*.c))
HEAP_SHIM_OBJ := $(HEAP_SHIM_SRC:%.c=$(BUILD)/obj/%.o)
HEAP_PLAIN_CFLAGS := -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) -Isrc -pthread
HEAP_SHIM_CFLAGS := $(HEAP_PLAIN_CFLAGS) -fPIC -fvisibility=hidden -fno-omit-frame-pointer \
  -ftls-model=initial-exec -fno-stack-protector -fno-plt

$(BUILD)/obj/heap/%.o: heap/%.c heap/shim.h src/base/heap_format.h
	@mkdir -p $(dir $@)
	$(CC) $(HEAP_SHIM_CFLAGS) -MMD -MP -c $< -o $@

$(HEAP_SHIM): $(HEAP_SHIM_OBJ)
	$(CC) -shared -Wl,-soname,libperfopt-heap.so -Wl,-z,now -o $@ $^ -lunwind -ldl -lpthread

lib: $(HEAP_SHIM)

# Children for tests/test_heap.c: built with frame pointers, plus one without (libunwind's path).
HEAP_CHILD_SRC := $(sort $(wildcard tests/heap/*.c))
HEAP_CHILDREN := $(HEAP_CHILD_SRC:tests/heap/%.c=$(BUILD)/tests/heap/%) \
  $(BUILD)/tests/heap/child_pattern_nofp

$(BUILD)/tests/heap/%: tests/heap/%.c
	@mkdir -p $(dir $@)
	$(CC) $(HEAP_PLAIN_CFLAGS) -O1 -fno-omit-frame-pointer -fno-inline -o $@ $< -ldl

$(BUILD)/tests/heap/child_pattern_nofp: tests/heap/child_pattern.c
	@mkdir -p $(dir $@)
	$(CC) $(HEAP_PLAIN_CFLAGS) -O1 -fomit-frame-pointer -fno-inline -o $@ $< -ldl

TEST_DEPS += $(HEAP_SHIM) $(HEAP_CHILDREN)

# The bench's workload, with frame pointers (the fast path) and without (libunwind for every
# recorded stack), never instrumented.
HEAP_WORKLOADS := $(BUILD)/bench/heap_workload $(BUILD)/bench/heap_workload_nofp
$(BUILD)/bench/heap_workload: bench/heap_workload.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -g $(WARN) -fno-omit-frame-pointer -o $@ $<
$(BUILD)/bench/heap_workload_nofp: bench/heap_workload.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -g $(WARN) -fomit-frame-pointer -o $@ $<
BENCH_DEPS += $(HEAP_SHIM) $(HEAP_WORKLOADS)

.PHONY: install-heap
install-heap: $(HEAP_SHIM)
	install -d $(DESTDIR)$(PREFIX)/lib
	install -m 755 $(HEAP_SHIM) $(DESTDIR)$(PREFIX)/lib/libperfopt-heap.so
install: install-heap
