# SPDX-License-Identifier: BSD-2-Clause
# Test rules, included by the Makefile.
#
# Unit tests: tests/test_<unit>.c, one binary each (cmocka). Each file says
# what it links and which syscalls it fakes, beside the test itself:
#   // TEST_SRCS: user/common/wire.c user/common/util.c
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
		$(BUILD)/obj/ctld.pb.o $(PB_GEN) | $(BUILD)/tests
	$(call msg,TEST-CC,$@)
	$(Q)$(CC) $(CFLAGS) -U_FORTIFY_SOURCE -MMD -MP $< $(filter %.o,$^) \
		$(addprefix -Wl$(comma)--wrap=,$(call test_decl,$<,TEST_WRAPS)) \
		$(LDFLAGS) $(LDLIBS) -lcmocka -o $@

# test_core_btf reads the programs' BTF from the object the skeleton embeds.
$(BUILD)/tests/test_core_btf: $(SKEL)

# Helper programs the end-to-end tests run as jobs, and LD_PRELOAD
# libraries (tests/progs/no_*.c) that take a kernel facility away.
TEST_PRELOADS := $(patsubst tests/progs/%.c,$(BUILD)/tests/progs/%.so,$(wildcard tests/progs/no_*.c))
TEST_PROGS := $(patsubst tests/progs/%.c,$(BUILD)/tests/progs/%,\
	$(filter-out tests/progs/no_%.c,$(wildcard tests/progs/*.c))) $(TEST_PRELOADS)
$(BUILD)/tests/progs/%.so: tests/progs/%.c | $(BUILD)/tests
	$(call msg,TEST-CC,$@)
	$(Q)mkdir -p $(dir $@) && $(CC) -O2 -g -Wall -Wextra -Werror -shared -fPIC $< -ldl -o $@
$(BUILD)/tests/progs/%: tests/progs/%.c | $(BUILD)/tests
	$(call msg,TEST-CC,$@)
	$(Q)mkdir -p $(dir $@) && $(CC) -O2 -g -Wall -Wextra -Werror -pthread $< -o $@

E2E_MODES ?= bpf nobpf
TEST_FUZZ_SECONDS ?= 30
E2E_PATTERN ?= test_*.py

.PHONY: unit e2e e2e-valgrind layout
# The structure rules of user/ and bpf/ (tests/check_layout.py says which).
layout:
	$(Q)printf '  LAYOUT   user/ bpf/\n'; $(PYTHON) tests/check_layout.py

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

# The end-to-end suite with the daemon under valgrind memcheck (errors and
# definite/indirect leaks fail the test that stopped the daemon). One mode:
# no-BPF by default, the mode the sanitizer pass in .ci/run does not cover.
VALGRIND_MODES ?= nobpf
e2e-valgrind: all $(TEST_PROGS)
	$(Q)for mode in $(VALGRIND_MODES); do \
		printf '  E2E      mode=%s under valgrind\n' "$$mode"; \
		CTLD_VALGRIND=1 CTLD_BUILD=$(BUILD) CTLD_TEST_MODE=$$mode $(PYTHON) -m unittest \
			discover -s tests/e2e -p '$(E2E_PATTERN)' $(if $(V),-v) || exit 1; \
	done



# Fuzzing (libFuzzer, clang): the frame codec and the daemon's whole request
# path. `make fuzz` runs each target FUZZ_SECONDS on the committed seed corpus
# (new inputs go to $(BUILD)/fuzz, never into the repository); `make test`
# runs a shorter pass plus every saved crash under tests/fuzz/regressions/.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := frame session
FUZZ_CFLAGS := -g -O1 -std=gnu11 -D_GNU_SOURCE -DCTLD_VERSION='"$(VERSION)"' -I$(BUILD) -Iuser \
	-Ibpf -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_frame_SRCS := user/common/wire.c user/common/utf8.c
FUZZ_session_SRCS := $(filter-out user/daemon/main.c,$(DAEMON_SRCS)) $(COMMON_SRCS)
FUZZ_session_LDFLAGS := -Wl,--wrap=spawn_process -Wl,--wrap=file_user_enter $(KERNEL_BTF_WRAP)

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(PB_GEN) $(SKEL) $$(FUZZ_$$*_SRCS)
	$(call msg,FUZZ-CC,$@)
	$(Q)mkdir -p $(dir $@) && clang $(FUZZ_CFLAGS) $< $(FUZZ_$*_SRCS) $(BUILD)/ctld.pb.c \
		$(FUZZ_$*_LDFLAGS) $(LDLIBS) -o $@

.PHONY: fuzz fuzz-regressions
fuzz: $(addprefix $(BUILD)/fuzz/fuzz_,$(FUZZ_TARGETS))
	$(Q)for t in $(FUZZ_TARGETS); do \
		printf '  FUZZ     %s (%ss)\n' $$t $(FUZZ_SECONDS); \
		mkdir -p $(BUILD)/fuzz/corpus-$$t $(BUILD)/fuzz/artifacts-$$t; \
		$(BUILD)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
			-print_final_stats=1 -artifact_prefix=$(BUILD)/fuzz/artifacts-$$t/ \
			$(BUILD)/fuzz/corpus-$$t tests/fuzz/corpus/$$t >$(BUILD)/fuzz/$$t.log 2>&1 || \
			{ tail -40 $(BUILD)/fuzz/$$t.log; echo "fuzz_$$t found a crash: see" \
			  "$(BUILD)/fuzz/artifacts-$$t/ and add it to tests/fuzz/regressions/$$t/"; exit 1; }; \
		grep -E 'stat::number_of_executed_units|cov:' $(BUILD)/fuzz/$$t.log | tail -2; \
	done

# Every input that once crashed a target is replayed on every test run.
fuzz-regressions: $(addprefix $(BUILD)/fuzz/fuzz_,$(FUZZ_TARGETS))
	$(Q)for t in $(FUZZ_TARGETS); do \
		files=$$(ls tests/fuzz/regressions/$$t/* 2>/dev/null); \
		[ -z "$$files" ] || $(BUILD)/fuzz/fuzz_$$t $$files >/dev/null 2>&1 || \
			{ echo "fuzz_$$t: a regression input crashes again"; exit 1; }; \
	done
