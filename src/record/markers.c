/*
 * The markers API's recorder side (include/memtriage.h): each call becomes
 * one MT_REC_MARKER record, stamped like an event so the analyzer can
 * place it among the allocations.  Exported under the names the header
 * declares weak, so programs find them when the recorder is preloaded.
 */
#include <string.h>
#include "record.h"

#define MT_LABEL_MAX 200  /* = MEMTRIAGE_LABEL_MAX in include/memtriage.h */

enum mt_marker_kind { MT_MARK = 0, MT_REQUEST_BEGIN = 1, MT_REQUEST_END = 2 };

/* Payload: ticks, thread, kind, arg, label, then arg2 (a minor-version field after the label). */
static void marker(enum mt_marker_kind kind, uint64_t arg, uint64_t arg2, const char *label)
{
	if (mt_state != MT_RECORDING)
		return;
	struct mt_thread *t = mt_self ? mt_self : mt_thread_attach();
	uint8_t rec[MT_LABEL_MAX + 64], *p = rec;
	p = mt_put_varint(p, mt_ticks_after());
	p = mt_put_varint(p, t ? t->idx : 0);
	p = mt_put_varint(p, kind);
	p = mt_put_varint(p, arg);
	p = mt_put_str(p, label ? label : "", MT_LABEL_MAX);
	p = mt_put_varint(p, arg2);
	mt_writer_record(MT_REC_MARKER, rec, (size_t)(p - rec));
	if (kind == MT_MARK)
		mt_writer_malloc_info_now();  /* the arenas at each phase boundary */
	if (mt_trim_probe == 2 && kind == MT_MARK) {
		mt_depth++;  /* malloc_trim's own work is not the program's */
		mt_writer_trim_probe();
		mt_depth--;
	}
}

MT_EXPORT void memtriage_mark(const char *label)
{
	marker(MT_MARK, 0, 0, label);
}

MT_EXPORT void memtriage_request_begin(uint64_t id, uint64_t payload_bytes)
{
	marker(MT_REQUEST_BEGIN, id, payload_bytes, NULL);
}

MT_EXPORT void memtriage_request_end(uint64_t id)
{
	marker(MT_REQUEST_END, id, 0, NULL);
}
