# SPDX-License-Identifier: BSD-2-Clause
# ctld-bpf build. Everything generated lands in build/ (BUILD=...).
#   make            daemon + CLI          make test    unit + end-to-end tests
#   make demo       scripted session      make bench   benchmark harness
#   make install    PREFIX, DESTDIR       make deb     Debian packages (packaging/packaging.mk)
#   make deps       install missing Debian packages (idempotent; test, demo
#                   and bench run it first, a plain `make` does not)
#   V=1             show full commands    SAN=1        ASan+UBSan build
.DELETE_ON_ERROR:
# Keep intermediate files (the .bpf.o next to its skeleton) in every build dir.
.SECONDARY:
.SUFFIXES:

BUILD    ?= build
ARCH     := $(shell uname -m | sed 's/x86_64/x86/; s/aarch64/arm64/; s/ppc64le/powerpc/; s/s390x/s390/')
CC       ?= gcc
CLANG    ?= clang
BPFTOOL  ?= bpftool
PROTOC   ?= protoc
PYTHON   := /usr/bin/python3
VERSION  := 0.1.0

ifeq ($(V),1)
Q =
msg =
else
Q = @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

# Debian packages the build, the tests and the demo need (the benchmark adds
# its own in bench/bench.mk).
# Real servers the end-to-end tests start as jobs (never as services), and
# bpftrace, the independent record of what the kernel did.
SERVER_PACKAGES := redis-server redis-tools memcached nginx-light bpftrace
# The Python package's node sets and ClusterShell worker, its pytest fixture.
PYTHON_PACKAGES := python3-clustershell clustershell python3-pytest
DEB_PACKAGES := clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev nanopb libnanopb-dev \
	libcmocka-dev protobuf-compiler python3-protobuf libssl-dev openssl iproute2 python3 \
	libclang-rt-14-dev valgrind $(SERVER_PACKAGES) $(PYTHON_PACKAGES)

# $(call install_packages,PACKAGES,WHO): installs what dpkg does not list as
# installed, so a machine that has everything never calls apt. The one copy
# of this recipe: deps and bench-deps use it. While it installs, a
# policy-rc.d (unless the machine has one) keeps the servers' packages from
# starting system services: tests start them as jobs of their own.
define install_packages
	$(Q)missing=$$(for p in $(1); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "  DEPS     installing:" $$missing; \
		if [ "$$(id -u)" != 0 ]; then echo "make $(2): need root to install:" $$missing >&2; exit 1; fi; \
		policy=; if [ ! -e /usr/sbin/policy-rc.d ]; then \
			printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && \
			policy=/usr/sbin/policy-rc.d; fi; \
		ok=1; DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing >/dev/null || \
		{ DEBIAN_FRONTEND=noninteractive apt-get update >/dev/null && \
		  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing >/dev/null; } || ok=; \
		[ -z "$$policy" ] || rm -f "$$policy"; \
		[ -n "$$ok" ] || { echo "make $(2): apt-get failed for:" $$missing >&2; exit 1; }; \
	fi
endef

WARN     := -Wall -Wextra -Werror -Wshadow -Wno-missing-field-initializers -Wstrict-prototypes \
	-Wformat=2 -Wvla
CFLAGS   ?= -O2 -g
# Headers are included by their path below user/ ("daemon/jobs/jobs.h"), so
# no project header can hide a system one.
CFLAGS   += -std=gnu11 $(WARN) -D_GNU_SOURCE -DCTLD_VERSION='"$(VERSION)"' \
	-I$(BUILD) -Iuser -Ibpf -fno-strict-aliasing
# The spawner helper is static and never sanitized (see user/spawner/channel.h).
SPAWNER_CFLAGS := $(CFLAGS)
# Each binary links only what it uses (issue 15): ctl no libbpf, nothing
# OpenSSL but ctld-tls.so, which common/tls.c loads when TLS is configured.
# The daemon links libbpf, libelf and libz statically: a shared library is
# resident whole (0.5 MiB for these three), the archive only for what we
# call; the price is a rebuild for their security fixes.
COMMON_LIBS := -lprotobuf-nanopb -lm
BPF_LIBS    := -lbpf -lelf -lz
# libbpf's load gets the kernel BTF the daemon fetched once, as a placeholder
# whose lookups its index answers (daemon/kernel/kernel_btf.c); whatever links
# kernel_btf.c links with this (the fuzz target too)
KERNEL_BTF_WRAP := -Wl,--wrap=btf__load_vmlinux_btf -Wl,--wrap=btf__find_by_name_kind
DAEMON_LIBS := $(KERNEL_BTF_WRAP) -Wl,-Bstatic $(BPF_LIBS) -Wl,-Bdynamic $(COMMON_LIBS)
CTL_LIBS    := $(COMMON_LIBS)
TLS_LIBS    := -lssl -lcrypto
# every symbol of the module resolved at link time (not with sanitizers:
# their runtime is the executable's)
TLS_LDFLAGS := -Wl,-z,defs
# tests, fuzzers and bench tools
LDLIBS   := $(BPF_LIBS) $(COMMON_LIBS)
ifeq ($(SAN),1)
BUILD    := build-san
CC       := clang
CFLAGS   += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS  += -fsanitize=address,undefined
TLS_LDFLAGS :=
endif

PB_GEN   := $(BUILD)/ctld.pb.c $(BUILD)/ctld.pb.h
SKEL     := $(BUILD)/ctld.skel.h

# The parts of user/ (README "Layout"): common/ is linked by everything,
# client/ by ctl and the benchmark, daemon/ only by the daemon, ctl/ only by
# the CLI. ctl/ and daemon/ never include each other.
COMMON_SRCS := $(wildcard user/common/*.c)
CLIENT_SRCS := $(wildcard user/client/*.c)
SPAWNER_LIB := user/spawner/spawn.c user/spawner/channel.c
DAEMON_SRCS := $(wildcard user/daemon/*.c user/daemon/*/*.c) $(SPAWNER_LIB)
CTL_SRCS    := $(wildcard user/ctl/*.c)

obj = $(patsubst user/%.c,$(BUILD)/obj/%.o,$(1))
COMMON_OBJS := $(call obj,$(COMMON_SRCS)) $(BUILD)/obj/ctld.pb.o
DAEMON_OBJS := $(call obj,$(DAEMON_SRCS)) $(COMMON_OBJS)
CTL_OBJS    := $(call obj,$(CTL_SRCS) $(CLIENT_SRCS)) $(COMMON_OBJS)

.PHONY: all deps test unit e2e layout demo bench bench-quick fuzz certs clean format
all: $(BUILD)/ctld-bpf $(BUILD)/ctld-spawner $(BUILD)/ctl $(BUILD)/ctld-tls.so \
	$(BUILD)/python/ctld_pb2.py

deps:
	$(call install_packages,$(DEB_PACKAGES),deps)

# ------------------------------------------------------------------ protocol
$(BUILD)/ctld.pb.c $(BUILD)/ctld.pb.h &: proto/ctld.proto proto/ctld.options | $(BUILD)
	$(call msg,NANOPB,$<)
	$(Q)cd proto && $(PROTOC) --plugin=protoc-gen-nanopb=/usr/bin/protoc-gen-nanopb \
		--nanopb_out=$(abspath $(BUILD)) ctld.proto
	$(Q)if grep -nE 'PB_ATYPE_POINTER|pb_callback_t|FT_POINTER' $(BUILD)/ctld.pb.h; then \
		echo "ctld.options: every field must be static (bounded), see ctld.options" >&2; \
		rm -f $(PB_GEN); exit 1; fi

$(BUILD)/python/ctld_pb2.py: proto/ctld.proto | $(BUILD)
	$(call msg,PROTOC,$@)
	$(Q)mkdir -p $(BUILD)/python && $(PROTOC) --python_out=$(BUILD)/python -Iproto proto/ctld.proto

# ------------------------------------------------------------------ BPF
# vmlinux/vmlinux.h is a trimmed, committed CO-RE header (see its top comment).
$(BUILD)/%.bpf.o: bpf/%.bpf.c bpf/ctld_events.h vmlinux/vmlinux.h | $(BUILD)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_$(ARCH) \
		-Ivmlinux -Ibpf -c $< -o $@
	$(Q)llvm-strip -g $@ 2>/dev/null || true

$(BUILD)/%.skel.h: $(BUILD)/%.bpf.o
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $(notdir $*) > $@

# ------------------------------------------------------------------ user space
$(BUILD)/obj/ctld.pb.o: $(BUILD)/ctld.pb.c $(BUILD)/ctld.pb.h | $(BUILD)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(dir $@) && $(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/obj/%.o: user/%.c $(PB_GEN)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(dir $@) && $(CC) $(CFLAGS) -MMD -MP -c $< -o $@

# The skeleton is generated: objects that include it wait for it (found by
# grep, so a new includer cannot race it in a parallel build).
SKEL_USERS := $(patsubst user/%.c,$(BUILD)/obj/%.o,$(shell grep -rl --include='*.c' 'ctld\.skel\.h' user))
$(SKEL_USERS): $(SKEL)

$(BUILD)/ctld-bpf: $(DAEMON_OBJS)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(DAEMON_LIBS) -o $@

# The TLS module (common/tls.c loads it): only its table is exported.
$(BUILD)/obj-pic/%.o: user/%.c
	$(call msg,CC,$@)
	$(Q)mkdir -p $(dir $@) && $(CC) $(CFLAGS) -fPIC -fvisibility=hidden -MMD -MP -c $< -o $@

$(BUILD)/ctld-tls.so: $(BUILD)/obj-pic/tls/tls_openssl.o $(BUILD)/obj-pic/tls/session_cache.o
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) $(TLS_LDFLAGS) -shared $^ $(TLS_LIBS) -o $@

SPAWNER_OBJS := $(patsubst user/%.c,$(BUILD)/obj-static/%.o,user/spawner/main.c $(SPAWNER_LIB))
$(BUILD)/obj-static/%.o: user/%.c
	$(call msg,CC,$@)
	$(Q)mkdir -p $(dir $@) && $(CC) $(SPAWNER_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/ctld-spawner: $(SPAWNER_OBJS)
	$(call msg,LD,$@)
	$(Q)$(CC) -static $^ -o $@

$(BUILD)/ctl: $(CTL_OBJS)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(CTL_LIBS) -o $@

$(BUILD) $(BUILD)/tests:
	$(Q)mkdir -p $@

-include $(shell find $(BUILD)/obj $(BUILD)/obj-static $(BUILD)/obj-pic $(BUILD)/tests -name '*.d' 2>/dev/null)

# ------------------------------------------------------------------ python
# The package ctld, with its generated ctld_pb2 inside (ctld/proto.py looks
# there first), where Debian's python3 finds it (PREFIX=/usr: the
# distribution's directory, else python3.X's under PREFIX), and the
# ClusterShell worker where `clush -R ctld` looks: ClusterShell/Worker/ of
# Debian's python3-clustershell.
PREFIX ?= /usr/local
PY_VERSION := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
PYTHON_DIR ?= $(if $(filter /usr,$(PREFIX)),/usr/lib/python3,$(PREFIX)/lib/python$(PY_VERSION))/dist-packages
CLUSH_WORKER_DIR ?= $(shell $(PYTHON) -c 'import os, ClusterShell.Worker as w; \
	print(os.path.dirname(w.__file__))' 2>/dev/null || echo /usr/lib/python3/dist-packages/ClusterShell/Worker)
.PHONY: install-python uninstall-python
install-python: $(BUILD)/python/ctld_pb2.py
	$(call msg,INSTALL,$(DESTDIR)$(PYTHON_DIR)/ctld $(DESTDIR)$(CLUSH_WORKER_DIR)/Ctld.py)
	$(Q)install -d $(DESTDIR)$(PYTHON_DIR)/ctld $(DESTDIR)$(CLUSH_WORKER_DIR)
	$(Q)install -m 644 clients/python/ctld/*.py $(BUILD)/python/ctld_pb2.py $(DESTDIR)$(PYTHON_DIR)/ctld/
	$(Q)install -m 644 clients/clustershell/Ctld.py $(DESTDIR)$(CLUSH_WORKER_DIR)/Ctld.py

uninstall-python:
	rm -rf $(DESTDIR)$(PYTHON_DIR)/ctld $(DESTDIR)$(CLUSH_WORKER_DIR)/Ctld.py

# ------------------------------------------------------------------ tests
include tests/tests.mk
include tests/kernels/kernels.mk

# Everything (what .ci/run calls): unit tests, the end-to-end suite in both
# modes, the saved fuzz regressions and a short fuzzing run.
# TEST_FUZZ_SECONDS=0 skips the fuzzing run (the regressions still run).
test: deps
	$(Q)$(MAKE) --no-print-directory all layout unit e2e fuzz-regressions
ifneq ($(TEST_FUZZ_SECONDS),0)
	$(Q)$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(TEST_FUZZ_SECONDS)
endif

# ------------------------------------------------------------------ demo, bench
include bench/bench.mk
include packaging/packaging.mk

demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)./tests/demo.sh $(BUILD)

bench bench-quick: bench-deps
	$(Q)$(MAKE) --no-print-directory all bench-tools
	$(Q)$(PYTHON) bench/bench.py --build $(BUILD) $(if $(filter bench-quick,$@),--quick)

certs:
	$(Q)./tests/make_certs.sh $(BUILD)/certs

format:
	clang-format -i $$(find user bpf -name '*.[ch]') tests/*.c

clean:
	rm -rf build build-san
