/* Event semantics, loads, stores and data accesses: LD_RETIRED, ST_RETIRED, MEM_ACCESS,
 * L1D_CACHE and OP_RETIRED/OP_SPEC for every kind of A64 load/store: single registers,
 * index writeback, literal loads, pairs, SIMD&FP single and multiple structures, PRFM,
 * DC ZVA, exclusives (successful and failed), acquire/release, unprivileged, Device (MMIO).
 * Atomics (LSE) do not exist on the cortex-a57 (Armv8.0) CPU model: not tested.
 *
 * Run with --counters 31.  Bracketing (ev_harness.h): every count includes the enabling
 * `msr pmcr_el0, x0` and not the disabling `msr pmcr_el0, xzr`.
 *
 * vpmu's rules (vpmu/pmu/classify.py): LD_RETIRED / ST_RETIRED count instructions (at most
 * 1 each); MEM_ACCESS and L1D_CACHE count one access per register transferred (pairs 2,
 * LDn/STn the number of registers in the list), DC ZVA 1, PRFM 0; OP_RETIRED = OP_SPEC =
 * max(1, accesses) per instruction.  Writeback (pre/post-index) adds nothing.
 * Every buffer access below is naturally aligned (UNALIGNED_LDST_RETIRED = 0).
 */
#include "ev_harness.h"

u64 ev_buf[64] ALIGNED(64);
u64 ev_status;

#define BUF "ldr x1, =ev_buf\n"
#define SIMD ".arch_extension simd\n .arch_extension fp\n"

/* ldst_gpr: msr + ldr x, ldrb, ldrh, ldrsw, ldur, ldr xzr (6 loads) + str x, strb, strh, stur
 * (4 stores) = 11.  LD 6, ST 4, MEM 10, OP 11. */
REGION(r_ldst_gpr);
__asm__(R_BEGIN(r_ldst_gpr) BUF R_ON
        "ldr x2, [x1]\n ldrb w3, [x1, #8]\n ldrh w3, [x1, #16]\n ldrsw x3, [x1, #24]\n"
        "ldur x3, [x1, #32]\n ldr xzr, [x1, #40]\n"
        "str x2, [x1, #48]\n strb w2, [x1, #56]\n strh w2, [x1, #58]\n stur x2, [x1, #64]\n"
        R_OFF R_END);

/* ldst_idx: pre/post-index writeback: ldr post, ldr pre, str post, str pre.
 * msr + 4 = 5.  LD 2, ST 2, MEM 4, OP 5. */
REGION(r_ldst_idx);
__asm__(R_BEGIN(r_ldst_idx) BUF R_ON
        "ldr x2, [x1], #8\n ldr x3, [x1, #8]!\n str x2, [x1], #8\n str x3, [x1, #-8]!\n"
        R_OFF R_END);

/* literal: ldr x (literal), ldr w (literal), ldrsw (literal), prfm (literal), b over the pool.
 * msr + 3 loads + prfm + b + nop = 7.  LD 3, MEM 3, OP 7, BR 1, BR_IMMED 1, PC_WRITE 1. */
REGION(r_literal);
__asm__(R_BEGIN(r_literal) R_ON
        "ldr x2, 1f\n ldr w3, 1f\n ldrsw x4, 1f\n prfm pldl1keep, 1f\n b 2f\n"
        ".balign 8\n 1: .quad 0x1234\n"
        "2: nop\n" R_OFF R_END);

/* pairs: ldp, stp, ldpsw, ldnp, stnp.  msr + 5 = 6.  LD 3, ST 2, MEM 10, OP 11. */
REGION(r_pairs);
__asm__(R_BEGIN(r_pairs) BUF R_ON
        "ldp x2, x3, [x1]\n stp x2, x3, [x1, #16]\n ldpsw x4, x5, [x1, #32]\n"
        "ldnp x6, x7, [x1]\n stnp x6, x7, [x1, #48]\n"
        R_OFF R_END);

/* stack: stp x29, x30, [sp, #-16]! ; ldp x29, x30, [sp], #16.  msr + 2 = 3.
 * LD 1, ST 1, MEM 4, OP 5. */
REGION(r_stack);
__asm__(R_BEGIN(r_stack) R_ON "stp x29, x30, [sp, #-16]!\n ldp x29, x30, [sp], #16\n" R_OFF R_END);

/* simd: ldr q, str q, ldp q, stp q, ldr d, str s.  msr + 6 = 7.
 * LD 3, ST 3, MEM 1+1+2+2+1+1 = 8, OP 9. */
REGION(r_simd);
__asm__(R_BEGIN(r_simd) SIMD BUF R_ON
        "ldr q0, [x1]\n str q0, [x1, #16]\n ldp q0, q1, [x1]\n stp q0, q1, [x1, #32]\n"
        "ldr d2, [x1]\n str s2, [x1, #64]\n"
        R_OFF R_END);

/* simd_multi: multiple and single structures.
 *   ld1 {v0.16b-v3.16b} 4 | st1 {v0.4s, v1.4s} 2 | ld2 {v0.8h, v1.8h} 2
 *   ld4 {v0.s-v3.s}[1] 4 | ld1r {v4.4s} 1 | st3 {v0.b-v2.b}[5] 3 | ld1 {v5.d}[1] 1
 * msr + 7 = 8.  LD 5, ST 2, MEM 17, OP 18. */
REGION(r_simd_multi);
__asm__(R_BEGIN(r_simd_multi) SIMD BUF R_ON
        "ld1 {v0.16b, v1.16b, v2.16b, v3.16b}, [x1]\n st1 {v0.4s, v1.4s}, [x1]\n"
        "ld2 {v0.8h, v1.8h}, [x1]\n ld4 {v0.s, v1.s, v2.s, v3.s}[1], [x1]\n"
        "ld1r {v4.4s}, [x1]\n st3 {v0.b, v1.b, v2.b}[5], [x1]\n ld1 {v5.d}[1], [x1]\n"
        R_OFF R_END);

/* prfm: prfm (imm), prfm (imm, other op), prfum (unscaled).  A prefetch is a hint, not a
 * load: msr + 3 = 4.  LD 0, MEM 0, OP 4. */
REGION(r_prfm);
__asm__(R_BEGIN(r_prfm) BUF R_ON
        "prfm pldl1keep, [x1]\n prfm pstl2strm, [x1, #64]\n prfum pldl1keep, [x1, #1]\n"
        R_OFF R_END);

/* dczva: DC ZVA zeroes a 64-byte block: a store.  msr + dc = 2.  ST 1, MEM 1, OP 2. */
REGION(r_dczva);
__asm__(R_BEGIN(r_dczva) BUF R_ON "dc zva, x1\n" R_OFF R_END);

/* excl_ok: ldxr, stxr (succeeds), ldaxr, stlxr (succeeds), ldxp, stxp (succeeds).
 * msr + 6 = 7.  LD 3, ST 3, MEM 1+1+1+1+2+2 = 8, OP 9.  The OR of the three status
 * results is stored to ev_status (checked = 0 by the guest). */
REGION(r_excl_ok);
__asm__(R_BEGIN(r_excl_ok) BUF R_ON
        "ldxr x2, [x1]\n stxr w3, x2, [x1]\n"
        "ldaxr x2, [x1]\n stlxr w4, x2, [x1]\n"
        "ldxp x2, x5, [x1]\n stxp w6, x2, x5, [x1]\n"
        R_OFF "orr w3, w3, w4\n orr w3, w3, w6\n ldr x7, =ev_status\n str x3, [x7]\n" R_END);

/* excl_fail: clrex, stxr (fails: no exclusive monitor), cbnz on its status (taken), clrex,
 * stxp (fails).  A failed Store-Exclusive is architecturally executed but is not a store
 * (Arm ARM ST_RETIRED: "does not count a Store-Exclusive instruction that fails").
 * msr + clrex + stxr + cbnz + clrex + stxp = 6.  LD 0, ST 0, MEM 0, OP 6,
 * BR 1, BR_IMMED 1, PC_WRITE 1.  Status OR stored to ev_status (checked = 1). */
REGION(r_excl_fail);
__asm__(R_BEGIN(r_excl_fail) BUF "mov x2, #1\n" R_ON
        "clrex\n stxr w3, x2, [x1]\n cbnz w3, 1f\n udf #0\n"
        "1: clrex\n stxp w4, x2, x2, [x1]\n"
        R_OFF "orr w3, w3, w4\n ldr x7, =ev_status\n str x3, [x7]\n" R_END);

/* excl_page: a failing stxr that is the last instruction of a 4 KiB page (the next one is in
 * the next page, hence in another translation block): msr, clrex, stxr = 3 (the padding
 * before the region is never executed).  ST 0, MEM 0, OP 3 (see the xfail test). */
REGION(r_excl_page);
extern char ev_stxr_page_insn[];
__asm__(".text\n.balign 4096\n.skip 4096 - 64\n" R_BEGIN(r_excl_page) BUF "mov x2, #1\n"
        ".rept 11\n nop\n .endr\n" R_ON "clrex\n"
        ".global ev_stxr_page_insn\nev_stxr_page_insn: stxr w3, x2, [x1]\n"
        R_OFF "ldr x7, =ev_status\n str x3, [x7]\n" R_END);

/* acqrel: ldar, stlr, ldarb, stlrh, ldaxrb (no store).  msr + 5 = 6.  LD 3, ST 2, MEM 5. */
REGION(r_acqrel);
__asm__(R_BEGIN(r_acqrel) BUF R_ON
        "ldar x2, [x1]\n stlr x2, [x1]\n ldarb w3, [x1]\n stlrh w3, [x1]\n ldaxrb w4, [x1]\n"
        R_OFF "clrex\n" R_END);

/* unpriv: ldtr, sttr, ldtrb (executed at EL1: plain accesses).  msr + 3 = 4.  LD 2, ST 1, MEM 3. */
REGION(r_unpriv);
__asm__(R_BEGIN(r_unpriv) BUF R_ON "ldtr x2, [x1]\n sttr x2, [x1, #8]\n ldtrb w3, [x1, #16]\n" R_OFF R_END);

/* mmio: a load from the PL011 flag register (Device memory, outside RAM).  msr + ldr = 2.
 * LD 1, MEM 1 (MEM_ACCESS counts Device accesses); L1D_CACHE: see the test (xfail). */
REGION(r_mmio);
__asm__(R_BEGIN(r_mmio) "ldr x1, =0x09000018\n" R_ON "ldr w2, [x1]\n" R_OFF R_END);

struct region { const char *name; ev_region_t fn; };
static const struct region REGIONS[] = {
    {"ldst_gpr", r_ldst_gpr}, {"ldst_idx", r_ldst_idx}, {"literal", r_literal}, {"pairs", r_pairs},
    {"stack", r_stack}, {"simd", r_simd}, {"simd_multi", r_simd_multi}, {"prfm", r_prfm},
    {"dczva", r_dczva}, {"excl_ok", r_excl_ok}, {"excl_fail", r_excl_fail}, {"acqrel", r_acqrel},
    {"unpriv", r_unpriv}, {"mmio", r_mmio}, {"excl_page", r_excl_page},
};

int main(void)
{
    ev_program(EV_STD, EV_NSTD, 0, 0);
    for (u64 r = 0; r < sizeof(REGIONS) / sizeof(REGIONS[0]); r++) {
        ev_measure(REGIONS[r].name, REGIONS[r].fn, 2);
        if (REGIONS[r].fn == r_excl_ok)
            kv_u64("excl_ok.status", ev_status);
        if (REGIONS[r].fn == r_excl_fail)
            kv_u64("excl_fail.status", ev_status);
        if (REGIONS[r].fn == r_excl_page)
            kv_u64("excl_page.status", ev_status);
    }
    kv_hex("excl_page.offset", (u64)ev_stxr_page_insn & 0xfff);
    return report();
}
