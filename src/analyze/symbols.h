/*
 * Offline symbolization of recorded instruction addresses with elfutils
 * libdw: function (demangled C++ and Rust names), file:line, and the chain
 * of inlined frames.  Works from the module list of a trace (path, load
 * bias, build-id); a module whose file is missing or changed (build-id
 * mismatch) resolves to "module+0xoffset".
 *
 * Not thread-safe.  Strings returned are owned by the symbolizer and live
 * until mt_symbolizer_free().
 */
#ifndef MT_ANALYZE_SYMBOLS_H
#define MT_ANALYZE_SYMBOLS_H

#include <stddef.h>
#include <stdint.h>
#include "trace/reader.h"

struct mt_frame {
	uint64_t ip;            /* the ip passed to mt_symbolize (before any - 1) */
	const char *function;   /* demangled; never NULL.  "??" when no module covers ip (or
	                           an inlined frame has no name); "module+0xoffset" when a
	                           module covers ip but its file is missing, changed
	                           (build-id mismatch) or has no symbol there.  offset is the
	                           ELF address (ip - load bias): `addr2line -e module 0xoffset` */
	const char *file;       /* source file, NULL when unknown */
	int line;               /* 0 when unknown */
	int inlined;            /* 1: this frame was inlined into the next one in the array */
	const char *module;     /* basename of the module, NULL when no module covers ip */
};

/* Most frames (inline chain plus real function) mt_symbolize writes for one ip. */
#define MT_SYM_MAX_FRAMES 32

struct mt_symbolizer;

/*
 * Builds a symbolizer over mods[0..n) (borrowed; must outlive it). NULL on
 * out of memory.  A module's file is opened on the first ip inside it
 * (now, for a module recorded without segments: its extent comes from the
 * file).  Segment starts are runtime addresses (load_bias + p_vaddr).
 * Separate debug files are searched like elfutils' tools do: beside the
 * file, under .debug/, and by build-id under /usr/lib/debug.
 */
struct mt_symbolizer *mt_symbolizer_new(const struct mt_module *mods, size_t n);

/*
 * Resolves ip into out[0..max): innermost inlined frame first, the real
 * (outer) function last.  is_return_address: ip is a return address
 * (every frame but the innermost of a captured stack), so the call
 * instruction is at ip - 1.  Returns the number of frames written (>= 1
 * when max >= 1; 0 when s or out is NULL or max <= 0).  At most
 * MT_SYM_MAX_FRAMES frames exist per ip; when max is smaller, the
 * innermost max - 1 frames are written and the real function last.
 * Every frame's ip is the ip passed in.  Results are cached per
 * (ip, is_return_address).  Garbage addresses, missing or stripped files
 * never fail: they yield "??" or "module+0xoffset" frames.
 */
int mt_symbolize(struct mt_symbolizer *s, uint64_t ip, int is_return_address,
                 struct mt_frame *out, int max);

/*
 * Demangles an Itanium C++ name ("_ZN3foo3barEv" -> "foo::bar()") or a
 * Rust name, legacy ("_ZN4core3ptr13drop_in_place17h0123456789abcdefE" ->
 * "core::ptr::drop_in_place", hash dropped) or v0 ("_R..."), with
 * libiberty.  Returns buf holding the result, truncated to len - 1 bytes
 * and NUL-terminated; returns `mangled` itself (NULL for NULL) when it is
 * not a mangled name, demangling fails, or len is 0.  Exits the process if
 * memory runs out (libiberty's xmalloc).
 */
const char *mt_demangle(const char *mangled, char *buf, size_t len);

/* Frees the symbolizer and every string it returned. NULL is a no-op. */
void mt_symbolizer_free(struct mt_symbolizer *s);

#endif
