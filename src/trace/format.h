/*
 * Trace format v1: constants and record layouts shared by the recorder
 * (src/record) and the reader (src/trace/reader.c).  docs/trace-format.md is
 * the prose specification; this header is its executable half.  Keep both in
 * step: any change here that an old reader could misread bumps
 * MT_FORMAT_MAJOR.
 *
 * All multi-byte fixed-width integers are little-endian.  "varint" is
 * unsigned LEB128 (7 bits per byte, low group first, at most 10 bytes for
 * 64 bits); "svarint" is a zigzag-encoded signed value in a varint.
 */
#ifndef MT_TRACE_FORMAT_H
#define MT_TRACE_FORMAT_H

#include <stdint.h>

/* ---- file header: 32 bytes, uncompressed, at offset 0 ---------------- */
#define MT_FILE_MAGIC        "MEMTRACE"   /* 8 bytes, no terminator */
#define MT_FORMAT_MAJOR      1            /* readers reject any other major */
#define MT_FORMAT_MINOR      0            /* new minors only add record kinds */
#define MT_FILE_HEADER_SIZE  32

/* flags in the file header */
#define MT_FILE_TSC          0x1u  /* timestamps are x86 TSC ticks, mapped to ns by MT_REC_CLOCK */

struct mt_file_header {
	char     magic[8];      /* MT_FILE_MAGIC */
	uint16_t major;         /* MT_FORMAT_MAJOR */
	uint16_t minor;         /* MT_FORMAT_MINOR */
	uint32_t header_size;   /* MT_FILE_HEADER_SIZE; later minors may grow it */
	uint64_t flags;         /* MT_FILE_* */
	uint64_t reserved;      /* 0 */
};

/* ---- blocks: the unit of compression and of truncation ---------------- */
/*
 * After the file header come blocks.  Each is a 16-byte header followed by
 * comp_size bytes holding exactly one zstd frame (with content checksum)
 * that decompresses to raw_size bytes of records.  A block is complete when
 * all its bytes are present and the frame's checksum holds; a trace whose
 * last block is incomplete was cut (crash, SIGKILL) and is read up to the
 * block before.
 */
#define MT_BLOCK_MAGIC       0x4b42544du  /* "MTBK" read as little-endian u32 */
#define MT_BLOCK_HEADER_SIZE 16
#define MT_BLOCK_RAW_MAX     (8u << 20)   /* bytes; larger is corrupt */

struct mt_block_header {
	uint32_t magic;      /* MT_BLOCK_MAGIC */
	uint32_t comp_size;  /* bytes of zstd frame that follow */
	uint32_t raw_size;   /* bytes after decompression, <= MT_BLOCK_RAW_MAX */
	uint32_t check;      /* mt_block_check(magic, comp_size, raw_size) */
};

/* Header checksum: catches a torn or foreign header before we trust sizes. */
static inline uint32_t mt_block_check(uint32_t magic, uint32_t comp, uint32_t raw)
{
	uint32_t h = 2166136261u;
	h = (h ^ magic) * 16777619u;
	h = (h ^ comp) * 16777619u;
	h = (h ^ raw) * 16777619u;
	return h;
}

/* ---- records inside a block -------------------------------------------- */
/*
 * Every record but MT_REC_EVENTS is: u8 kind, varint payload_len, payload.
 * A reader skips kinds it does not know (that is what minors may add).
 * MT_REC_EVENTS has a fixed-width header (struct mt_events_header, packed,
 * 40 bytes including the kind byte) so the recorder can fill it in place
 * when a thread buffer is flushed, and so the reader's first pass can index
 * chunks without decoding them.  A record never spans two blocks.
 */
enum mt_rec_kind {
	MT_REC_PROCESS       = 1,  /* varint pid, varint ppid, varint64 realtime_ns at start,
	                              str exe, varint argc, str argv[argc], varint page_size */
	MT_REC_CLOCK         = 2,  /* varint64 ticks, varint64 monotonic_ns, varint64 realtime_ns */
	MT_REC_MODULE        = 3,  /* varint module_id, varint64 ticks, varint64 load_bias, str path,
	                              str build_id (raw bytes, may be empty), varint nseg,
	                              nseg x (varint64 start_addr, varint64 size, varint p_flags) */
	MT_REC_MODULE_UNLOAD = 4,  /* varint module_id, varint64 ticks */
	MT_REC_THREAD        = 5,  /* varint thread_idx, varint os_tid, varint64 ticks, str name */
	MT_REC_THREAD_EXIT   = 6,  /* varint thread_idx, varint64 ticks */
	MT_REC_THREAD_NAME   = 7,  /* varint thread_idx, str name */
	MT_REC_EVENTS        = 8,  /* struct mt_events_header, then events (below) */
	MT_REC_SAMPLE        = 9,  /* varint64 ticks, varint n, n x (varint key, varint64 value) */
	MT_REC_MARKER        = 10, /* varint64 ticks, varint thread_idx, varint kind (0 mark,
	                              1 request begin, 2 request end), varint64 arg (request id),
	                              str label, varint64 arg2 (request payload bytes) */
	MT_REC_STATS         = 11, /* varint n, n x (varint key, varint64 value): recorder overhead */
	MT_REC_END           = 12, /* varint64 ticks, varint reason (enum mt_end_reason) */
	MT_REC_MALLOC_INFO   = 13, /* varint64 ticks, str xml: glibc's malloc_info(3) output,
	                              per-arena free chunks by size (glibc only) */
};

enum mt_end_reason {
	MT_END_EXIT = 0,   /* the process called exit() or returned from main */
	MT_END_EXEC = 1,   /* the process called execve(); the new image is not recorded */
};

/* Fixed header of an MT_REC_EVENTS record; the events follow immediately. */
struct mt_events_header {
	uint8_t  kind;        /* MT_REC_EVENTS */
	uint32_t len;         /* bytes of events after this header */
	uint32_t thread_idx;  /* recorder's thread index (see MT_REC_THREAD) */
	uint32_t n_events;    /* events in this chunk, MT_EV_NODE included */
	uint64_t t_first;     /* ticks of the first timed event (base for deltas) */
	uint64_t t_last;      /* ticks of the last timed event */
	uint64_t first_seq;   /* per-thread index of the first event: a gap means loss */
	uint8_t  pad[3];      /* in a file: pad[0] is the pointer mode (columns.h); else 0 */
} __attribute__((packed));
#define MT_EVENTS_HEADER_SIZE 40

/*
 * Events of one thread chunk in ROW form: what a recording thread appends.
 * Files hold chunks in COLUMN form instead (src/trace/columns.h transposes
 * them; docs/trace-format.md, "Event chunks").  Each row starts
 * with a tag byte.  Deltas restart at every chunk: time from t_first,
 * pointers from 0, node ids from 0, node ips from 0.
 *
 *  alloc tags (MT_EV_MALLOC .. MT_EV_PVALLOC, not MT_EV_REALLOC):
 *        varint dt, varint size_bytes, varint stack_id, svarint (ptr - prev_ptr)
 *        ptr 0 means the call failed (returned NULL); size is the request
 *        (calloc: nmemb*size).  The time is taken after the allocator returned.
 *  MT_EV_REALLOC, MT_EV_REALLOCARRAY:
 *        varint dt_before, svarint (old_ptr - prev_ptr), varint dt_after,
 *        varint size_bytes, varint stack_id, svarint (new_ptr - old_ptr)
 *        The free half is stamped before the call, the allocation half after.
 *        old 0: behaves as malloc.  new 0 and size 0: old was freed.  new 0
 *        and size > 0: the call failed and old is still live.
 *  MT_EV_FREE: varint dt, svarint (ptr - prev_ptr); stamped before the free.
 *        free(NULL) is not recorded.
 *  MT_EV_NODE: svarint (id - prev_id), svarint (id - parent_id),
 *        svarint (ip - prev_ip).  Defines call-stack trie node `id` as frame
 *        `ip` (a return address, or the faulting pc for the innermost frame)
 *        called from node `parent_id` (0 = root).  A stack id in an alloc
 *        event names the innermost node.  A node may be defined more than
 *        once (the recorder's dedup cache is bounded); definitions never
 *        conflict.  Defined before first use in the same thread, but another
 *        thread may use it in an earlier chunk: resolve ids after reading.
 *
 * prev_ptr is the last pointer written in the chunk (free ptr, alloc ptr,
 * or realloc new_ptr).  Timestamps of one thread never decrease.
 */
enum mt_ev_tag {
	MT_EV_MALLOC         = 1,
	MT_EV_CALLOC         = 2,
	MT_EV_REALLOC        = 3,
	MT_EV_REALLOCARRAY   = 4,
	MT_EV_POSIX_MEMALIGN = 5,
	MT_EV_ALIGNED_ALLOC  = 6,
	MT_EV_MEMALIGN       = 7,
	MT_EV_VALLOC         = 8,
	MT_EV_PVALLOC        = 9,
	MT_EV_FREE           = 16,
	MT_EV_NODE           = 32,
};
#define MT_N_ALLOC_FUNCS 10  /* index 1..9 above; 0 unused */

/* ---- sample and stats keys (MT_REC_SAMPLE, MT_REC_STATS) --------------- */
enum mt_sample_key {
	MT_S_RSS_BYTES = 1,       /* resident set size: /proc/self/status VmRSS */
	MT_S_RSS_ANON_BYTES,      /* /proc/self/status RssAnon (anonymous pages) */
	MT_S_RSS_FILE_BYTES,      /* /proc/self/status RssFile (file-backed pages) */
	MT_S_RSS_SHMEM_BYTES,     /* /proc/self/status RssShmem (shared memory) */
	MT_S_VMHWM_BYTES,         /* /proc/self/status VmHWM */
	MT_S_VMPEAK_BYTES,        /* /proc/self/status VmPeak */
	MT_S_THREADS,             /* /proc/self/status Threads */
	MT_S_RECORDER_BYTES,      /* recorder's own mapped memory (an upper bound of its share of RSS) */
	MT_S_MI_ARENA = 32,       /* mallinfo2() fields (glibc only; every sample unless slow): bytes, */
	MT_S_MI_ORDBLKS,          /* ordblks and hblks are counts */
	MT_S_MI_HBLKS,
	MT_S_MI_HBLKHD,
	MT_S_MI_UORDBLKS,
	MT_S_MI_FORDBLKS,
	MT_S_MI_KEEPCOST,
	MT_S_CG_CURRENT = 48,     /* cgroup memory.current (v2) or memory.usage_in_bytes (v1), bytes */
	MT_S_CG_MAX,              /* memory.max (v2) or memory.limit_in_bytes (v1); absent = unlimited */
	MT_S_TRIM_RSS_BEFORE = 64,/* trim probe: VmRSS just before malloc_trim(0), bytes */
	MT_S_TRIM_RSS_AFTER,      /* trim probe: VmRSS just after it, bytes */
};

enum mt_stats_key {
	MT_ST_EVENTS = 1,         /* events recorded (alloc + free + node) */
	MT_ST_BYTES_RAW,          /* bytes of records before compression */
	MT_ST_BYTES_WRITTEN,      /* bytes written to the trace file */
	MT_ST_RECORDER_PEAK_BYTES,/* recorder's own memory at its peak */
	MT_ST_THREADS,            /* threads that ever reached a hook */
	MT_ST_NODES,              /* call-stack trie nodes defined */
	MT_ST_UNWIND_NS,          /* reserved: time spent capturing stacks */
	MT_ST_DROPPED,            /* small records (threads, modules, markers, samples) dropped when
	                             the writer had no room for them in time (writer.c) */
};

#endif
