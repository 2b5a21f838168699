# SPDX-License-Identifier: BSD-2-Clause
# Benchmark tools, included by the Makefile. `make bench` / `make bench-quick`
# build them into $(BUILD)/bench/ from the objects the daemon and ctl use, and
# install what the harness needs besides the build (sshd for the ssh
# baselines, gnuplot for the plot). See bench/README.md.
BENCH_PACKAGES := openssh-server openssh-client gnuplot-nox clustershell pdsh time
BENCH_DIR      := $(BUILD)/bench
BENCH_LIB_OBJS := $(BENCH_DIR)/benchlib.o $(call obj,$(CLIENT_SRCS)) $(COMMON_OBJS)
BENCH_TOOLS    := $(addprefix $(BENCH_DIR)/,spawn_bench client_bench listen_bench storm)

.PHONY: bench-deps bench-tools
bench bench-quick: bench-deps
bench-tools: $(BENCH_TOOLS)

# The project's own packages first: `make bench` may be the first command on
# a fresh machine.
bench-deps:
	$(call install_packages,$(DEB_PACKAGES) $(BENCH_PACKAGES),bench)

$(BENCH_DIR):
	$(Q)mkdir -p $@

$(BENCH_DIR)/benchlib.o: bench/benchlib.c bench/benchlib.h $(PB_GEN) | $(BENCH_DIR)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -Ibench -c $< -o $@

# tools without the client library
$(BENCH_DIR)/spawn_bench $(BENCH_DIR)/storm: $(BENCH_DIR)/%: bench/%.c | $(BENCH_DIR)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $< -o $@

$(BENCH_DIR)/client_bench $(BENCH_DIR)/listen_bench: $(BENCH_DIR)/%: bench/%.c bench/benchlib.h \
		$(BENCH_LIB_OBJS) | $(BENCH_DIR)
	$(call msg,LD,$@)
	$(Q)$(CC) $(CFLAGS) -Ibench $(LDFLAGS) $< $(BENCH_LIB_OBJS) $(LDLIBS) -lpthread -o $@
