/*
 * DWARF-CFI stack unwinder for x86-64; contract and sources in unwind.h.
 *
 * Three layers, cheapest first:
 *
 * 1. Memo (per thread).  The previous capture's frames are kept outermost
 *    first with the state each frame was reached in (pc, sp, rbp) and its
 *    rule, which says which stack words were read to leave it; memo_at
 *    finds a frame by its sp in one load.  When this capture reaches a
 *    frame the previous one had, and those words still hold the same
 *    values, every outer frame is the same: unwinding is a pure function
 *    of (pc, sp, rbp) and the words it reads.  rbp only counts where an
 *    outer frame uses it before reloading it from a save slot
 *    (memo_need_rbp); without that, code that keeps a loop counter in rbp
 *    would never match.  Checking the words costs independent loads;
 *    unwinding costs a chain of dependent ones, so reuse is several times
 *    cheaper per frame.
 *
 * 2. Rule table (global).  Return address -> compact rule, one 64-bit
 *    word per entry so that a lock-free reader never sees half an entry.
 *    The set index is the address's low 16 bits, so the tag needs only
 *    pc >> 16 (32 bits for user addresses below 2^48), and the loop can
 *    load the index from the stack itself, in parallel with the address.
 *    Two ways, in two arrays (64 Ki words each) indexed directly; a new
 *    rule goes to way 0 and pushes way 0 to way 1.  Lives in .bss (1 MiB,
 *    of which only the lines of addresses seen are ever touched): no
 *    allocation, no initialisation, addressed RIP-relative.
 *
 * 3. Rule computation (a miss): _dl_find_object, the .eh_frame_hdr
 *    binary-search table, the CIE and the FDE, then the call-frame program
 *    run up to the return address.
 *
 * Equivalence with libunwind (x86_64/Gtrace.c, Gstash_frame.c,
 * dwarf/Gparser.c, 1.6): the first frame is the return address of the
 * capture call; each later frame uses the FDE and the CFI row that cover
 * the call, ra - 1 (a row may start at ra itself after a noreturn call:
 * 6 call sites in glibc 2.36, see tests/unwind/rulescan); a rule whose
 * return address or rbp is undefined ends the stack after its frame; a
 * return address below 0x4000 ends it before; anything outside the
 * "standard frame" form makes libunwind leave its fast path, and makes us
 * hand the whole capture to unw_backtrace.  One difference does not show
 * in results: we also fall back where libunwind would read outside the
 * stack.
 *
 * The memo's bookkeeping costs about twice per new frame what it saves per
 * reused frame, so each thread pauses it when its stacks share too few
 * frames from one capture to the next (memo_policy).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#define UNW_LOCAL_ONLY
#include <dlfcn.h>
#include <libunwind.h>
#include <pthread.h>
#include <string.h>
#include "unwind.h"

#define UW_LIKELY(x)   __builtin_expect(!!(x), 1)
#define UW_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define UW_COLD        __attribute__((noinline, cold))

/* ---- rule words ----------------------------------------------------------
 * Laid out so that the hot path decodes with single instructions:
 * bits  0..15  CFA offset / 8, signed (movswq; |offset| < 256 KiB)
 * bits 16..23  flags (one test): RF_BAD (not in the fast form, bits 24..31
 *              say why), RF_CFA_RBP (CFA = rbp + offset, else rsp +
 *              offset), RF_RBP_SAVED, RF_LAST (return address or rbp
 *              undefined: the stack ends with this frame)
 * bits 24..31  caller's rbp slot offset from the CFA / 8, signed
 * bits 32..63  tag: pc >> RULE_SET_BITS
 * A plain frame (CFA = rsp + offset, rbp saved or not) has no flag but
 * RF_RBP_SAVED; for those, rule_from_row has already checked that the
 * offsets keep every slot inside the frame, so the loop need not.
 */
#define RULE_SET_BITS 16
#define RULE_SETS     (1u << RULE_SET_BITS)
#define RF_BAD        (1u << 16)
#define RF_CFA_RBP    (1u << 17)
#define RF_RBP_SAVED  (1u << 18)
#define RF_LAST       (1u << 19)
#define RF_AUX_SHIFT  24
#define RF_TAG_SHIFT  32
#define MIN_PC        0x4000   /* libunwind's Gtrace.c: a lower ra ends the stack */
#define USER_PC_BITS  47

static uint64_t rule_way0[RULE_SETS] __attribute__((aligned(64)));
static uint64_t rule_way1[RULE_SETS] __attribute__((aligned(64)));
static uint32_t rule_gen = 1;
static uint64_t n_rule_misses, n_rule_unsupported;

static inline uint64_t rule_unsupported(unsigned why)
{
	return RF_BAD | (uint64_t)why << RF_AUX_SHIFT;
}

static inline unsigned rule_why(uint64_t e)
{
	return (unsigned)(e >> RF_AUX_SHIFT) & 0xff;
}

static inline int64_t rule_cfa_off8(uint64_t e)
{
	return (int16_t)e;
}

static inline int64_t rule_rbp_off(uint64_t e)
{
	return (int64_t)(int8_t)(e >> RF_AUX_SHIFT) * 8;
}

/* ---- reading .eh_frame data (LSB 10.5, 10.6) ------------------------------ */

/* A cursor over [p, end); err sticks once a read runs past end. */
struct rd {
	const uint8_t *p, *end;
	int err;
};

static uint8_t rd_u8(struct rd *r)
{
	if (r->p >= r->end) {
		r->err = 1;
		return 0;
	}
	return *r->p++;
}

/* Reads n <= 8 little-endian bytes. */
static uint64_t rd_fixed(struct rd *r, unsigned n)
{
	uint64_t v = 0;
	if ((size_t)(r->end - r->p) < n) {
		r->err = 1;
		r->p = r->end;
		return 0;
	}
	memcpy(&v, r->p, n);
	r->p += n;
	return v;
}

static void rd_skip(struct rd *r, uint64_t n)
{
	if ((uint64_t)(r->end - r->p) < n) {
		r->err = 1;
		r->p = r->end;
		return;
	}
	r->p += n;
}

static uint64_t rd_uleb(struct rd *r)
{
	uint64_t v = 0;
	for (unsigned shift = 0;; shift += 7) {
		uint8_t b = rd_u8(r);
		if (shift < 64)
			v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80) || r->err)
			return v;
	}
}

static int64_t rd_sleb(struct rd *r)
{
	uint64_t v = 0;
	unsigned shift = 0;
	uint8_t b;
	do {
		b = rd_u8(r);
		if (shift < 64)
			v |= (uint64_t)(b & 0x7f) << shift;
		shift += 7;
	} while ((b & 0x80) && !r->err);
	if (shift < 64 && (b & 0x40))
		v |= ~0ull << shift;
	return (int64_t)v;
}

/* DW_EH_PE_* (LSB 10.5.1). */
enum {
	PE_absptr = 0x00, PE_uleb128 = 0x01, PE_udata2 = 0x02, PE_udata4 = 0x03,
	PE_udata8 = 0x04, PE_sleb128 = 0x09, PE_sdata2 = 0x0a, PE_sdata4 = 0x0b,
	PE_sdata8 = 0x0c, PE_pcrel = 0x10, PE_datarel = 0x30, PE_indirect = 0x80,
	PE_omit = 0xff,
};

/*
 * Reads a pointer in encoding enc.  pcrel is relative to the field itself,
 * datarel to `datarel` (the .eh_frame_hdr start, the only place it is
 * used on x86-64).  text/func/aligned bases are not used by GNU tools on
 * x86-64 and are errors; indirect is an error too (we never need to follow
 * one: personality pointers are only skipped, with skip = 1).
 */
static uint64_t rd_ptr(struct rd *r, uint8_t enc, uint64_t datarel, int skip)
{
	uint64_t field = (uint64_t)(uintptr_t)r->p, v;
	switch (enc & 0x0f) {
	case PE_absptr: case PE_udata8: case PE_sdata8: v = rd_fixed(r, 8); break;
	case PE_udata2: v = rd_fixed(r, 2); break;
	case PE_sdata2: v = (uint64_t)(int64_t)(int16_t)rd_fixed(r, 2); break;
	case PE_udata4: v = rd_fixed(r, 4); break;
	case PE_sdata4: v = (uint64_t)(int64_t)(int32_t)rd_fixed(r, 4); break;
	case PE_uleb128: v = rd_uleb(r); break;
	case PE_sleb128: v = (uint64_t)rd_sleb(r); break;
	default: r->err = 1; return 0;
	}
	if (skip)
		return 0;
	switch (enc & 0x70) {
	case 0: break;
	case PE_pcrel: v += field; break;
	case PE_datarel: v += datarel; break;
	default: r->err = 1; return 0;
	}
	if (enc & PE_indirect)
		r->err = 1;
	return v;
}

/*
 * Finds the FDE that may cover pc in an .eh_frame_hdr (LSB 10.6.2):
 * version 1, three encodings, eh_frame_ptr, fde_count, then fde_count
 * sorted (initial location, FDE address) pairs.  Only the table encoding
 * GNU ld writes (datarel | sdata4) is searched; NULL otherwise.
 */
static const uint8_t *hdr_find_fde(const uint8_t *hdr, uint64_t pc)
{
	if (hdr[0] != 1 || hdr[3] != (PE_datarel | PE_sdata4))
		return NULL;
	struct rd r = { hdr + 4, hdr + 4 + 32, 0 };
	uint64_t base = (uint64_t)(uintptr_t)hdr;
	if (hdr[1] != PE_omit)
		(void)rd_ptr(&r, hdr[1], base, 1);   /* eh_frame_ptr: not needed */
	uint64_t count = hdr[2] == PE_omit ? 0 : rd_ptr(&r, hdr[2], base, 0);
	if (r.err || count == 0)
		return NULL;
	const uint8_t *tab = r.p;
	uint64_t lo = 0, hi = count;   /* find the last entry with start <= pc */
	while (hi - lo > 1) {
		uint64_t mid = lo + (hi - lo) / 2;
		int32_t start;
		memcpy(&start, tab + mid * 8, 4);
		if (base + (uint64_t)(int64_t)start <= pc)
			lo = mid;
		else
			hi = mid;
	}
	int32_t start, fde;
	memcpy(&start, tab + lo * 8, 4);
	memcpy(&fde, tab + lo * 8 + 4, 4);
	if (base + (uint64_t)(int64_t)start > pc)
		return NULL;
	return hdr + fde;
}

/* ---- CIE and FDE (DWARF 5 6.4.1, LSB 10.6.1) ------------------------------ */

struct cie {
	uint64_t caf;            /* code alignment factor */
	int64_t daf;             /* data alignment factor */
	uint64_t ra_reg;         /* return address column */
	uint8_t fde_enc;         /* 'R' */
	uint8_t signal;          /* 'S' */
	uint8_t has_z;           /* 'z': FDEs carry augmentation data */
	const uint8_t *insn, *insn_end;
};

struct fde {
	uint64_t pc_begin, pc_end;
	const uint8_t *insn, *insn_end;
};

/* Reads a length-prefixed record at p: sets r to its body; 0 or -1. */
static int record_open(const uint8_t *p, struct rd *r)
{
	uint32_t len32;
	memcpy(&len32, p, 4);
	if (len32 == 0)
		return -1;
	if (len32 != 0xffffffffu) {
		r->p = p + 4;
		r->end = r->p + len32;
	} else {
		uint64_t len64;
		memcpy(&len64, p + 4, 8);
		r->p = p + 12;
		r->end = r->p + len64;
	}
	r->err = 0;
	return 0;
}

/* Parses the augmentation data of a 'z' CIE (r after the string). */
static int cie_augmentation(struct rd *r, const char *aug, struct cie *c)
{
	uint64_t len = rd_uleb(r);
	if (r->err || len > (uint64_t)(r->end - r->p))
		return -1;
	const uint8_t *data_end = r->p + len;
	for (const char *a = aug + 1; *a; a++) {
		if (*a == 'R') {
			c->fde_enc = rd_u8(r);
		} else if (*a == 'P') {
			uint8_t enc = rd_u8(r);
			if ((enc & 0x70) == 0x50)   /* aligned: not used on x86-64 */
				return -1;
			(void)rd_ptr(r, enc, 0, 1);
		} else if (*a == 'L') {
			(void)rd_u8(r);
		} else if (*a == 'S') {
			c->signal = 1;
		} else {
			break;   /* unknown: its data is still skipped by length */
		}
	}
	if (r->err)
		return -1;
	r->p = data_end;
	return 0;
}

static int cie_parse(const uint8_t *p, struct cie *c)
{
	struct rd r;
	if (record_open(p, &r) < 0 || rd_fixed(&r, 4) != 0)   /* CIE id 0 in .eh_frame */
		return -1;
	uint8_t version = rd_u8(&r);
	const char *aug = (const char *)r.p;
	while (rd_u8(&r))
		;
	if (r.err || (version != 1 && version != 3 && version != 4))
		return -1;
	if (version == 4)
		(void)rd_fixed(&r, 2);   /* address_size, segment_selector_size */
	memset(c, 0, sizeof *c);
	c->caf = rd_uleb(&r);
	c->daf = rd_sleb(&r);
	c->ra_reg = version == 1 ? rd_u8(&r) : rd_uleb(&r);
	if (aug[0] == 'z') {
		c->has_z = 1;
		if (cie_augmentation(&r, aug, c) < 0)
			return -1;
	} else if (aug[0]) {
		return -1;   /* "eh" and other pre-'z' forms */
	}
	c->insn = r.p;
	c->insn_end = r.end;
	return r.err ? -1 : 0;
}

static int fde_parse(const uint8_t *p, struct cie *c, struct fde *f)
{
	struct rd r;
	if (record_open(p, &r) < 0)
		return -1;
	const uint8_t *id_field = r.p;
	uint32_t cie_off = (uint32_t)rd_fixed(&r, 4);
	if (cie_off == 0 || cie_parse(id_field - cie_off, c) < 0)
		return -1;
	f->pc_begin = rd_ptr(&r, c->fde_enc, 0, 0);
	f->pc_end = f->pc_begin + rd_ptr(&r, c->fde_enc & 0x0f, 0, 0);
	if (c->has_z) {   /* FDE augmentation data (the LSDA pointer): skipped */
		uint64_t len = rd_uleb(&r);
		rd_skip(&r, len);
	}
	f->insn = r.p;
	f->insn_end = r.end;
	return r.err ? -1 : 0;
}

/* ---- the call-frame program (DWARF 5 6.4.2) -------------------------------- */

#define NREGS       17   /* x86-64 DWARF 0..16; libunwind rejects higher ones */
#define DW_RBP      6
#define DW_RSP      7
#define DW_RA       16
#define STATE_DEPTH 8

enum how { H_SAME = 0, H_UNDEF, H_OFFSET, H_REG, H_OTHER };

struct row {
	int64_t cfa_off;
	uint64_t cfa_reg;
	uint8_t cfa_expr;
	uint8_t how[NREGS];
	int64_t off[NREGS];
};

struct vm {
	struct row cur, init;
	struct row saved[STATE_DEPTH];
	int depth;
	uint64_t loc, target;
	const struct cie *cie;
	unsigned why;   /* first reason the row cannot be used, 0 if none */
};

static void vm_fail(struct vm *vm, unsigned why)
{
	if (!vm->why)
		vm->why = why;
}

static void vm_set(struct vm *vm, uint64_t reg, enum how how, int64_t off)
{
	if (reg >= NREGS) {
		vm_fail(vm, MT_UNWIND_BAD_CFI);
		return;
	}
	vm->cur.how[reg] = (uint8_t)how;
	vm->cur.off[reg] = off;
}

static void vm_restore(struct vm *vm, uint64_t reg)
{
	if (reg >= NREGS) {
		vm_fail(vm, MT_UNWIND_BAD_CFI);
		return;
	}
	vm->cur.how[reg] = vm->init.how[reg];
	vm->cur.off[reg] = vm->init.off[reg];
}

/* Moves to loc + delta; returns 1 when that passes the target row. */
static int vm_advance(struct vm *vm, uint64_t delta)
{
	uint64_t next = vm->loc + delta * vm->cie->caf;
	if (next > vm->target)
		return 1;
	vm->loc = next;
	return 0;
}

static void vm_def_cfa(struct vm *vm, uint64_t reg, int64_t off)
{
	vm->cur.cfa_reg = reg;
	vm->cur.cfa_off = off;
	vm->cur.cfa_expr = 0;
}

/* Ops with a register operand that only describe other registers' rules. */
static void vm_reg_op(struct vm *vm, uint8_t op, struct rd *r)
{
	uint64_t reg = rd_uleb(r);
	int64_t daf = vm->cie->daf;
	switch (op) {
	case 0x05: vm_set(vm, reg, H_OFFSET, (int64_t)rd_uleb(r) * daf); break;  /* offset_extended */
	case 0x06: vm_restore(vm, reg); break;                                   /* restore_extended */
	case 0x07: vm_set(vm, reg, H_UNDEF, 0); break;                           /* undefined */
	case 0x08: vm_set(vm, reg, H_SAME, 0); break;                            /* same_value */
	case 0x09: (void)rd_uleb(r); vm_set(vm, reg, H_REG, 0); break;           /* register */
	case 0x10: case 0x16: rd_skip(r, rd_uleb(r)); vm_set(vm, reg, H_OTHER, 0); break; /* (val_)expr. */
	case 0x11: vm_set(vm, reg, H_OFFSET, rd_sleb(r) * daf); break;           /* offset_extended_sf */
	case 0x14: (void)rd_uleb(r); vm_set(vm, reg, H_OTHER, 0); break;         /* val_offset */
	case 0x15: (void)rd_sleb(r); vm_set(vm, reg, H_OTHER, 0); break;         /* val_offset_sf */
	case 0x2f: vm_set(vm, reg, H_OFFSET, -(int64_t)rd_uleb(r) * daf); break; /* GNU_negative_offset_extended */
	}
}

/* Runs one extended (low-6-bits = 0) opcode; returns 1 at the target. */
static int vm_op(struct vm *vm, uint8_t op, struct rd *r)
{
	int64_t daf = vm->cie->daf;
	uint64_t reg;
	switch (op) {
	case 0x00: return 0;                                             /* nop */
	case 0x01: {                                                     /* set_loc */
		uint64_t to = rd_ptr(r, vm->cie->fde_enc, 0, 0);
		if (to > vm->target)
			return 1;
		vm->loc = to;
		return 0;
	}
	case 0x02: return vm_advance(vm, rd_fixed(r, 1));                /* advance_loc1 */
	case 0x03: return vm_advance(vm, rd_fixed(r, 2));                /* advance_loc2 */
	case 0x04: return vm_advance(vm, rd_fixed(r, 4));                /* advance_loc4 */
	case 0x0a:                                                       /* remember_state */
		if (vm->depth == STATE_DEPTH)
			vm_fail(vm, MT_UNWIND_BAD_CFI);
		else
			vm->saved[vm->depth++] = vm->cur;
		return 0;
	case 0x0b:                                                       /* restore_state */
		if (vm->depth == 0)
			vm_fail(vm, MT_UNWIND_BAD_CFI);
		else
			vm->cur = vm->saved[--vm->depth];
		return 0;
	case 0x0c: reg = rd_uleb(r); vm_def_cfa(vm, reg, (int64_t)rd_uleb(r)); return 0;
	case 0x0d: vm->cur.cfa_reg = rd_uleb(r); vm->cur.cfa_expr = 0; return 0; /* def_cfa_register */
	case 0x0e: vm->cur.cfa_off = (int64_t)rd_uleb(r); return 0;      /* def_cfa_offset */
	case 0x0f: rd_skip(r, rd_uleb(r)); vm->cur.cfa_expr = 1; return 0; /* def_cfa_expression */
	case 0x12: reg = rd_uleb(r); vm_def_cfa(vm, reg, rd_sleb(r) * daf); return 0;
	case 0x13: vm->cur.cfa_off = rd_sleb(r) * daf; return 0;         /* def_cfa_offset_sf */
	case 0x2e: (void)rd_uleb(r); return 0;                           /* GNU_args_size */
	case 0x05: case 0x06: case 0x07: case 0x08: case 0x09: case 0x10:
	case 0x11: case 0x14: case 0x15: case 0x16: case 0x2f:
		vm_reg_op(vm, op, r);
		return 0;
	default:
		vm_fail(vm, MT_UNWIND_BAD_CFI);
		return 1;
	}
}

/* Runs instructions [p, end) until the row covering vm->target is complete. */
static void vm_run(struct vm *vm, const uint8_t *p, const uint8_t *end)
{
	struct rd r = { p, end, 0 };
	while (r.p < r.end && !vm->why) {
		uint8_t op = rd_u8(&r);
		uint8_t arg = op & 0x3f;
		int stop;
		switch (op >> 6) {
		case 1: stop = vm_advance(vm, arg); break;                               /* advance_loc */
		case 2: vm_set(vm, arg, H_OFFSET, (int64_t)rd_uleb(&r) * vm->cie->daf); stop = 0; break;
		case 3: vm_restore(vm, arg); stop = 0; break;                            /* restore */
		default: stop = vm_op(vm, op, &r); break;
		}
		if (r.err)
			vm_fail(vm, MT_UNWIND_BAD_CFI);
		if (stop)
			return;
	}
}

/* ---- from a row to a rule word ------------------------------------------- */

static uint64_t rule_from_row(const struct row *row, const struct cie *c)
{
	if (c->signal)
		return rule_unsupported(MT_UNWIND_SIGNAL_FRAME);
	if (c->ra_reg != DW_RA)
		return rule_unsupported(MT_UNWIND_RA_RULE);
	if (row->how[DW_RA] == H_UNDEF || row->how[DW_RBP] == H_UNDEF)
		return RF_LAST;
	if (row->cfa_expr)
		return rule_unsupported(MT_UNWIND_CFA_EXPR);
	if (row->cfa_reg != DW_RSP && row->cfa_reg != DW_RBP)
		return rule_unsupported(MT_UNWIND_CFA_REG);
	for (int i = 0; i < NREGS; i++)
		if (row->how[i] == H_OTHER)
			return rule_unsupported(MT_UNWIND_EXPR_RULE);
	if (row->how[DW_RA] != H_OFFSET || row->off[DW_RA] != -8)
		return rule_unsupported(MT_UNWIND_RA_RULE);
	if (row->how[DW_RSP] != H_SAME && row->how[DW_RSP] != H_UNDEF)
		return rule_unsupported(MT_UNWIND_RSP_RULE);
	int64_t off = row->cfa_off, roff = row->off[DW_RBP];
	int rsp_based = row->cfa_reg == DW_RSP;
	if (off % 8 || off < INT16_MIN * 8 || off > INT16_MAX * 8 || (rsp_based && off < 8))
		return rule_unsupported(MT_UNWIND_RANGE);
	uint64_t e = (uint16_t)(int16_t)(off / 8);
	if (!rsp_based)
		e |= RF_CFA_RBP;
	if (row->how[DW_RBP] == H_OFFSET) {
		/* The slot lies below the return address; for an rsp-based CFA
		 * also at or above the frame's sp (checked here, once). */
		if (roff % 8 || roff < -1024 || roff > -16 || (rsp_based && off + roff < 0))
			return rule_unsupported(MT_UNWIND_RBP_RULE);
		e |= RF_RBP_SAVED | (uint64_t)(uint8_t)(int8_t)(roff / 8) << RF_AUX_SHIFT;
	} else if (row->how[DW_RBP] != H_SAME) {
		return rule_unsupported(MT_UNWIND_RBP_RULE);
	}
	return e;
}

/*
 * Computes the rule (without tag) for return address ra: the FDE that
 * covers ra - 1, its row for address `row` (ra - 1; rulescan also asks
 * for ra, to find the call sites where the choice matters).
 */
static uint64_t rule_compute_at(uint64_t ra, uint64_t row)
{
	uint64_t pc = ra - 1;
	struct dl_find_object fo;
	if (ra >> USER_PC_BITS)
		return rule_unsupported(MT_UNWIND_BIG_PC);
	if (_dl_find_object((void *)(uintptr_t)pc, &fo) != 0 || !fo.dlfo_eh_frame)
		return rule_unsupported(MT_UNWIND_NO_FDE);
	const uint8_t *fde_p = hdr_find_fde(fo.dlfo_eh_frame, pc);
	struct cie cie;
	struct fde fde;
	if (!fde_p)
		return rule_unsupported(MT_UNWIND_NO_FDE);
	if (fde_parse(fde_p, &cie, &fde) < 0)
		return rule_unsupported(MT_UNWIND_BAD_CFI);
	if (pc < fde.pc_begin || pc >= fde.pc_end)
		return rule_unsupported(MT_UNWIND_NO_FDE);
	struct vm vm;
	memset(&vm, 0, sizeof vm);
	vm.cie = &cie;
	vm.target = UINT64_MAX;
	vm_run(&vm, cie.insn, cie.insn_end);
	vm.init = vm.cur;
	vm.depth = 0;
	vm.loc = fde.pc_begin;
	vm.target = row;
	vm_run(&vm, fde.insn, fde.insn_end);
	if (vm.why)
		return rule_unsupported(vm.why);
	return rule_from_row(&vm.cur, &cie);
}

static uint64_t rule_compute(uint64_t ra)
{
	return rule_compute_at(ra, ra - 1);
}

static UW_COLD uint64_t rule_miss(uint64_t pc)
{
	uint64_t e = rule_compute(pc);
	__atomic_fetch_add(&n_rule_misses, 1, __ATOMIC_RELAXED);
	if (e & RF_BAD)
		__atomic_fetch_add(&n_rule_unsupported, 1, __ATOMIC_RELAXED);
	uint64_t tag = pc >> RULE_SET_BITS;
	if (tag >> 32)
		return e;   /* uncacheable; its tag field stays 0 */
	e |= tag << RF_TAG_SHIFT;
	size_t i = pc & (RULE_SETS - 1);
	uint64_t old = __atomic_load_n(&rule_way0[i], __ATOMIC_RELAXED);
	if (old && (old >> RF_TAG_SHIFT) != tag)
		__atomic_store_n(&rule_way1[i], old, __ATOMIC_RELAXED);
	__atomic_store_n(&rule_way0[i], e, __ATOMIC_RELAXED);
	return e;
}

/*
 * The rule word for return address pc, whose low 16 bits are `set` (the
 * loop loads them from the stack on their own, in parallel with pc, which
 * takes an instruction off the chain of dependent loads).  A zero word
 * never matches: no user code lies below 2^16.
 */
static inline uint64_t rule_get(uint64_t pc, unsigned set)
{
	size_t i = set;
	uint64_t tag = pc >> RULE_SET_BITS;
	uint64_t e = __atomic_load_n(&rule_way0[i], __ATOMIC_RELAXED);
	if (UW_LIKELY(e >> RF_TAG_SHIFT == tag))
		return e;
	e = __atomic_load_n(&rule_way1[i], __ATOMIC_RELAXED);
	if (UW_LIKELY(e >> RF_TAG_SHIFT == tag))
		return e;
	return rule_miss(pc);
}

/* ---- memo ----------------------------------------------------------------- */

/* memo_at: frame sp -> memo depth + 1 (0: none), to find a match in O(1). */
static inline unsigned memo_at_slot(uint64_t sp)
{
	return (unsigned)(sp >> 3) & (MT_UNWIND_MEMO_AT - 1);
}

/* Progress of checking the memo's stack words during one capture. */
struct memo_check {
	int verified;   /* words of depths 1..verified hold their old values */
	int bad_from;   /* a word of this depth changed: no match at >= it */
	int end_done;   /* the word that ended the old stack was checked */
};

static inline uint64_t load_word(uint64_t addr)
{
	return *(const volatile uint64_t *)(uintptr_t)addr;
}

/* The low 16 bits of the word at addr, as a load of their own. */
static inline unsigned load_low16(uint64_t addr)
{
	return *(const volatile uint16_t *)(uintptr_t)addr;
}

/*
 * 1 if unwinding from memo depth d still reads what it read last time:
 * for each depth k in 1..d, the return address slot of frame k (just
 * below the sp of frame k-1, which is frame k's CFA) and, where frame
 * k-1's rbp matters, frame k's rbp save slot.  Independent loads.
 * Checked innermost first: when something changed, it is usually near the
 * top of the stack.
 */
static int memo_words_ok(const struct mt_unwind_thread *ut, int d, struct memo_check *mc)
{
	if (d >= mc->bad_from)
		return 0;
	if (!mc->end_done) {
		if (ut->end_addr && load_word(ut->end_addr) != ut->end_val) {
			mc->bad_from = 0;
			return 0;
		}
		mc->end_done = 1;
	}
	const struct mt_unwind_frame *m = ut->memo;
	for (int k = d; k > mc->verified; k--) {
		uint64_t cfa = m[k - 1].sp;
		if (load_word(cfa - 8) != m[k - 1].pc ||
		    ((m[k].rule & RF_RBP_SAVED) && ut->memo_need_rbp[k - 1] &&
		     load_word(cfa + (uint64_t)rule_rbp_off(m[k].rule)) != m[k - 1].rbp)) {
			mc->bad_from = k;
			return 0;
		}
	}
	mc->verified = d;
	return 1;
}

/* 1 if this capture's frame, with the pc and sp of memo frame d, is it. */
static int memo_match(const struct mt_unwind_thread *ut, int d, uint64_t rbp, struct memo_check *mc)
{
	return (!ut->memo_need_rbp[d] || ut->memo[d].rbp == rbp) && memo_words_ok(ut, d, mc);
}

/*
 * Appends cur[0..n) (innermost first) above memo depth base (-1: none).
 * A frame's rbp matters if its CFA is rbp-based, or if it does not restore
 * rbp and the next outer frame's rbp matters.
 */
static void memo_store(struct mt_unwind_thread *ut, int n, int base)
{
	unsigned need = base >= 0 ? ut->memo_need_rbp[base] : 0;
	for (int j = 0; j < n; j++) {
		const struct mt_unwind_frame *f = &ut->cur[n - 1 - j];
		int d = base + 1 + j;
		unsigned r = (unsigned)f->rule;
		need = ((r / RF_CFA_RBP) & 1) | (((~r / RF_RBP_SAVED) & 1) & need);   /* no branch */
		ut->memo[d] = *f;
		ut->memo_need_rbp[d] = (uint8_t)need;
		ut->memo_at[memo_at_slot(f->sp)] = (uint16_t)(d + 1);
	}
	ut->memo_n = (uint32_t)(base + 1 + n);
	ut->memo_gen = __atomic_load_n(&rule_gen, __ATOMIC_RELAXED);
}

/* ---- capture -------------------------------------------------------------- */

int mt_unwind_thread_init(struct mt_unwind_thread *ut)
{
	pthread_attr_t a;
	void *addr;
	size_t size;
	if (pthread_getattr_np(pthread_self(), &a) != 0) {
		ut->bounds_failed = 1;
		return -1;
	}
	int rc = pthread_attr_getstack(&a, &addr, &size);
	pthread_attr_destroy(&a);
	if (rc != 0 || !size) {
		ut->bounds_failed = 1;
		return -1;
	}
	ut->stack_lo = (uintptr_t)addr;
	ut->stack_hi = (uintptr_t)addr + size;
	return 0;
}

void mt_unwind_set_memo(struct mt_unwind_thread *ut, int on)
{
	ut->memo_off = !on;
	ut->memo_always = on == 2;
	ut->memo_rest = 0;
	ut->memo_score = 0;
	ut->memo_n = 0;
}

unsigned mt_unwind_explain(uint64_t ra)
{
	uint64_t e = rule_compute(ra);
	return e & RF_BAD ? rule_why(e) : MT_UNWIND_OK;
}

void mt_unwind_invalidate(void)
{
	__atomic_fetch_add(&rule_gen, 1, __ATOMIC_RELAXED);
	for (size_t i = 0; i < RULE_SETS; i++) {
		__atomic_store_n(&rule_way0[i], 0, __ATOMIC_RELAXED);
		__atomic_store_n(&rule_way1[i], 0, __ATOMIC_RELAXED);
	}
}

void mt_unwind_global_stats(struct mt_unwind_global_stats *out)
{
	out->rule_misses = __atomic_load_n(&n_rule_misses, __ATOMIC_RELAXED);
	out->rule_unsupported = __atomic_load_n(&n_rule_unsupported, __ATOMIC_RELAXED);
}

const char *mt_unwind_why_name(unsigned why)
{
	static const char *const names[MT_UNWIND_WHY_COUNT] = {
		[MT_UNWIND_OK] = "ok",
		[MT_UNWIND_NO_FDE] = "no FDE",
		[MT_UNWIND_BAD_CFI] = "bad or unknown CFI",
		[MT_UNWIND_SIGNAL_FRAME] = "signal frame",
		[MT_UNWIND_CFA_EXPR] = "CFA expression",
		[MT_UNWIND_CFA_REG] = "CFA register not rsp/rbp",
		[MT_UNWIND_RA_RULE] = "return address rule",
		[MT_UNWIND_RBP_RULE] = "rbp rule",
		[MT_UNWIND_RSP_RULE] = "rsp rule",
		[MT_UNWIND_EXPR_RULE] = "expression rule",
		[MT_UNWIND_RANGE] = "offset out of range",
		[MT_UNWIND_BIG_PC] = "address above 2^47",
		[MT_UNWIND_BOUNDS] = "outside the stack",
		[MT_UNWIND_OFF_STACK] = "not on the thread stack",
	};
	return why < MT_UNWIND_WHY_COUNT && names[why] ? names[why] : "?";
}

/*
 * The whole capture by libunwind.  unw_backtrace's list starts inside this
 * file; the frames from our return address ra0 on are the answer.
 */
static UW_COLD int capture_fallback(struct mt_unwind_thread *ut, uint64_t *ips, int max,
                                    uint64_t ra0, unsigned why, uint64_t pc)
{
	enum { SKIP_MAX = 8 };
	void *tmp[MT_UNWIND_MAX_FRAMES + SKIP_MAX];
	ut->memo_n = 0;
	ut->stats.fallbacks++;
	ut->stats.fallback_pc = pc;
	ut->stats.fallback_why = why;
	ut->stats.by_why[why < MT_UNWIND_WHY_COUNT ? why : 0]++;
	int got = unw_backtrace(tmp, max + SKIP_MAX);
	int s = 0;
	while (s < got && s < SKIP_MAX && (uint64_t)(uintptr_t)tmp[s] != ra0)
		s++;
	if (s >= got || s >= SKIP_MAX)
		return 0;
	int n = got - s < max ? got - s : max;
	for (int i = 0; i < n; i++)
		ips[i] = (uint64_t)(uintptr_t)tmp[s + i];
	ut->stats.frames += (uint64_t)n;
	return n;
}

/* Completes a capture that reached memo depth md after n new frames. */
static UW_COLD int capture_reuse(struct mt_unwind_thread *ut, uint64_t *ips, int max, int n,
                                 int md, uint64_t rbp, int *reused_outer)
{
	int total = n + md + 1;
	if (total > max) {   /* truncated: the outer ends are not comparable */
		for (int k = 0; n + k < max; k++)
			ips[n + k] = ut->memo[md - k].pc;
		ut->memo_n = 0;
		ut->stats.frames += (uint64_t)max;
		return max;
	}
	for (int k = 0; k <= md; k++)
		ips[n + k] = ut->memo[md - k].pc;
	ut->memo[md].rbp = rbp;
	memo_store(ut, n, md);
	*reused_outer = md + 1;
	ut->stats.memo_hits++;
	ut->stats.frames += (uint64_t)total;
	ut->stats.frames_reused += (uint64_t)(md + 1);
	return total;
}

/* Completes a capture of n frames; keeps it as the memo if `keep`. */
static int capture_done(struct mt_unwind_thread *ut, int n, int keep)
{
	if (keep)
		memo_store(ut, n, -1);
	else
		ut->memo_n = 0;
	ut->stats.frames += (uint64_t)n;
	return n;
}

/*
 * The unwinding loop, instantiated with and without the memo.
 *
 * State (pc, sp, rbp) of frame n: pc its return address, sp the stack
 * pointer after that return, rbp its rbp then.  Per frame: rule lookup,
 * CFA, caller's rbp (if saved), return address at CFA - 8.  That chain of
 * dependent loads (return address, rule, return address...) sets the
 * speed, so the common frame (rsp-based, checked when its rule was made)
 * takes the shortest path; rbp-based frames check their addresses here.
 */
static inline __attribute__((always_inline)) int
unwind_loop(struct mt_unwind_thread *ut, uint64_t *ips, int max, int *reused_outer,
            uint64_t ra0, uint64_t sp, uint64_t rbp, const int memo)
{
	const uint64_t hi = ut->stack_hi;
	const struct mt_unwind_frame *m = ut->memo;
	const unsigned memo_n = memo ? ut->memo_n : 0;
	struct memo_check mc = { 0, (int)memo_n, 0 };
	uint64_t pc = ra0;
	unsigned set = (unsigned)ra0 & (RULE_SETS - 1);
	for (int n = 0;; n++) {
		if (memo) {
			/* One branch, rarely taken: the slot names a memo frame with
			 * this sp and pc (slot 0 means none; d stays in the array). */
			unsigned d = (ut->memo_at[memo_at_slot(sp)] - 1u) & (MT_UNWIND_MAX_FRAMES - 1);
			int cand = (d < memo_n) & (m[d].sp == sp) & (m[d].pc == pc);
			if (UW_UNLIKELY(cand) && memo_match(ut, (int)d, rbp, &mc))
				return capture_reuse(ut, ips, max, n, (int)d, rbp, reused_outer);
		}
		if (UW_UNLIKELY(n == max))
			return capture_done(ut, n, 0);
		uint64_t e = rule_get(pc, set), cfa;
		if (memo) {
			struct mt_unwind_frame *f = &ut->cur[n];
			f->pc = pc;
			f->sp = sp;
			f->rbp = rbp;
			f->rule = e;
		}
		ips[n] = pc;
		if (UW_LIKELY(!(e & (RF_BAD | RF_CFA_RBP | RF_LAST)))) {
			cfa = sp + (uint64_t)(rule_cfa_off8(e) * 8);
			if (UW_UNLIKELY(cfa > hi))
				return capture_fallback(ut, ips, max, ra0, MT_UNWIND_BOUNDS, pc);
			if (e & RF_RBP_SAVED)
				rbp = load_word(cfa + (uint64_t)rule_rbp_off(e));
		} else {
			if (e & RF_BAD)
				return capture_fallback(ut, ips, max, ra0, rule_why(e), pc);
			if (e & RF_LAST) {
				ut->end_addr = 0;
				return capture_done(ut, n + 1, memo);
			}
			cfa = rbp + (uint64_t)(rule_cfa_off8(e) * 8);
			if (UW_UNLIKELY(cfa < sp + 8 || cfa > hi))
				return capture_fallback(ut, ips, max, ra0, MT_UNWIND_BOUNDS, pc);
			if (e & RF_RBP_SAVED) {
				uint64_t slot = cfa + (uint64_t)rule_rbp_off(e);
				if (UW_UNLIKELY(slot < sp))   /* slot <= cfa - 16: rule_from_row */
					return capture_fallback(ut, ips, max, ra0, MT_UNWIND_BOUNDS, pc);
				rbp = load_word(slot);
			}
		}
		pc = load_word(cfa - 8);
		set = load_low16(cfa - 8);
		sp = cfa;
		if (UW_UNLIKELY(pc < MIN_PC)) {
			ut->end_addr = cfa - 8;
			ut->end_val = pc;
			return capture_done(ut, n + 1, memo);
		}
	}
}

/*
 * Whether to keep a memo.  Keeping it costs about twice per new frame what
 * it saves per reused frame (measured: tests/unwind/README.md), so it pays
 * when at least two thirds of the frames are reused, as in deep recursion
 * or interpreters, and not when consecutive stacks differ in most frames.
 * Each memo capture scores reused - 2 * new frames into a decaying sum;
 * when the sum goes negative the thread captures without the memo for
 * MEMO_REST captures, then tries again (two captures: one to build, one to
 * use the memo).
 */
#define MEMO_REST 128

static void memo_policy(struct mt_unwind_thread *ut, int had_memo, int frames, int reused)
{
	if (!had_memo || ut->memo_always)
		return;
	ut->memo_score += reused - 2 * (frames - reused) - ut->memo_score / 8;
	if (ut->memo_score < 0) {
		ut->memo_score = 0;
		ut->memo_rest = MEMO_REST;
		ut->memo_n = 0;
		ut->stats.memo_rests++;
	}
}

/*
 * Entered from mt_unwind_capture (assembly, below) with the capture call's
 * stack pointer (pointing at its return address) and rbp, which are the
 * caller's registers at the call.
 */
__attribute__((used, visibility("hidden"))) int
mt_unwind_capture_impl(struct mt_unwind_thread *ut, uint64_t *ips, int max, int *reused_outer,
                       uint64_t entry_sp, uint64_t entry_rbp)
{
	int ignored;
	if (!reused_outer)
		reused_outer = &ignored;
	*reused_outer = 0;
	ut->stats.captures++;
	if (max > MT_UNWIND_MAX_FRAMES)
		max = MT_UNWIND_MAX_FRAMES;
	if (max <= 0)
		return 0;
	if (UW_UNLIKELY(!ut->stack_hi) && !ut->bounds_failed)
		mt_unwind_thread_init(ut);
	uint64_t lo = ut->stack_lo, hi = ut->stack_hi;
	uint64_t ra0 = load_word(entry_sp);
	if (UW_UNLIKELY(entry_sp - lo >= hi - lo || entry_sp + 8 > hi))
		return capture_fallback(ut, ips, max, ra0, MT_UNWIND_OFF_STACK, 0);
	if (ut->memo_off)
		return unwind_loop(ut, ips, max, reused_outer, ra0, entry_sp + 8, entry_rbp, 0);
	if (ut->memo_rest) {
		ut->memo_rest--;
		return unwind_loop(ut, ips, max, reused_outer, ra0, entry_sp + 8, entry_rbp, 0);
	}
	if (ut->memo_gen != __atomic_load_n(&rule_gen, __ATOMIC_RELAXED))
		ut->memo_n = 0;
	int had_memo = ut->memo_n != 0;
	int n = unwind_loop(ut, ips, max, reused_outer, ra0, entry_sp + 8, entry_rbp, 1);
	memo_policy(ut, had_memo, n, *reused_outer);
	return n;
}

/*
 * int mt_unwind_capture(ut, ips, max, reused_outer): passes the caller's
 * stack pointer (at the return address) and rbp to the C loop in the two
 * free argument registers, and tail-jumps to it, so the loop returns
 * straight to the caller.  Its own CFI is the plain entry rule.
 */
__asm__(
	".text\n"
	".globl mt_unwind_capture\n"
	".hidden mt_unwind_capture\n"
	".type mt_unwind_capture, @function\n"
	".p2align 4\n"
	"mt_unwind_capture:\n"
	"\t.cfi_startproc\n"
	"\tendbr64\n"
	"\tmovq %rsp, %r8\n"
	"\tmovq %rbp, %r9\n"
	"\tjmp mt_unwind_capture_impl\n"
	"\t.cfi_endproc\n"
	".size mt_unwind_capture, .-mt_unwind_capture\n");
