# Platform probes (monitor issue): the fake NVML library the GPU tests load with dlopen.
FAKE_NVML := $(BUILD)/tests/fakes/libfake_nvml.so

$(FAKE_NVML): tests/fakes/fake_nvml.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) -fPIC -shared -fvisibility=hidden $(SAN) -o $@ $<

TEST_DEPS += $(FAKE_NVML)
BENCH_DEPS += $(FAKE_NVML)
