/*
 * LEB128 varints and zigzag, shared by the recorder's encoder and the
 * reader's decoder.  Encoders need at most MT_VARINT_MAX bytes of room and
 * never fail; decoders never read past `end` and report malformed input.
 * Async-signal-safe: no allocation, no global state.
 */
#ifndef MT_TRACE_VARINT_H
#define MT_TRACE_VARINT_H

#include <stdint.h>
#include <stddef.h>

#define MT_VARINT_MAX 10  /* bytes for a 64-bit value */

static inline uint64_t mt_zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static inline int64_t mt_unzigzag(uint64_t u) { return (int64_t)(u >> 1) ^ -(int64_t)(u & 1); }

/* Writes v at p; returns the byte after it. */
static inline uint8_t *mt_put_varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

static inline uint8_t *mt_put_svarint(uint8_t *p, int64_t v) { return mt_put_varint(p, mt_zigzag(v)); }

/*
 * Reads a varint from *pp (not past end) into *v and advances *pp.
 * Returns 0, or -1 when the input ends inside the value or it is longer
 * than 10 bytes (then *pp and *v are unspecified).
 */
static inline int mt_get_varint(const uint8_t **pp, const uint8_t *end, uint64_t *v)
{
	const uint8_t *p = *pp;
	if (p < end && *p < 0x80) {  /* the common one-byte case */
		*v = *p;
		*pp = p + 1;
		return 0;
	}
	uint64_t r = 0;
	for (unsigned shift = 0; shift < 70 && p < end; shift += 7) {
		uint8_t b = *p++;
		r |= (uint64_t)(b & 0x7f) << shift;
		if (b < 0x80) {
			*v = r;
			*pp = p;
			return 0;
		}
	}
	return -1;
}

static inline int mt_get_svarint(const uint8_t **pp, const uint8_t *end, int64_t *v)
{
	uint64_t u;
	if (mt_get_varint(pp, end, &u))
		return -1;
	*v = mt_unzigzag(u);
	return 0;
}

#endif
