/*
 * memtriage.h: markers for memtriage recordings.
 *
 * Label what your program is doing so that a memtriage report can split its
 * memory by phase, cycle, request or code path: snapshots of the live heap at
 * each mark, and per-request growth and retention.
 *
 *     #include <memtriage.h>
 *     memtriage_mark("cycle 2");                 // a phase boundary
 *     memtriage_request_begin(req_id, n_bytes);  // a request and its payload size
 *     ...
 *     memtriage_request_end(req_id);
 *
 * When the program does not run under the recorder (`memtriage run` preloads
 * libmemtriage.so), every call is a no-op costing one predictable branch:
 * the functions below are static inline wrappers that call the recorder's
 * entry points through weak references, which are NULL when it is absent.
 * No link flag is needed (`pkg-config --cflags memtriage` gives the include
 * path).  Python and other languages call the same entry points by name
 * through the C ABI (ctypes: CDLL(None).memtriage_mark), see
 * examples/markers.py.
 *
 * Thread-safe: call from any thread.  Not async-signal-safe (the recorder
 * may wait briefly for room in its buffer).  Strings are copied; labels
 * longer than MEMTRIAGE_LABEL_MAX bytes are truncated.  Each call costs
 * about a microsecond under the recorder: mark phases and requests, not
 * every function call.
 */
#ifndef MEMTRIAGE_H
#define MEMTRIAGE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MEMTRIAGE_LABEL_MAX 200  /* bytes of a label kept in the trace */

/* The recorder's entry points (libmemtriage.so); weak: NULL without it. */
extern void memtriage_mark(const char *label) __attribute__((weak));
extern void memtriage_request_begin(uint64_t id, uint64_t payload_bytes) __attribute__((weak));
extern void memtriage_request_end(uint64_t id) __attribute__((weak));

/* Records a marker: `label` names the phase that starts now ("warm-up", "cycle 3"). */
static inline void memtriage_mark_(const char *label)
{
	if (memtriage_mark)
		memtriage_mark(label);
}

/*
 * A request `id` (any value unique among requests in flight) starts on this
 * thread, carrying payload_bytes of input; used for per-request retention
 * (growth / payload).
 */
static inline void memtriage_request_begin_(uint64_t id, uint64_t payload_bytes)
{
	if (memtriage_request_begin)
		memtriage_request_begin(id, payload_bytes);
}

/* The request `id` is complete. */
static inline void memtriage_request_end_(uint64_t id)
{
	if (memtriage_request_end)
		memtriage_request_end(id);
}

/* Call sites use the plain names; the macros route them through the guards. */
#define memtriage_mark(label) memtriage_mark_(label)
#define memtriage_request_begin(id, bytes) memtriage_request_begin_(id, bytes)
#define memtriage_request_end(id) memtriage_request_end_(id)

#ifdef __cplusplus
}
#endif

#endif
