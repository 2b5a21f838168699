# SPDX-License-Identifier: BSD-2-Clause
# Install and package (issue 15), included by the Makefile. See
# packaging/README.md for what goes where and why.
#
#   make install [PREFIX=/usr/local] [DESTDIR=...]   binaries, spawner, man pages,
#                 bash completion, systemd unit, Python client (packaging/install.sh)
#   make uninstall [PREFIX=...] [DESTDIR=...]        the same files removed
#   make deb      build/deb/ctld-bpf_<v>_<arch>.deb and python3-ctld_<v>_all.deb
#                 with dpkg-buildpackage (debhelper), then lintian
#   make test-deb the packages on a fresh Debian 12 (debootstrap, booted with
#                 systemd in systemd-nspawn): installed, service active, ctl
#                 works, purged, nothing left (packaging/test_deb.sh; a few minutes)
#
# Install variables (all below PREFIX unless given): SBINDIR BINDIR MANDIR
# COMPLETIONDIR UNITDIR SYSCONFDIR PYTHONDIR CLUSTERSHELL_WORKER_DIR.
# LIBEXECDIR is always PREFIX/libexec/ctld-bpf: ctld-spawner and every
# $(BUILD)/*.so go there, where the daemon looks (../libexec/ctld-bpf from
# its executable).

PREFIX        ?= /usr/local
LIBEXECDIR    := $(PREFIX)/libexec/ctld-bpf
INSTALL_VARS  := DESTDIR PREFIX SBINDIR BINDIR MANDIR COMPLETIONDIR UNITDIR SYSCONFDIR PYTHONDIR \
	CLUSTERSHELL_WORKER_DIR
install_env    = $(foreach v,$(INSTALL_VARS),$(if $(value $(v)),$(v)='$($(v))'))
PACKAGE_DEB_PACKAGES := debhelper dh-python dpkg-dev fakeroot lintian debootstrap systemd-container man-db
DEB_DIR       := $(BUILD)/deb
DEB_ARCH       = $(shell dpkg --print-architecture)

.PHONY: install uninstall deb test-deb package-deps

package-deps:
	$(call install_packages,$(PACKAGE_DEB_PACKAGES),package-deps)

install: all
	$(Q)$(install_env) packaging/install.sh $(BUILD)

uninstall:
	$(Q)$(install_env) packaging/install.sh --uninstall $(BUILD)

# The package is built from a copy of the source (tracked and new files,
# not build/) with packaging/debian as its debian/, so the tree here stays
# as it is and nothing of an earlier build leaks into the package.
deb: package-deps
	$(call msg,DEB,$(DEB_DIR))
	$(Q)rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)/src/ctld-bpf-$(VERSION)
	$(Q)git ls-files -z -co --exclude-standard | \
		tar --null --ignore-failed-read -T - -cf - | tar -xf - -C $(DEB_DIR)/src/ctld-bpf-$(VERSION)
	$(Q)cp -r packaging/debian $(DEB_DIR)/src/ctld-bpf-$(VERSION)/debian
	$(Q)cd $(DEB_DIR)/src/ctld-bpf-$(VERSION) && \
		dpkg-buildpackage -us -uc -b >../build.log 2>&1 || \
		{ tail -40 ../build.log >&2; echo "make deb: dpkg-buildpackage failed, see $(DEB_DIR)/src/build.log" >&2; exit 1; }
	$(Q)mv $(DEB_DIR)/src/*.deb $(DEB_DIR)/src/*.buildinfo \
		$(DEB_DIR)/src/*.changes $(DEB_DIR)/
	$(Q)lintian --info --fail-on error,warning $(DEB_DIR)/*.changes
	$(Q)ls -1 $(DEB_DIR)/*.deb

test-deb: deb
	$(Q)packaging/test_deb.sh $(DEB_DIR) $(VERSION)
