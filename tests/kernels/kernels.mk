# SPDX-License-Identifier: BSD-2-Clause
# The kernel matrix (issue 14), included by the Makefile: the end-to-end suite
# on Debian's stock kernels, each booted under qemu (TCG) with the host's root
# mounted read-only, against the binaries built here. See docs/kernels.md.
#
#   make test-kernels                       the CI subset (below): ~14 minutes on 2 cores
#   make test-kernels KERNELS=6.1 KERNEL_E2E_PATTERN='test_*.py'   one kernel, whole suite
#   make test-kernels KERNEL_E2E_PATTERN_6.1='test_[!f]*.py'       per kernel: 6.1 all but test_faults
#   make kernels-fetch                      only download and unpack the kernels
#   make kernel-shell KERNEL=6.1            interactive guest (Ctrl-A X quits)
#
# Variables (defaults measured to fit CI's budget; numbers in docs/kernels.md):
#   KERNELS               kernels to boot: 5.10 (bullseye), 6.1 (bookworm), 6.12 (bookworm-backports)
#   KERNEL_E2E_PATTERN    what to run, comma or space separated, on every kernel without its
#                         own KERNEL_E2E_PATTERN_<kernel>: glob patterns (test_*.py, for
#                         unittest discover -p), file names (test_jobs.py) or test names
#                         (test_jobs.JobsTest.test_env_and_cwd). Default: the kernel-side
#                         files (test_*.py: the whole suite, ~9-14 minutes per kernel)
#   KERNEL_E2E_PATTERN_<k> the pattern(s) for kernel <k>
#   KERNEL_NOBPF          kernels that also run the suite with CTLD_TEST_MODE=nobpf
#   KERNEL_TIME_FACTOR    CTLD_TIME_FACTOR in the guest (TCG is ~8x slower than the host)
#   KERNEL_SMP, KERNEL_MEM, KERNEL_ACCEL     qemu -smp, -m, tcg|kvm
#   KERNEL_TIMEOUT        seconds before a guest is killed; KERNEL_SUITE_TIMEOUT: one unittest run
#   KERNEL_NO_MODULES     kernels whose guest sets kernel.modules_disabled=1 before the tests
#   KERNEL_BENCH          kernels whose guest then runs the listen bench (KERNEL_BENCH_TRIALS)
# Results: $(BUILD)/kernels/results/<kernel>.json and .log; docs/kernels.md is regenerated.
# The target fails when any kernel fails (after running all of them).

KERNELS              ?= 5.10 6.1 6.12
# the files whose subject is the kernel: its programs, records, pidfds and
# rlimits (test_restart: adoption through the tracked map; test_security:
# limits libbpf raises on 5.10; test_upgrade: programs loaded again and
# trees re-tracked after an exec; test_startup: the kernel BTF fetched once
# and the small CO-RE copy, which each kernel fetches its own way)
KERNEL_SIDE_TESTS    := test_kernel.py,test_listen_confirm.py,test_watch_port.py,test_wakeups.py,test_ready.py,\
                        test_kernel_record.py,test_restart.py,test_security.py,test_upgrade.py,\
                        test_startup.py
KERNEL_E2E_PATTERN   ?= $(KERNEL_SIDE_TESTS)
KERNEL_NOBPF         ?= 5.10
# kernels whose guest disables module loading before the tests (inet_diag and
# tcp_diag, modules on Debian, then cannot load: sock_diag falls back)
KERNEL_NO_MODULES    ?=
# kernels whose guest runs bench/kernel_listen.py after the tests (listen ->
# client, fexit vs sock_diag); results copied to bench/results/kernels-*.json
KERNEL_BENCH         ?=
KERNEL_BENCH_TRIALS  ?= 100
KERNEL_TIME_FACTOR   ?= 8
KERNEL_SMP           ?= 2
KERNEL_MEM           ?= 2G
KERNEL_ACCEL         ?= tcg
KERNEL_TIMEOUT       ?= 3600
KERNEL_SUITE_TIMEOUT ?= 2400
KERNEL_CACHE         := $(BUILD)/kernels
KERNEL_DEB_PACKAGES  := qemu-system-x86 busybox-static kmod xz-utils zstd bc

.PHONY: test-kernels kernels-deps kernels-fetch kernels-docs kernel-shell

# The one install recipe of the Makefile: dpkg-query first, apt only for what is missing.
kernels-deps:
	$(call install_packages,$(KERNEL_DEB_PACKAGES),kernels-deps)

# The feature probe (fentry/fexit/lsm/tp_btf/kprobe, ringbuf) run in each guest.
$(KERNEL_CACHE)/probe.bpf.o: tests/kernels/probe/probe.bpf.c vmlinux/vmlinux.h
	$(call msg,BPF,$@)
	$(Q)mkdir -p $(dir $@) && $(CLANG) -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_$(ARCH) \
		-Ivmlinux -c $< -o $@

$(KERNEL_CACHE)/probe.skel.h: $(KERNEL_CACHE)/probe.bpf.o
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name probe_bpf > $@

$(KERNEL_CACHE)/probe: tests/kernels/probe/probe.c $(KERNEL_CACHE)/probe.skel.h
	$(call msg,CC,$@)
	$(Q)$(CC) -O2 -g -Wall -Wextra -Werror -I$(KERNEL_CACHE) $< -lbpf -lelf -lz -o $@

kernels-fetch: kernels-deps
	$(Q)for k in $(KERNELS); do tests/kernels/fetch.sh $$k $(KERNEL_CACHE) >/dev/null || exit 1; done

kernel_patterns = $(or $(KERNEL_E2E_PATTERN_$(1)),$(KERNEL_E2E_PATTERN))
kernel_modes = bpf$(if $(filter $(1),$(KERNEL_NOBPF)), nobpf)

test-kernels: deps all $(TEST_PROGS) kernels-deps $(KERNEL_CACHE)/probe \
		$(if $(KERNEL_BENCH),bench-tools)
	$(Q)failed=; \
	$(foreach k,$(KERNELS),CTK_CACHE=$(KERNEL_CACHE) CTK_BUILD=$(BUILD) \
		CTK_MODES='$(call kernel_modes,$(k))' CTK_PATTERNS='$(call kernel_patterns,$(k))' \
		CTK_TIME_FACTOR=$(KERNEL_TIME_FACTOR) CTK_SUITE_TIMEOUT=$(KERNEL_SUITE_TIMEOUT) \
		CTK_NO_MODULES=$(filter $(k),$(KERNEL_NO_MODULES)) \
		CTK_BENCH=$(if $(filter $(k),$(KERNEL_BENCH)),$(KERNEL_BENCH_TRIALS)) \
		CTK_SMP=$(KERNEL_SMP) CTK_MEM=$(KERNEL_MEM) CTK_ACCEL=$(KERNEL_ACCEL) \
		CTK_TIMEOUT=$(KERNEL_TIMEOUT) tests/kernels/run-kernel.sh $(k) || failed="$$failed $(k)";) \
	$(PYTHON) tests/kernels/report.py docs --results $(KERNEL_CACHE)/results --doc docs/kernels.md; \
	for k in $(KERNEL_BENCH); do f=$(KERNEL_CACHE)/out/$$k/bench.json; [ -s $$f ] && \
		cp $$f bench/results/kernels-$$k-$$(date -u +%Y%m%dT%H%M%SZ).json; done; \
	if [ -n "$$failed" ]; then echo "  KERNEL   FAILED on:$$failed (logs: $(KERNEL_CACHE)/results/)"; exit 1; fi; \
	echo "  KERNEL   passed on: $(KERNELS)"

kernels-docs:
	$(Q)$(PYTHON) tests/kernels/report.py docs --results $(KERNEL_CACHE)/results --doc docs/kernels.md

KERNEL ?= 6.1
kernel-shell: all kernels-deps
	$(Q)tree=$$(tests/kernels/fetch.sh $(KERNEL) $(KERNEL_CACHE)) && \
	tests/kernels/mkinitramfs.sh $$tree $(KERNEL_CACHE)/initrd-$(KERNEL).cpio.gz && \
	mkdir -p $(KERNEL_CACHE)/out/shell && \
	CTK_SMP=$(KERNEL_SMP) CTK_MEM=$(KERNEL_MEM) CTK_ACCEL=$(KERNEL_ACCEL) \
		tests/kernels/boot.sh $$tree $(KERNEL_CACHE)/initrd-$(KERNEL).cpio.gz $(KERNEL_CACHE)/out/shell
