# The live endpoint (issue 11): the workload its tests and bench serve, and the tools those tests
# drive (Prometheus, the Pushgateway, wrk), installed when missing (PERFOPT_NO_SERVER_TOOLS=1
# skips; the tests then say SKIP).
LIVE_WORKLOAD := $(BUILD)/tools/live_workload

$(LIVE_WORKLOAD): $(BUILD)/obj/tests/tools/live_workload.o $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(APP_LDFLAGS) -o $@ $(filter %.o,$^) $(STATIC_LIBS)

# After the browser's install (mk/viz.mk): two apt-get runs at once under -j would fight over
# dpkg's lock.
.PHONY: server-test-deps
server-test-deps: viz-browser-deps
	@if [ -z "$(PERFOPT_NO_SERVER_TOOLS)" ] && { ! command -v prometheus >/dev/null 2>&1 || \
	  ! command -v prometheus-pushgateway >/dev/null 2>&1 || ! command -v wrk >/dev/null 2>&1; }; then \
	  echo "server: prometheus, prometheus-pushgateway or wrk missing: scripts/install-deps --server"; \
	  scripts/install-deps --server; fi

TEST_DEPS += $(LIVE_WORKLOAD) server-test-deps
BENCH_DEPS += $(LIVE_WORKLOAD) server-test-deps
