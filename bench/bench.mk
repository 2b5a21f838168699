# SPDX-License-Identifier: BSD-2-Clause
# Benchmark tools, included by the Makefile. `make bench` / `make bench-quick`
# build them into $(BUILD)/bench/ from the objects the daemon and ctl use, and
# install what the harness needs besides the build (sshd for the ssh
# baselines, gnuplot for the plot). See bench/README.md.
BENCH_PACKAGES := openssh-server openssh-client gnuplot-nox
BENCH_DIR      := $(BUILD)/bench
BENCH_LIB_OBJS := $(BENCH_DIR)/benchlib.o $(call obj,user/client.c user/tls.c) $(COMMON_OBJS)
BENCH_TOOLS    := $(addprefix $(BENCH_DIR)/,spawn_bench client_bench listen_bench storm)

.PHONY: bench-deps bench-tools
bench bench-quick: bench-deps bench-tools
bench-tools: $(BENCH_TOOLS)

bench-deps:
	$(Q)missing=$$(for p in $(BENCH_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "  DEPS     installing:" $$missing; \
		if [ "$$(id -u)" != 0 ]; then echo "make bench-deps: need root to install:" $$missing >&2; exit 1; fi; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing >/dev/null || \
		{ DEBIAN_FRONTEND=noninteractive apt-get update >/dev/null && \
		  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing >/dev/null; } || \
		{ echo "make bench-deps: apt-get failed for:" $$missing >&2; exit 1; }; \
	fi

$(BENCH_DIR):
	$(Q)mkdir -p $@

$(BENCH_DIR)/benchlib.o: bench/benchlib.c bench/benchlib.h $(PB_GEN) | $(BENCH_DIR)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -Ibench -c $< -o $@

# tools without the client library (and without -Iuser: user/spawn.h is not <spawn.h>)
$(BENCH_DIR)/spawn_bench $(BENCH_DIR)/storm: $(BENCH_DIR)/%: bench/%.c | $(BENCH_DIR)
	$(call msg,CC,$@)
	$(Q)$(CC) $(filter-out -I%,$(CFLAGS)) $(LDFLAGS) $< -o $@

$(BENCH_DIR)/client_bench $(BENCH_DIR)/listen_bench: $(BENCH_DIR)/%: bench/%.c bench/benchlib.h \
		$(BENCH_LIB_OBJS) | $(BENCH_DIR)
	$(call msg,LD,$@)
	$(Q)$(CC) $(CFLAGS) -Ibench $(LDFLAGS) $< $(BENCH_LIB_OBJS) $(LDLIBS) -lpthread -o $@
