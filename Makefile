# rfork.  make (build), make check (tests), make demo, make install.  See README.
include config.mk

LIB_SRC  := $(wildcard lib/*.c)
LIB_OBJ  := $(LIB_SRC:lib/%.c=build/lib/%.o)
BLOB_SRC := $(wildcard lib/restorer/*.c)
PROGS    := $(patsubst bin/%.c,build/bin/%,$(wildcard bin/rf-*.c))
SCRIPTS  := $(wildcard sh/rf-*[!1])
MANS     := $(wildcard bin/*.1 sh/*.1)
VICTIMS  := $(patsubst tests/victims/%.c,build/tests/%,$(wildcard tests/victims/*.c))
BENCHES  := $(patsubst bench/%.c,build/bench/%,$(wildcard bench/*.c))
DEMOS    := $(patsubst demo/%.c,build/demo/%,$(wildcard demo/*.c))
HDRS     := $(wildcard lib/*.h lib/restorer/*.h)
PRELOAD  := $(wildcard lib/preload/*.c)

all: $(PROGS) build/lib/librfork.so $(VICTIMS) $(BENCHES) $(DEMOS) build/tests/reaper build/tests/imgtool build/tests/netpeer build/tests/fwdrun build/tests/forkwire build/tests/chanx

build/lib/%.o: lib/%.c $(HDRS) config.mk
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

build/librf.a: $(LIB_OBJ) $(if $(BLOB_SRC),build/lib/restorer_blob.o)
	rm -f $@
	ar rcs $@ $^

# The preload library of rf-run: small, only libc, nothing exported but fork
# and mmap.
build/lib/librfork.so: $(PRELOAD) $(wildcard lib/preload/*.h) $(HDRS) config.mk
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -fPIC -fvisibility=hidden -shared -Wl,-z,defs -o $@ $(PRELOAD)

# The restorer runs inside the process being rebuilt, after everything else of
# the address space is gone: one freestanding, position-independent blob,
# linked at 0 and embedded into librf.a as bytes (lib/restorer/blob.lds).
build/restorer/%.o: lib/restorer/%.c $(HDRS) config.mk
	@mkdir -p $(@D)
	$(CC) $(BLOB_CFLAGS) -c -o $@ $<
build/restorer/blob.elf: $(BLOB_SRC:lib/restorer/%.c=build/restorer/%.o) lib/restorer/blob.lds
	ld -nostdlib -static -T lib/restorer/blob.lds -o $@ $(filter %.o,$^)
	@! readelf -r $@ | grep -q 'R_X86_64' || { echo "restorer blob needs relocations" >&2; exit 1; }
build/restorer/blob.bin: build/restorer/blob.elf
	objcopy -O binary $< $@
build/lib/restorer_blob.o: build/restorer/blob.bin
	printf '\t.section .rodata\n\t.balign 4096\n\t.globl rf_restorer_blob, rf_restorer_blob_end\nrf_restorer_blob:\n\t.incbin "%s"\nrf_restorer_blob_end:\n\t.section .note.GNU-stack,"",@progbits\n' $< > build/restorer/blob.S
	$(CC) -c -o $@ build/restorer/blob.S

build/bin/%: bin/%.c build/librf.a $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(if $(filter $*,$(FORKPATH)),$(FORKPATH_LDFLAGS)) \
	    $(if $(filter $*,$(BINDNOW)),$(BINDNOW_LDFLAGS)) -o $@ $< build/librf.a $(LDLIBS)

build/tests/%: tests/victims/%.c tests/victims/victim.h tests/victims/forkreport.h lib/rf_image.h lib/rf.h
	@mkdir -p $(@D)
	$(CC) -std=gnu11 -O1 -g -Wall -D_GNU_SOURCE -Ilib -o $@ $< -lm

# Programs `make demo` runs: plain C, nothing of rfork in them.
build/demo/%: demo/%.c config.mk
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $<

build/tests/reaper: tests/reaper.c
	@mkdir -p $(@D)
	$(CC) -std=gnu11 -O1 -Wall -D_GNU_SOURCE -o $@ $< -lbsd

build/tests/imgtool: tests/imgtool.c build/librf.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< build/librf.a $(LDLIBS)

build/tests/netpeer: tests/netpeer.c build/librf.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< build/librf.a $(LDLIBS)

build/tests/fwdrun: tests/fwdrun.c build/librf.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< build/librf.a $(LDLIBS)

build/tests/forkwire: tests/forkwire.c build/librf.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< build/librf.a $(LDLIBS)

build/tests/chanx: tests/chanx.c build/librf.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< build/librf.a $(LDLIBS)

build/bench/%: bench/%.c bench/bench.h build/librf.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< build/librf.a $(LDLIBS)

deps:
	@sh/install-deps $(DEB_BUILD)
deps-test:
	@sh/install-deps $(DEB_BUILD) $(DEB_TEST)

check: deps-test
	@$(MAKE) --no-print-directory all
	@tests/run

demo: deps-test
	@$(MAKE) --no-print-directory all
	@sh/demo

bench: all
	@bench/run

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANPREFIX)/man1
	install -m 755 $(PROGS) $(SCRIPTS) $(DESTDIR)$(BINDIR)
	install -m 644 $(MANS) $(DESTDIR)$(MANPREFIX)/man1
	install -d $(DESTDIR)$(LIBDIR)
	install -m 755 build/lib/librfork.so $(DESTDIR)$(LIBDIR)

uninstall:
	cd $(DESTDIR)$(BINDIR) && rm -f $(notdir $(PROGS) $(SCRIPTS))
	cd $(DESTDIR)$(MANPREFIX)/man1 && rm -f $(notdir $(MANS))
	rm -f $(DESTDIR)$(LIBDIR)/librfork.so

clean:
	rm -rf build

.PHONY: all deps deps-test check demo bench install uninstall clean
.SECONDARY:
