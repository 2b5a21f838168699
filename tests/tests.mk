# SPDX-License-Identifier: BSD-2-Clause
# Test rules, included by the Makefile.
#
# Unit tests: tests/test_<unit>.c, one binary each (cmocka). Each file says
# what it links and which syscalls it fakes, beside the test itself:
#   // TEST_SRCS: user/wire.c user/util.c
#   // TEST_WRAPS: read write
# Tests build with -U_FORTIFY_SOURCE so --wrap=read is not bypassed by __read_chk.
#
# End-to-end tests: tests/e2e/test_*.py drive the real daemon, kernel programs
# and CLI. They run twice: with eBPF (must come up: root + BTF, else they
# FAIL) and with --no-bpf (the fallback paths).
comma := ,
UNIT_SRCS := $(wildcard tests/test_*.c)
UNIT_BINS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
test_decl = $(shell sed -n 's|^// $(2):||p' $(1))

.SECONDEXPANSION:
$(BUILD)/tests/test_%: tests/test_%.c $$(call obj,$$(call test_decl,tests/test_$$*.c,TEST_SRCS)) \
		$(BUILD)/obj/ctld.pb.o | $(BUILD)/tests
	$(call msg,TEST-CC,$@)
	$(Q)$(CC) $(CFLAGS) -U_FORTIFY_SOURCE -MMD -MP $< $(filter %.o,$^) \
		$(addprefix -Wl$(comma)--wrap=,$(call test_decl,$<,TEST_WRAPS)) \
		$(LDFLAGS) $(LDLIBS) -lcmocka -o $@

# Helper programs the end-to-end tests run as jobs.
TEST_PROGS := $(patsubst tests/progs/%.c,$(BUILD)/tests/progs/%,$(wildcard tests/progs/*.c))
$(BUILD)/tests/progs/%: tests/progs/%.c | $(BUILD)/tests
	$(call msg,TEST-CC,$@)
	$(Q)mkdir -p $(dir $@) && $(CC) -O2 -g -Wall -Wextra -Werror -pthread $< -o $@

E2E_MODES ?= bpf nobpf
E2E_PATTERN ?= test_*.py

.PHONY: unit e2e test
unit: $(UNIT_BINS)
	$(Q)fail=0; for t in $(UNIT_BINS); do \
		printf '  UNIT     %s\n' "$$t"; \
		$$t >$$t.log 2>&1 || { cat $$t.log; fail=1; }; \
	done; exit $$fail

e2e: all $(TEST_PROGS)
	$(Q)for mode in $(E2E_MODES); do \
		printf '  E2E      mode=%s\n' "$$mode"; \
		CTLD_BUILD=$(BUILD) CTLD_TEST_MODE=$$mode $(PYTHON) -m unittest discover \
			-s tests/e2e -p '$(E2E_PATTERN)' $(if $(V),-v) || exit 1; \
	done

test: deps all unit e2e
