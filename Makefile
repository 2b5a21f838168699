# SPDX-License-Identifier: BSD-2-Clause
# ctld-bpf build. Everything generated lands in build/ (BUILD=...).
#   make            daemon + CLI          make test    unit + end-to-end tests
#   make demo       scripted session      make bench   benchmark harness
#   make deps       install missing Debian packages (idempotent)
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

# Debian packages the build, the tests, the demo and the benchmark need.
DEB_PACKAGES := clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev nanopb libnanopb-dev \
	libcmocka-dev protobuf-compiler python3-protobuf libssl-dev openssl iproute2 python3 \
	libclang-rt-14-dev valgrind

WARN     := -Wall -Wextra -Werror -Wshadow -Wno-missing-field-initializers -Wstrict-prototypes \
	-Wformat=2 -Wvla
CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 $(WARN) -D_GNU_SOURCE -DCTLD_VERSION='"$(VERSION)"' \
	-I$(BUILD) -Iuser -Ibpf -fno-strict-aliasing
LDLIBS   := -lbpf -lelf -lz -lprotobuf-nanopb -lssl -lcrypto -lm
ifeq ($(SAN),1)
BUILD    := build-san
CC       := clang
CFLAGS   += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS  += -fsanitize=address,undefined
endif

PB_GEN   := $(BUILD)/ctld.pb.c $(BUILD)/ctld.pb.h
SKEL     := $(BUILD)/ctld.skel.h

# user/ modules; each daemon/CLI object is listed once here.
COMMON_SRCS := user/wire.c user/log.c user/util.c
DAEMON_SRCS := user/ctld.c user/dispatch.c user/loop.c user/session.c user/listener.c \
	user/jobs.c user/spawn.c user/idmap.c user/outq.c user/bpf_events.c user/watch_port.c \
	user/sockdiag.c user/netns.c user/watch_file.c user/tls.c
CTL_SRCS    := user/ctl.c user/client.c user/cli_args.c user/json.c user/tls.c

obj = $(patsubst user/%.c,$(BUILD)/obj/%.o,$(1))
COMMON_OBJS := $(call obj,$(COMMON_SRCS)) $(BUILD)/obj/ctld.pb.o
DAEMON_OBJS := $(call obj,$(DAEMON_SRCS)) $(COMMON_OBJS)
CTL_OBJS    := $(call obj,$(CTL_SRCS)) $(COMMON_OBJS)

.PHONY: all deps test unit e2e demo bench bench-quick fuzz certs clean format
all: deps $(BUILD)/ctld-bpf $(BUILD)/ctl $(BUILD)/python/ctld_pb2.py

# ------------------------------------------------------------------ deps
# dpkg-query first so a machine that has everything never calls apt.
deps:
	$(Q)missing=$$(for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "  DEPS     installing:" $$missing; \
		if [ "$$(id -u)" != 0 ]; then echo "make deps: need root to install:" $$missing >&2; exit 1; fi; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing >/dev/null || \
		{ DEBIAN_FRONTEND=noninteractive apt-get update >/dev/null && \
		  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing >/dev/null; } || \
		{ echo "make deps: apt-get failed for:" $$missing >&2; exit 1; }; \
	fi

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
$(BUILD)/obj/ctld.pb.o: $(BUILD)/ctld.pb.c $(BUILD)/ctld.pb.h | $(BUILD)/obj
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/obj/%.o: user/%.c $(PB_GEN) | $(BUILD)/obj
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -MMD -MP -c $< -o $@


$(BUILD)/obj/bpf_events.o: $(SKEL)

$(BUILD)/ctld-bpf: $(DAEMON_OBJS)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/ctl: $(CTL_OBJS)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD) $(BUILD)/obj $(BUILD)/tests:
	$(Q)mkdir -p $@

-include $(wildcard $(BUILD)/obj/*.d $(BUILD)/tests/*.d)

# ------------------------------------------------------------------ tests
include tests/tests.mk
include tests/kernels/kernels.mk

# Everything (what .ci/run calls): unit tests, the end-to-end suite in both
# modes, the saved fuzz regressions and a short fuzzing run.
# TEST_FUZZ_SECONDS=0 skips the fuzzing run (the regressions still run).
test: deps all unit e2e fuzz-regressions
ifneq ($(TEST_FUZZ_SECONDS),0)
	$(Q)$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(TEST_FUZZ_SECONDS)
endif

# ------------------------------------------------------------------ demo, bench
include bench/bench.mk

demo: all
	$(Q)./tests/demo.sh $(BUILD)

bench: all
	$(Q)$(PYTHON) bench/bench.py --build $(BUILD)

bench-quick: all
	$(Q)$(PYTHON) bench/bench.py --build $(BUILD) --quick

certs:
	$(Q)./tests/make_certs.sh $(BUILD)/certs

format:
	clang-format -i user/*.c user/*.h bpf/*.c bpf/*.h tests/*.c

clean:
	rm -rf build build-san
