# perfopt run / attach (run issue): the programs tests/cli/test_run.sh runs under perfopt. Plain
# programs (never instrumented: they stand for any user's program), and one linked with
# libperfopt whose processes each write an in-process report.
RUN_HELPERS := $(patsubst tests/run/%.c,$(BUILD)/tests/run/%,$(sort $(wildcard tests/run/*.c)))

$(BUILD)/tests/run/%: tests/run/%.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O1 -g $(WARN) -pthread -o $@ $<

$(BUILD)/tests/run/linked: tests/run/linked.c $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(PUBLIC_CFLAGS) $(APP_LDFLAGS) -o $@ $< $(STATIC_LIBS)

TEST_DEPS += $(RUN_HELPERS)

# bench_run's CPU-bound child, never instrumented.
$(BUILD)/bench/run_workload: bench/run_workload.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -g $(WARN) -pthread -o $@ $<
BENCH_DEPS += $(BUILD)/bench/run_workload $(PERFOPT)
