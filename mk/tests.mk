# Test infrastructure (tests issue): the CLI test of exported symbols (tests/cli/test_exports.sh)
# compares the shipped libraries with the test build, so the CLI tests need the latter too.
TEST_DEPS += $(LIB_TEST_A)
