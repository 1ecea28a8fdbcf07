# Charts and the HTML report (visualization issue): the report fixture generator the browser test
# uses, and Chromium for that test (installed only when missing; PERFOPT_NO_BROWSER=1 skips it).
GEN_REPORT_FIXTURE := $(BUILD)/tools/gen_report_fixture

$(GEN_REPORT_FIXTURE): $(BUILD)/obj/tests/tools/gen_report_fixture.o \
                       $(BUILD)/obj/tests/support/report_fixture.o $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(APP_LDFLAGS) -o $@ $(filter %.o,$^) $(STATIC_LIBS)

.PHONY: viz-browser-deps
viz-browser-deps:
	@if [ -z "$(PERFOPT_NO_BROWSER)" ] && ! command -v chromium >/dev/null 2>&1; then \
	  echo "viz: chromium missing: scripts/install-deps --browser"; scripts/install-deps --browser; fi

TEST_DEPS += $(GEN_REPORT_FIXTURE) viz-browser-deps
