# config.mk - what you may want to change.  Read by Makefile.
PREFIX    ?= /usr/local
BINDIR    ?= $(PREFIX)/bin
LIBDIR    ?= $(PREFIX)/lib/rfork
MANPREFIX ?= $(PREFIX)/share/man

CC      ?= cc
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 -Wall -Wextra -Wno-unused-parameter -D_GNU_SOURCE -Ilib
# The libraries go in statically (glibc stays shared): a remote fork execs
# rf-snap, rf-send and rf-stub, and resolving libcrypto's symbols at each
# start cost about 0.7 ms of the fork's time here (README "Libraries").
# STATIC= links them as shared libraries.
STATIC  ?= 1
RFLIBS   = -lbsd -lmd -ljansson -lxxhash -llz4 -lsodium -lcrypto
ifeq ($(STATIC),1)
LDLIBS  += -Wl,-Bstatic $(RFLIBS) -Wl,-Bdynamic
else
LDLIBS  += $(RFLIBS)
endif

# The programs every remote fork execs, as the program's own user, are linked
# at a fixed address: a position-independent one has the loader apply some
# 16700 relocations (OpenSSL's tables) at each start, 0.15-0.2 ms here
# (README "Libraries").  rf-server, rf-recv, rf-restore keep PIE (ASLR).
FORKPATH         = rf-snap rf-send rf-stub
FORKPATH_LDFLAGS = -no-pie
# rf-server forks for every connection and every remote child (handler, pid
# namespace, proxy, the child itself): bound at its start, those processes
# do not each resolve the same libc symbols again on first call, faulting
# in the loader's and the symbol tables' pages.  0.15 ms of CPU less per
# remote fork here (docs/FORK.md "Cost").
BINDNOW          = rf-server
BINDNOW_LDFLAGS  = -Wl,-z,now

# Flags for code that runs inside a process being rebuilt (lib/restorer/):
# no libc, no stack protector, position independent, no tables needing relocation.
BLOB_CFLAGS = -std=gnu11 -O2 -Wall -Wextra -Wno-unused-parameter -D_GNU_SOURCE -Ilib \
	-ffreestanding -fno-builtin -fno-stack-protector -fno-stack-clash-protection \
	-fcf-protection=none -fPIE -fno-plt -fno-jump-tables -fno-asynchronous-unwind-tables \
	-fno-unwind-tables -fno-exceptions -mno-red-zone -fvisibility=hidden -nostdlib

# Debian packages the build, the tests and the demo need (sh/install-deps).
DEB_BUILD = gcc make libc6-dev binutils libbsd-dev libjansson-dev libxxhash-dev liblz4-dev libsodium-dev libssl-dev
DEB_TEST  = bats jq socat iproute2 util-linux procps python3 perl xxd strace
