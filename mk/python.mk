# The Python package (python/, docs/python.md): perfopt._perfopt built for each interpreter with its
# own sysconfig (headers, extension suffix) into $(BUILD)/python/<name>/perfopt:
#   system  Debian's /usr/bin/python3, which sees python3-torch, -numpy and -matplotlib: required
#   path    the python3 on PATH (e.g. a pyenv build with its own headers): skipped with a warning
#           when it has no headers
# Sanitizer builds skip the package: CPython would need the sanitizer runtime preloaded.
SYSTEM_PYTHON ?= /usr/bin/python3
PATH_PYTHON ?= python3
PY_SOURCES := $(wildcard python/ext/*.c python/ext/*.h python/perfopt/*.py python/*.py) include/perfopt.h \
              scripts/build-python

ifeq ($(SAN),)
PY_BUILDS := $(BUILD)/python/system/.built $(BUILD)/python/path/.built
else
PY_BUILDS := $(BUILD)/python/.skipped
endif

.PHONY: python demo-python bench-python
all: python
python: $(PY_BUILDS)

$(BUILD)/python/system/.built: $(PY_SOURCES) $(LIB_A)
	@CC="$(CC)" OPT="$(OPT)" LIBS="$(LIB_LIBS)" scripts/build-python $(SYSTEM_PYTHON) $(BUILD)/python/system $(LIB_A)
	@touch $@
$(BUILD)/python/path/.built: $(PY_SOURCES) $(LIB_A)
	@CC="$(CC)" OPT="$(OPT)" LIBS="$(LIB_LIBS)" scripts/build-python $(PATH_PYTHON) $(BUILD)/python/path $(LIB_A) optional
	@mkdir -p $(dir $@) && touch $@
$(BUILD)/python/.skipped:
	@mkdir -p $(dir $@) && echo "sanitizer build: the Python package is not built" > $@

# The PyTorch progressive-training example, profiled, with its report and HTML.
demo-python: python
	@mkdir -p $(DEMO_DIR)/python
	PYTHONPATH=$(BUILD)/python/system $(SYSTEM_PYTHON) examples/progressive_training.py \
	  --out $(DEMO_DIR)/python

# Run by `make bench` after the C benchmarks, with each interpreter built.
bench-python: python
	@BUILD=$(BUILD) sh bench/bench_python.sh
BENCH_AFTER += bench-python
