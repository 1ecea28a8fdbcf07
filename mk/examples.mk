# Examples with helpers: examples/lib/*.c are compiled like the examples (public header only) and
# linked into the examples that use them. Every other examples/*.c is one program on its own.
EXAMPLE_LIB_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(sort $(wildcard examples/lib/*.c)))

$(BUILD)/examples/progressive_training: $(BUILD)/obj/examples/progressive_training.o \
    $(EXAMPLE_LIB_OBJ) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(APP_LDFLAGS) -o $@ $< $(EXAMPLE_LIB_OBJ) $(STATIC_LIBS)
