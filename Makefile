# Builds libproxy and installs it as a C library under names of its own (cargo cannot install a
# cdylib). Debian's unrelated libproxy (a PAC resolver) owns libproxy.so.1, /usr/include/proxy.h and
# the pkg-config module libproxy-1.0, so everything installed here is called libproxy-rt, like the
# SONAME build.rs sets:
#   $(INCLUDEDIR)/libproxy-rt/proxy.h
#   $(LIBDIR)/libproxy-rt.so.$(ABI_MAJOR).$(ABI_MINOR)   (debug info stripped; SONAME libproxy-rt.so.$(ABI_MAJOR))
#   $(LIBDIR)/libproxy-rt.so.$(ABI_MAJOR) -> ..., libproxy-rt.so -> libproxy-rt.so.$(ABI_MAJOR)
#   $(LIBDIR)/libproxy-rt.a                               (static; its extra libraries in Libs.private)
#   $(LIBDIR)/pkgconfig/libproxy-rt.pc                    (pkg-config --cflags --libs libproxy-rt)
#   $(LIBDIR)/cmake/libproxy-rt/libproxy-rt-config*.cmake (find_package(libproxy-rt CONFIG))
#
#   make                                   # cargo build --release + the SONAME link in target/release
#   make install PREFIX=/opt/libproxy      # DESTDIR=/tmp/stage for packaging
#   make uninstall PREFIX=/opt/libproxy
PREFIX     ?= /usr/local
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
CARGO      ?= cargo
STRIP      ?= strip
INSTALL    ?= install
# Outside /usr the loader does not search LIBDIR, so programs built from the .pc get an rpath to it;
# distribution packages installing into /usr leave it out.
RPATH      ?= $(if $(filter /usr,$(PREFIX)),,-Wl$(comma)-rpath$(comma)$${libdir})
comma      := ,

BUILD := target/release
# `cargo rustc --release --lib --crate-type staticlib -- --print native-static-libs`
STATIC_LIBS := -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc

hdr_define = $(shell sed -n 's/^\#define $(1) \([0-9][0-9]*\)$$/\1/p' include/proxy.h)
ABI_MAJOR := $(call hdr_define,PROXY_ABI_VERSION_MAJOR)
ABI_MINOR := $(call hdr_define,PROXY_ABI_VERSION_MINOR)
VERSION   := $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' Cargo.toml | head -n1)
ifeq ($(ABI_MAJOR)$(ABI_MINOR),)
$(error PROXY_ABI_VERSION_MAJOR/MINOR not found in include/proxy.h)
endif
SONAME   := libproxy-rt.so.$(ABI_MAJOR)
REALNAME := $(SONAME).$(ABI_MINOR)

SUBST = sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' \
	-e 's|@VERSION@|$(VERSION)|g' -e 's|@VERSION_MAJOR@|$(word 1,$(subst ., ,$(VERSION)))|g' \
	-e 's|@VERSION_MINOR@|$(word 2,$(subst ., ,$(VERSION)))|g' -e 's|@SONAME@|$(SONAME)|g' \
	-e 's|@REALNAME@|$(REALNAME)|g' -e 's|@RPATH@|$(RPATH)|g' -e 's|@STATIC_LIBS@|$(STATIC_LIBS)|g' \
	-e 's|@STATIC_LIBS_CMAKE@|$(subst $() ,;,$(patsubst -l%,%,$(STATIC_LIBS)))|g'

all: $(BUILD)/$(SONAME)

# Always asks cargo, so an edited src/ never installs a stale library.
$(BUILD)/libproxy.so $(BUILD)/libproxy.a: FORCE
	$(CARGO) build --release --lib

# build.rs leaves this link too; made again here in case it was removed since.
$(BUILD)/$(SONAME): $(BUILD)/libproxy.so
	@built=$$(readelf -d $< | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p'); \
	if [ "$$built" != "$(SONAME)" ]; then \
	  echo "$<: SONAME '$$built', the header says $(SONAME)" >&2; exit 1; fi
	ln -sf libproxy.so $@

# Installs what is built; run `make` first (as a user) when installing as root.
install: $(BUILD)/$(SONAME)
	$(INSTALL) -d $(DESTDIR)$(INCLUDEDIR)/libproxy-rt $(DESTDIR)$(LIBDIR)/pkgconfig \
		$(DESTDIR)$(LIBDIR)/cmake/libproxy-rt
	$(INSTALL) -m 644 include/proxy.h $(DESTDIR)$(INCLUDEDIR)/libproxy-rt/proxy.h
	# The release profile keeps line tables (debug = 1: 49 MB); installed copies carry symbols only.
	$(STRIP) --strip-debug -o $(DESTDIR)$(LIBDIR)/$(REALNAME) $(BUILD)/libproxy.so
	chmod 755 $(DESTDIR)$(LIBDIR)/$(REALNAME)
	ln -sf $(REALNAME) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libproxy-rt.so
	$(STRIP) --strip-debug -o $(DESTDIR)$(LIBDIR)/libproxy-rt.a $(BUILD)/libproxy.a
	chmod 644 $(DESTDIR)$(LIBDIR)/libproxy-rt.a
	$(SUBST) packaging/libproxy-rt.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/libproxy-rt.pc
	$(SUBST) packaging/libproxy-rt-config.cmake.in \
		> $(DESTDIR)$(LIBDIR)/cmake/libproxy-rt/libproxy-rt-config.cmake
	$(SUBST) packaging/libproxy-rt-config-version.cmake.in \
		> $(DESTDIR)$(LIBDIR)/cmake/libproxy-rt/libproxy-rt-config-version.cmake

uninstall:
	rm -f $(DESTDIR)$(INCLUDEDIR)/libproxy-rt/proxy.h $(DESTDIR)$(LIBDIR)/$(REALNAME) \
		$(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/libproxy-rt.so $(DESTDIR)$(LIBDIR)/libproxy-rt.a \
		$(DESTDIR)$(LIBDIR)/pkgconfig/libproxy-rt.pc \
		$(DESTDIR)$(LIBDIR)/cmake/libproxy-rt/libproxy-rt-config.cmake \
		$(DESTDIR)$(LIBDIR)/cmake/libproxy-rt/libproxy-rt-config-version.cmake
	-rmdir $(DESTDIR)$(INCLUDEDIR)/libproxy-rt $(DESTDIR)$(LIBDIR)/cmake/libproxy-rt 2>/dev/null

.PHONY: all install uninstall FORCE
FORCE:
