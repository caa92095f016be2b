/* Event semantics, caches and unaligned accesses: L1D_CACHE_REFILL, L1D_CACHE_WB,
 * L1D_CACHE, L1I_CACHE_REFILL, L1I_CACHE_LMISS, L1I_CACHE, UNALIGNED_LDST_RETIRED, and the
 * cache penalties of the cycle model (CPU_CYCLES, STALL_BACKEND, STALL_FRONTEND, STALL).
 *
 * Run with --counters 31 and (tests/test_events.py):
 *   D-side: --cache line=64,l1d-size=512,l1d-ways=2 --cycles l1d-refill=20,l1d-writeback=7
 *   I-side: --cache line=64,l1i-size=512,l1i-ways=2 --cycles l1i-refill=11
 * i.e. 4 sets x 2 ways of 64-byte lines, LRU, write-back, write-allocate; the set of an
 * address is (addr >> 6) & 3.  Bracketing (ev_harness.h): every count includes the enabling
 * `msr pmcr_el0, x0` and not the disabling `msr pmcr_el0, xzr`.
 *
 * D-side regions start (before the enabling MSR) with CLEANSE: loads from 8 lines of
 * ev_clean (never written), which leaves every set holding two clean lines of ev_clean and
 * none of ev_dbuf, so that every count below follows from the model alone.
 * I-side regions run once in the whole guest (warm = 0): their code lines were never
 * fetched; `isb` after the enabling MSR ends the translation block, so the block after it
 * is fetched (looked up once per 64-byte line it spans) while counting.  The unaligned
 * regions (u_*) run once too: an instruction's unaligned access is counted only if the
 * previously counted one was another instruction (see the xfail tests).
 */
#include "ev_harness.h"

u64 ev_dbuf[128 * 8] ALIGNED(1024);      /* 128 lines; line k is in set k % 4 */
u64 ev_clean[16 * 8] ALIGNED(1024);      /* only ever read */

#define DBUF "ldr x1, =ev_dbuf\n"
#define CLEANSE "ldr x9, =ev_clean\n" \
    "ldr x10, [x9, #0]\n ldr x10, [x9, #64]\n ldr x10, [x9, #128]\n ldr x10, [x9, #192]\n" \
    "ldr x10, [x9, #256]\n ldr x10, [x9, #320]\n ldr x10, [x9, #384]\n ldr x10, [x9, #448]\n"
#define L(k) "#" #k "*64"

/* ---- D-side (run with the D-side configuration) --------------------------------------- */
/* d_rd8: 8 loads from 8 new lines (sets 0..3 twice): 8 refills, victims clean: 0 write-backs.
 * INST 9, L1D_CACHE 8, CPU_CYCLES 9 + 8 x 20 = 169, STALL_BACKEND = STALL = 160. */
REGION(r_d_rd8);
__asm__(R_BEGIN(r_d_rd8) CLEANSE DBUF R_ON
        "ldr x2, [x1, " L(0) "]\n ldr x2, [x1, " L(1) "]\n ldr x2, [x1, " L(2) "]\n ldr x2, [x1, " L(3) "]\n"
        "ldr x2, [x1, " L(4) "]\n ldr x2, [x1, " L(5) "]\n ldr x2, [x1, " L(6) "]\n ldr x2, [x1, " L(7) "]\n"
        R_OFF R_END);

/* d_wr8_rd8: 8 stores to 8 new lines (write-allocate: 8 refills, all 8 lines now dirty, the
 * clean victims need no write-back), then 8 loads of ev_clean lines 0..7, which evict the 8
 * dirty lines: 8 refills, 8 write-backs.  INST 17, L1D_CACHE 16, refills 16, WB 8,
 * CPU_CYCLES 17 + 16 x 20 + 8 x 7 = 393, STALL_BACKEND = STALL = 376. */
REGION(r_d_wr8_rd8);
__asm__(R_BEGIN(r_d_wr8_rd8) CLEANSE DBUF R_ON
        "str x2, [x1, " L(0) "]\n str x2, [x1, " L(1) "]\n str x2, [x1, " L(2) "]\n str x2, [x1, " L(3) "]\n"
        "str x2, [x1, " L(4) "]\n str x2, [x1, " L(5) "]\n str x2, [x1, " L(6) "]\n str x2, [x1, " L(7) "]\n"
        "ldr x10, [x9, #0]\n ldr x10, [x9, #64]\n ldr x10, [x9, #128]\n ldr x10, [x9, #192]\n"
        "ldr x10, [x9, #256]\n ldr x10, [x9, #320]\n ldr x10, [x9, #384]\n ldr x10, [x9, #448]\n"
        R_OFF R_END);

/* d_lru: lines A, B, C of set 0 (ev_dbuf lines 0, 4, 8) accessed A B A C B.
 * LRU: A miss, B miss, A hit, C miss (evicts B, the least recently used), B miss: 4 refills.
 * (FIFO would evict A for C and hit B: 3.)  INST 6, L1D_CACHE 5, WB 0, CPU_CYCLES 6 + 80. */
REGION(r_d_lru);
__asm__(R_BEGIN(r_d_lru) CLEANSE DBUF R_ON
        "ldr x2, [x1, " L(0) "]\n ldr x2, [x1, " L(4) "]\n ldr x2, [x1, " L(0) "]\n"
        "ldr x2, [x1, " L(8) "]\n ldr x2, [x1, " L(4) "]\n"
        R_OFF R_END);

/* d_dirty_hit: load A (miss), store A (hit: A becomes dirty), load B (miss), load C (miss:
 * evicts A, least recently used and dirty: 1 write-back).  A, B, C in set 0.
 * INST 5, L1D_CACHE 4, refills 3, WB 1, CPU_CYCLES 5 + 60 + 7 = 72. */
REGION(r_d_dirty_hit);
__asm__(R_BEGIN(r_d_dirty_hit) CLEANSE DBUF R_ON
        "ldr x2, [x1, " L(0) "]\n str x2, [x1, " L(0) "]\n ldr x2, [x1, " L(4) "]\n ldr x2, [x1, " L(8) "]\n"
        R_OFF R_END);

/* d_cross: an 8-byte load at line offset 60 reads bytes of two lines: 2 refills, and it is
 * unaligned (UNALIGNED_LDST_RETIRED 1: see the xfail test, the warm-up run hides it).
 * INST 2, L1D_CACHE 1 (one register), MEM 1, CPU_CYCLES 2 + 40. */
REGION(r_d_cross);
__asm__(R_BEGIN(r_d_cross) CLEANSE DBUF R_ON "ldr x2, [x1, #60]\n" R_OFF R_END);

/* d_ldp: an LDP within one line: 2 accesses (L1D_CACHE 2), 1 refill.  INST 2, CPU_CYCLES 22. */
REGION(r_d_ldp);
__asm__(R_BEGIN(r_d_ldp) CLEANSE DBUF R_ON "ldp x2, x3, [x1]\n" R_OFF R_END);

/* d_prfm: PRFM is a NOP in vpmu (no access, no allocation): prfm A, then load A: 1 refill.
 * INST 3, LD 1, MEM 1, CPU_CYCLES 23. */
REGION(r_d_prfm);
__asm__(R_BEGIN(r_d_prfm) CLEANSE DBUF R_ON "prfm pldl1keep, [x1]\n ldr x2, [x1]\n" R_OFF R_END);

/* d_stxr_fail: a failed store-exclusive does not access memory: msr, clrex, stxr = 3;
 * 0 refills, ST 0, MEM 0. */
REGION(r_d_stxr_fail);
__asm__(R_BEGIN(r_d_stxr_fail) CLEANSE DBUF R_ON "clrex\n stxr w3, x2, [x1]\n" R_OFF R_END);

/* d_dczva: DC ZVA of line A: the model sees a 64-byte write, which allocates the line with a
 * refill (write-allocate; a real core may allocate a zeroed line without one).  INST 2,
 * ST 1, MEM 1, refills 1, CPU_CYCLES 22. */
REGION(r_d_dczva);
__asm__(R_BEGIN(r_d_dczva) CLEANSE DBUF R_ON "dc zva, x1\n" R_OFF R_END);

/* d_civac: store A (miss, dirty), DC CIVAC A (clean and invalidate), load A.  After the
 * invalidation the load misses: 2 refills; the dirty line is written back by the CIVAC
 * (counted or not: IMPLEMENTATION DEFINED).  See the xfail test. */
REGION(r_d_civac);
__asm__(R_BEGIN(r_d_civac) CLEANSE DBUF R_ON "str x2, [x1]\n dc civac, x1\n ldr x2, [x1]\n" R_OFF R_END);

/* d_warm: load A with counting off (the region writes PMCR_EL0 = 0 first), then count a
 * load of A: a hit, 0 refills.  INST 2, LD 1, MEM 1.  (In the D-side configuration the
 * penalties keep the model observing while nothing counts; see i_warm for the I side.) */
REGION(r_d_warm);
__asm__(R_BEGIN(r_d_warm) CLEANSE DBUF "msr pmcr_el0, xzr\n isb\n ldr x2, [x1]\n" R_ON "ldr x2, [x1]\n" R_OFF R_END);

/* ---- unaligned accesses (any configuration) -------------------------------------------- */
/* Alignment is checked against the size of each element, as with SCTLR_EL1.A = 1. */
/* u_ld: ldr x @+1 (yes), ldr w @+2 (yes), ldrh @+1 (yes), ldrb @+1 (never), ldr x @+8 (no),
 * ldp w, w @+4 (4-byte elements at 4 and 8: no), ldp x, x @+4 (yes), str x @+3 (yes),
 * stp w, w @+2 (yes).  msr + 9 = 10; UNALIGNED 6. */
REGION(r_u_ld);
__asm__(R_BEGIN(r_u_ld) DBUF "add x4, x1, #4\n add x5, x1, #2\n" R_ON
        "ldr x2, [x1, #1]\n ldr w2, [x1, #2]\n ldrh w2, [x1, #1]\n ldrb w2, [x1, #1]\n ldr x2, [x1, #8]\n"
        "ldp w2, w3, [x4]\n ldp x2, x3, [x4]\n str x2, [x1, #3]\n stp w2, w3, [x5]\n"
        R_OFF R_END);

/* u_simd: ld1 {v0.4s} @0 (no), ld1 {v0.4s} @+2 (4-byte elements: yes), ldur d0 @+4 (yes).
 * msr + 3 = 4; UNALIGNED 2. */
REGION(r_u_simd);
__asm__(R_BEGIN(r_u_simd) ".arch_extension simd\n.arch_extension fp\n" DBUF "add x2, x1, #2\n" R_ON
        "ld1 {v0.4s}, [x1]\n ld1 {v0.4s}, [x2]\n ldur d0, [x1, #4]\n"
        R_OFF R_END);

/* u_ld1b: ld1 {v0.16b} @+1: byte elements are never unaligned.  msr + ld1 = 2; UNALIGNED 0
 * (see the xfail test). */
REGION(r_u_ld1b);
__asm__(R_BEGIN(r_u_ld1b) ".arch_extension simd\n.arch_extension fp\n" DBUF "add x2, x1, #1\n" R_ON
        "ld1 {v0.16b}, [x2]\n" R_OFF R_END);

/* u_ld1s: ld1 {v0.4s} @+4: 4-byte elements at 4-byte aligned addresses.  msr + ld1 = 2;
 * UNALIGNED 0 (see the xfail test). */
REGION(r_u_ld1s);
__asm__(R_BEGIN(r_u_ld1s) ".arch_extension simd\n.arch_extension fp\n" DBUF "add x2, x1, #4\n" R_ON
        "ld1 {v0.4s}, [x2]\n" R_OFF R_END);

/* u_q: ldr q0 @+8: a 16-byte element at an 8-byte aligned address: unaligned (SCTLR.A = 1
 * faults it).  msr + ldr = 2; UNALIGNED 1 (see the xfail test). */
REGION(r_u_q);
__asm__(R_BEGIN(r_u_q) ".arch_extension simd\n.arch_extension fp\n" DBUF R_ON "ldr q0, [x1, #8]\n" R_OFF R_END);

/* u_loop: the same unaligned load 4 times in a loop: msr + 4 x (ldr, subs, b.ne) = 13;
 * UNALIGNED 4 (see the xfail test). */
REGION(r_u_loop);
__asm__(R_BEGIN(r_u_loop) DBUF "mov x3, #4\n" R_ON "1: ldr x2, [x1, #1]\n subs x3, x3, #1\n b.ne 1b\n" R_OFF R_END);

/* u_fault: an unaligned LDXR takes an Alignment fault (exclusives are always checked): it
 * does not retire, and the access that faulted is not counted.  msr, [ldxr: abort], 4
 * handler instructions (ev_vec_b skips it), nop = 6.  LD 0, MEM 0, EXC_TAKEN 1,
 * EXC_RETURN 1, PC_WRITE 1, UNALIGNED 0. */
REGION(r_u_fault);
__asm__(R_BEGIN(r_u_fault) VEC(ev_vec_b) DBUF "add x2, x1, #1\n" R_ON "ldxr x3, [x2]\n nop\n" R_OFF VEC_RESTORE R_END);

/* ---- I-side (run with the I-side configuration; each region runs once) ------------------ */
/* i_warm: msr + 8 nops, run once with counting off (fn(0)), then measured.  Its lines were
 * fetched by the first run: L1I_CACHE_REFILL 0 (see the xfail test; run in the D-side
 * configuration, whose L1I is the default 32 KiB, 2-way, no L1I penalty). */
REGION(r_i_warm);
__asm__(R_BEGIN(r_i_warm) R_ON ".rept 8\n nop\n .endr\n" R_OFF R_END);

/* i_seq: 128 NOPs after the isb.  The block after the isb spans lines 0..8 of the region:
 * line 0 was fetched with the block of the enabling MSR (hit), lines 1..8 are new: 8
 * refills.  INST 1 + 1 + 128 = 130 (msr, isb, nops), L1I_CACHE 130, L1I_CACHE_LMISS 8,
 * CPU_CYCLES 130 + 8 x 11 = 218, STALL_FRONTEND = STALL = 88. */
REGION(r_i_seq);
__asm__(".text\n.balign 1024\n" R_BEGIN(r_i_seq) R_ON "isb\n .rept 128\n nop\n .endr\n" R_OFF R_END);

/* i_conflict: a loop in line 0 (set 0) calls X, Y, Z, three one-line functions in set 1
 * (offsets 0x40, 0x140, 0x240), 4 iterations.  Three lines cycling through a 2-way LRU set
 * always miss: 12 refills; line 0 always hits.  Executed: msr, isb, mov + 4 x (bl X, ret,
 * bl Y, ret, bl Z, ret, subs, b.ne) = 35.  CPU_CYCLES 35 + 12 x 11 = 167, STALL_FRONTEND 132. */
REGION(r_i_conflict);
__asm__(".text\n.balign 1024\n" R_BEGIN(r_i_conflict) "mov x15, x30\n" R_ON "isb\n mov x1, #4\n"
        "1: bl 5f\n bl 6f\n bl 7f\n subs x1, x1, #1\n b.ne 1b\n" R_OFF "mov x30, x15\n" R_END
        ".balign 64\n 5: ret\n"               /* offset 0x040, set 1 */
        ".balign 256\n .skip 64\n 6: ret\n"   /* offset 0x140, set 1 */
        ".balign 256\n .skip 64\n 7: ret\n"); /* offset 0x240, set 1 */

/* i_fit: the same with two functions (X, Y) in set 1: they fit in its 2 ways: 2 refills
 * (their first fetch).  Executed: msr, isb, mov + 4 x (bl X, ret, bl Y, ret, subs, b.ne) = 27.
 * CPU_CYCLES 27 + 22 = 49, STALL_FRONTEND 22. */
REGION(r_i_fit);
__asm__(".text\n.balign 1024\n" R_BEGIN(r_i_fit) "mov x15, x30\n" R_ON "isb\n mov x1, #4\n"
        "1: bl 5f\n bl 6f\n subs x1, x1, #1\n b.ne 1b\n" R_OFF "mov x30, x15\n" R_END
        ".balign 64\n 5: ret\n"
        ".balign 256\n .skip 64\n 6: ret\n");

struct region { const char *name; ev_region_t fn; int warm; };
static const struct region REGIONS[] = {
    {"d_rd8", r_d_rd8, 1}, {"d_wr8_rd8", r_d_wr8_rd8, 1}, {"d_lru", r_d_lru, 1},
    {"d_dirty_hit", r_d_dirty_hit, 1}, {"d_cross", r_d_cross, 1}, {"d_ldp", r_d_ldp, 1},
    {"d_prfm", r_d_prfm, 1}, {"d_stxr_fail", r_d_stxr_fail, 1}, {"d_dczva", r_d_dczva, 1},
    {"d_civac", r_d_civac, 1}, {"d_warm", r_d_warm, 1},
    {"u_ld", r_u_ld, 0}, {"u_simd", r_u_simd, 0}, {"u_ld1b", r_u_ld1b, 0}, {"u_ld1s", r_u_ld1s, 0},
    {"u_q", r_u_q, 0}, {"u_loop", r_u_loop, 0}, {"u_fault", r_u_fault, 0},
    {"i_seq", r_i_seq, 0}, {"i_conflict", r_i_conflict, 0}, {"i_fit", r_i_fit, 0},
};

int main(void)
{
    ev_program(EV_STD, EV_NSTD, 0, 0);
    for (u64 r = 0; r < sizeof(REGIONS) / sizeof(REGIONS[0]); r++)
        ev_measure(REGIONS[r].name, REGIONS[r].fn, REGIONS[r].warm);
    ev_clear();
    r_i_warm(0);                        /* first run: nothing counts */
    ev_measure("i_warm", r_i_warm, 0);
    return report();
}
