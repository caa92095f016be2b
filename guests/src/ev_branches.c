/* Event semantics, branches and the branch predictor: BR_RETIRED, BR_IMMED_RETIRED,
 * BR_RETURN_RETIRED, PC_WRITE_RETIRED, BR_PRED, BR_MIS_PRED, BR_MIS_PRED_RETIRED.
 *
 * Run with --counters 31.  Bracketing (ev_harness.h): every count includes the enabling
 * `msr pmcr_el0, x0` and not the disabling `msr pmcr_el0, xzr`.
 *
 * Predictor model (vpmu/pmu/kernels.py resolve_branch, docs/events.md): conditional
 * branches use a 2-bit saturating counter per (PC >> 2) mod 4096 (predict taken iff >= 2);
 * B/BL are always predicted; BR/BLR use a 1024-entry last-target buffer indexed by
 * (PC >> 2) mod 1024 (cold or different target = mispredict); RET pops a 16-entry return
 * stack pushed by BL/BLR (empty or different address = mispredict); ERET is not predicted.
 * Regions measured with warm = 2 run twice before the measurement, so every counter is in
 * the steady state of the region's own pattern (stated per region).  Regions with warm = 0
 * run exactly once in the whole guest: their predictor entries are cold.
 */
#include "ev_harness.h"

/* b_imm: msr, b, nop = 3.  BR 1, BR_IMMED 1, PC_WRITE 1, mispredicts 0 (B is always predicted). */
REGION(r_b_imm);
__asm__(R_BEGIN(r_b_imm) R_ON "b 1f\n udf #0\n 1: nop\n" R_OFF R_END);

/* bcond_t: msr, cmp, b.eq (taken, skips the udf), nop = 4.  BR 1, IMMED 1, PC_WRITE 1,
 * mispredicts 0 (always taken: counter saturated at 3). */
REGION(r_bcond_t);
__asm__(R_BEGIN(r_bcond_t) "mov x1, #0\n" R_ON "cmp x1, #0\n b.eq 1f\n udf #0\n 1: nop\n" R_OFF R_END);

/* bcond_nt: msr, cmp, 3 x b.eq (not taken), nop, nop = 7.  BR 3, IMMED 3, PC_WRITE 0 (a
 * not-taken conditional branch is a branch but not a PC write), mispredicts 0 (counters at 0). */
REGION(r_bcond_nt);
__asm__(R_BEGIN(r_bcond_nt) "mov x1, #1\n" R_ON "cmp x1, #0\n b.eq 1f\n b.eq 1f\n b.eq 1f\n nop\n 1: nop\n" R_OFF R_END);

/* cb_tb: CBZ, CBNZ, TBZ, TBNZ each taken once and not taken once.  x1 = 0, x2 = 1.
 * Executed: msr, cbz T, cbz NT, cbnz T, cbnz NT, tbz T, tbz NT, tbnz T, tbnz NT, nop = 10.
 * BR 8, IMMED 8, PC_WRITE 4, mispredicts 0. */
REGION(r_cb_tb);
__asm__(R_BEGIN(r_cb_tb) "mov x1, #0\n mov x2, #1\n" R_ON
        "cbz x1, 1f\n udf #0\n 1: cbz x2, 9f\n"
        "cbnz x2, 2f\n udf #0\n 2: cbnz x1, 9f\n"
        "tbz x2, #1, 3f\n udf #0\n 3: tbz x2, #0, 9f\n"
        "tbnz x2, #0, 4f\n udf #0\n 4: tbnz x2, #1, 9f\n"
        "nop\n 9:" R_OFF R_END);

/* bl_ret: msr, bl, ret, b, nop = 5.  BR 3 (bl, ret, b), IMMED 2 (bl, b), RETURN 1, PC_WRITE 3,
 * mispredicts 0 (the RET pops the address its BL pushed). */
REGION(r_bl_ret);
__asm__(R_BEGIN(r_bl_ret) "mov x15, x30\n" R_ON "bl 1f\n b 2f\n 1: ret\n 2: nop\n" R_OFF "mov x30, x15\n" R_END);

/* br_blr: msr, br x1, blr x2, ret, b, nop = 6.  BR 4, IMMED 1 (b), RETURN 1, PC_WRITE 4,
 * mispredicts 0 (BR and BLR hit their trained last-target entries; RET hits the stack). */
REGION(r_br_blr);
__asm__(R_BEGIN(r_br_blr) "mov x15, x30\n adr x1, 1f\n adr x2, 3f\n" R_ON
        "br x1\n udf #0\n 1: blr x2\n b 4f\n 3: ret\n 4: nop\n" R_OFF "mov x30, x15\n" R_END);

/* ret_xn: RET with a register other than X30 is a procedure return: msr, ret x3, nop = 3.
 * BR 1, RETURN 1, PC_WRITE 1, mispredicts 1 (no BL pushed 1f: the stack top is the caller's
 * return address). */
REGION(r_ret_xn);
__asm__(R_BEGIN(r_ret_xn) "adr x3, 1f\n" R_ON "ret x3\n udf #0\n 1: nop\n" R_OFF R_END);

/* br_x30: BR X30 is not a procedure return: msr, br x30, nop = 3.  BR 1, RETURN 0,
 * PC_WRITE 1, mispredicts 0 (trained last-target entry). */
REGION(r_br_x30);
__asm__(R_BEGIN(r_br_x30) "mov x15, x30\n adr x30, 1f\n" R_ON "br x30\n udf #0\n 1: nop\n" R_OFF
        "mov x30, x15\n" R_END);

/* loop8: msr + 8 x (subs, b.ne) = 17.  BR 8, IMMED 8, PC_WRITE 7 (the exit is not taken).
 * Steady state of the back edge: T x7 then NT; the counter enters the run at 2 (weakly
 * taken), so only the exit mispredicts: 1. */
REGION(r_loop8);
__asm__(R_BEGIN(r_loop8) "mov x1, #8\n" R_ON "1: subs x1, x1, #1\n b.ne 1b\n" R_OFF R_END);

/* alt8: 8 iterations; TBNZ on bit 0 of x1 = 8..1: NT, T, NT, T, NT, T, NT, T.
 * Executed: msr + 8 x (tbnz, subs, b.ne) + 4 nops (NT iterations) = 29.  BR 16, IMMED 16,
 * PC_WRITE 4 + 7 = 11.  The TBNZ counter alternates 0 -> 0 (NT predicted) -> 1 (T
 * mispredicted) -> 0 ...: 4 mispredicts; back edge 1 (exit).  Total 5. */
REGION(r_alt8);
__asm__(R_BEGIN(r_alt8) "mov x1, #8\n" R_ON "1: tbnz x1, #0, 2f\n nop\n 2: subs x1, x1, #1\n b.ne 1b\n" R_OFF R_END);

/* btb_alt: 4 iterations of BLR to targets alternating A, B, A, B (one BLR, two RETs), then
 * b over the targets.  Executed: msr + 4 x (tst, csel, blr, ret, subs, b.ne) + b = 26.
 * BR 13 (4 x (blr, ret, b.ne) + b), IMMED 5, RETURN 4, PC_WRITE 4 + 4 + 3 + 1 = 12.
 * Mispredicts: the BLR's last target is always the other one: 4; RETs 0 (pushed by the
 * BLR); back edge 1 (exit).  Total 5. */
REGION(r_btb_alt);
__asm__(R_BEGIN(r_btb_alt) "mov x15, x30\n adr x4, 5f\n adr x5, 6f\n mov x1, #4\n" R_ON
        "1: tst x1, #1\n csel x3, x4, x5, eq\n blr x3\n subs x1, x1, #1\n b.ne 1b\n b 7f\n"
        "5: ret\n 6: ret\n"
        "7:" R_OFF "mov x30, x15\n" R_END);

/* btb_mono: the same with both targets A: the BLR hits its last target: mispredicts 1 (the
 * loop exit).  All other counts as btb_alt. */
REGION(r_btb_mono);
__asm__(R_BEGIN(r_btb_mono) "mov x15, x30\n adr x4, 5f\n mov x5, x4\n mov x1, #4\n" R_ON
        "1: tst x1, #1\n csel x3, x4, x5, eq\n blr x3\n subs x1, x1, #1\n b.ne 1b\n b 7f\n"
        "5: ret\n 6: ret\n"
        "7:" R_OFF "mov x30, x15\n" R_END);

/* ras_nest: calls nested 3 deep (f1 -> f2 -> f3), each RET predicted by the return stack.
 * Executed: msr, bl f1, [mov, bl f2, [mov, bl f3, [ret], mov, ret], mov, ret], nop = 12.
 * BR 6, IMMED 3, RETURN 3, PC_WRITE 6, mispredicts 0. */
REGION(r_ras_nest);
__asm__(R_BEGIN(r_ras_nest) "mov x15, x30\n" R_ON "bl 1f\n nop\n" R_OFF "mov x30, x15\n" R_END
        "1: mov x9, x30\n bl 2f\n mov x30, x9\n ret\n"
        "2: mov x10, x30\n bl 3f\n mov x30, x10\n ret\n"
        "3: ret\n");

/* ras_deep: a chain of 17 distinct call sites (17 BLs, then 17 RETs), one deeper than the
 * 16-entry return stack.  Each level: str x30, [sp, #-16]!; bl next; ldr x30, [sp], #16;
 * ret; the 17th level is a lone ret.  A 16-entry return stack keeps the 16 most recent
 * return addresses: the 16 innermost RETs are predicted, the outermost finds it empty:
 * mispredicts 1.  Executed: msr + bl + 16 x 4 + ret = 67.  LD 16, ST 16, MEM 32,
 * BR 34 (17 bl + 17 ret), IMMED 17, RETURN 17, PC_WRITE 34.  (vpmu: see the xfail test.) */
REGION(r_ras_deep);
__asm__(R_BEGIN(r_ras_deep) "mov x15, x30\n" R_ON "bl 1f\n" R_OFF "mov x30, x15\n" R_END
        "1:\n"
        ".rept 16\n str x30, [sp, #-16]!\n bl 1f\n ldr x30, [sp], #16\n ret\n 1:\n .endr\n"
        "ret\n");

/* cold_loop (warm = 0, runs once): a never-executed back edge, 4 iterations: T, T, T, NT.
 * With 2-bit counters initially weakly not-taken (1): T mispredicted (-> 2), T, T
 * predicted (-> 3), NT mispredicted: 2.  INST 1 + 8 = 9, BR 4, PC_WRITE 3. */
REGION(r_cold_loop);
__asm__(R_BEGIN(r_cold_loop) "mov x1, #4\n" R_ON "1: subs x1, x1, #1\n b.ne 1b\n" R_OFF R_END);

/* bcond_next: a conditional branch whose target is the next instruction, not taken
 * (Z clear): msr, cmp, b.eq, nop = 4.  BR 1, IMMED 1, PC_WRITE 0 (not taken). */
REGION(r_bcond_next);
__asm__(R_BEGIN(r_bcond_next) "mov x1, #1\n" R_ON "cmp x1, #0\n b.eq 1f\n 1: nop\n" R_OFF R_END);

struct region { const char *name; ev_region_t fn; int warm; };
static const struct region REGIONS[] = {
    {"b_imm", r_b_imm, 2}, {"bcond_t", r_bcond_t, 2}, {"bcond_nt", r_bcond_nt, 2}, {"cb_tb", r_cb_tb, 2},
    {"bl_ret", r_bl_ret, 2}, {"br_blr", r_br_blr, 2}, {"ret_xn", r_ret_xn, 2}, {"br_x30", r_br_x30, 2},
    {"loop8", r_loop8, 2}, {"alt8", r_alt8, 2}, {"btb_alt", r_btb_alt, 2}, {"btb_mono", r_btb_mono, 2},
    {"ras_nest", r_ras_nest, 2}, {"ras_deep", r_ras_deep, 2}, {"cold_loop", r_cold_loop, 0},
    {"bcond_next", r_bcond_next, 2},
};

int main(void)
{
    ev_program(EV_STD, EV_NSTD, 0, 0);
    for (u64 r = 0; r < sizeof(REGIONS) / sizeof(REGIONS[0]); r++)
        ev_measure(REGIONS[r].name, REGIONS[r].fn, REGIONS[r].warm);
    return report();
}
