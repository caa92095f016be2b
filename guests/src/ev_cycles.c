/* Event semantics, cycles and stalls: CPU_CYCLES, PMCCNTR_EL0, STALL_FRONTEND, STALL_BACKEND,
 * STALL, CNT_CYCLES (constant frequency), and WFI (the clock stops, the system counter does
 * not).
 *
 * Run with --counters 31 in three cycle models (tests/test_events.py):
 *   default           1 cycle per instruction, no penalties
 *   --cycles base=1,load=2,store=3,branch=1,mul=4,div=5,fp=6,system=7,mispredict=5
 *   --cycles base=16  every instruction is exactly one tick of the 62.5 MHz system counter
 * Cycle model (vpmu/pmu/classify.py, kernels.py; docs/events.md): an instruction costs
 * base + the extra cycles of its class (load: loads, PRFM, atomics; store: stores, DC ZVA;
 * branch: B/BL/B.cond/CBZ/TBZ/BR/BLR/RET/ERET; mul; div; fp: FP and SIMD data processing;
 * system: MSR/MRS/SYS, hints (NOP, WFI, YIELD...), barriers, SVC/HVC/BRK); a mispredicted
 * branch adds `mispredict`.  STALL_FRONTEND = branch extras + mispredict penalties (+ L1I
 * refill penalties), STALL_BACKEND = the other classes' extras (+ L1D refill and write-back
 * penalties), STALL = both.  CNT_CYCLES counts ticks of the generic timer (CNTFRQ 62.5 MHz)
 * derived from the 1 GHz cycle count: floor(end / 16) - floor(start / 16) over a region.
 * Bracketing (ev_harness.h): the enabling `msr pmcr_el0, x0` (a system instruction) counts.
 */
#include "ev_harness.h"

u64 ev_buf[16] ALIGNED(64);

/* cyc_mix: msr (system), ldr (load), str (store), mul, sdiv (div), fadd (fp), add v.4s (fp),
 * add (no class), nop (system), prfm (load class: a hint, but cycled as a load).  INST 10.
 * Model B: 8 + 3 + 4 + 5 + 6 + 7 + 7 + 1 + 8 + 3 = 52 cycles; STALL_BACKEND = STALL = 42,
 * STALL_FRONTEND 0.  Default: 10 cycles, no stalls. */
REGION(r_cyc_mix);
__asm__(R_BEGIN(r_cyc_mix) ".arch_extension simd\n.arch_extension fp\n" "ldr x1, =ev_buf\n mov x3, #3\n" R_ON
        "ldr x2, [x1]\n str x2, [x1, #8]\n mul x4, x3, x3\n sdiv x5, x4, x3\n fadd d0, d0, d1\n"
        "add v0.4s, v1.4s, v2.4s\n add x6, x5, #1\n nop\n prfm pldl1keep, [x1]\n"
        R_OFF R_END);

/* cyc_loop8: msr + 8 x (subs, b.ne); the back edge mispredicts once (the exit, steady state).
 * INST 17.  Model B: 8 + 8 x (1 + 2) + 5 = 37; STALL_FRONTEND 8 + 5 = 13, STALL_BACKEND 7
 * (the MSR), STALL 20. */
REGION(r_cyc_loop8);
__asm__(R_BEGIN(r_cyc_loop8) "mov x1, #8\n" R_ON "1: subs x1, x1, #1\n b.ne 1b\n" R_OFF R_END);

/* cyc_alt8: the alternating TBNZ of ev_branches (5 mispredicts).  INST 29 (msr, 8 x (tbnz,
 * subs, b.ne), 4 nops).  Model B: 8 + 8 x (2 + 1 + 2) + 4 x 8 + 5 x 5 = 105; STALL_FRONTEND
 * 8 + 8 + 25 = 41, STALL_BACKEND 7 + 4 x 7 = 35, STALL 76. */
REGION(r_cyc_alt8);
__asm__(R_BEGIN(r_cyc_alt8) "mov x1, #8\n" R_ON "1: tbnz x1, #0, 2f\n nop\n 2: subs x1, x1, #1\n b.ne 1b\n" R_OFF R_END);

/* cyc_svc: msr, svc (system), eret (branch; exception returns are not predicted), nop.
 * INST 4.  Model B: 8 + 8 + 2 + 8 = 26; STALL_FRONTEND 1, STALL_BACKEND 21, STALL 22. */
REGION(r_cyc_svc);
__asm__(R_BEGIN(r_cyc_svc) VEC(ev_vec_a) R_ON "svc #0\n nop\n" R_OFF VEC_RESTORE R_END);

/* cnt16: msr + 15 adds: 16 cycles in the default model = exactly one system-counter tick
 * whatever the phase: CNT_CYCLES 1.  cnt160: msr + 159 adds = 160 cycles: CNT_CYCLES 10. */
REGION(r_cnt16);
__asm__(R_BEGIN(r_cnt16) R_ON ".rept 15\n add x1, x1, #1\n .endr\n" R_OFF R_END);
REGION(r_cnt160);
__asm__(R_BEGIN(r_cnt160) R_ON ".rept 159\n add x1, x1, #1\n .endr\n" R_OFF R_END);

/* wfi: the virtual timer fires 1000 ticks after it is armed (before the enabling MSR); WFI
 * waits for it with PSTATE.I set, then daifclr takes the IRQ (handler: IAR, CNTV_CTL = 0,
 * EOIR, eret).  Executed: msr, wfi, msr daifclr, 4 handler instructions, msr daifset = 8.
 * The clock is stopped while waiting: CPU_CYCLES / PMCCNTR count the 8 instructions only
 * (default model 8; model B 8 + 8 + 8 + (8 + 8 + 8 + 2) + 8 = 58), and CNT_CYCLES counts
 * only the ticks of those cycles (at most ceil(cycles / 16)), while CNTVCT advances by at
 * least 1000 (printed as wfi.cntvct_delta).  EXC_TAKEN 1, EXC_RETURN 1, PC_WRITE 1. */
REGION(r_wfi);
__asm__(R_BEGIN(r_wfi) VEC(ev_vec_a) "mov x1, #1000\n msr cntv_tval_el0, x1\n mov x1, #1\n msr cntv_ctl_el0, x1\n isb\n"
        R_ON "wfi\n msr daifclr, #2\n msr daifset, #2\n" R_OFF VEC_RESTORE R_END);

struct region { const char *name; ev_region_t fn; };
static const struct region REGIONS[] = {
    {"cyc_mix", r_cyc_mix}, {"cyc_loop8", r_cyc_loop8}, {"cyc_alt8", r_cyc_alt8}, {"cyc_svc", r_cyc_svc},
    {"cnt16", r_cnt16}, {"cnt160", r_cnt160},
};

int main(void)
{
    gic_init();
    gic_enable_irq(27, 0x80);           /* virtual timer PPI */
    ev_program(EV_STD, EV_NSTD, 0, 0);
    for (u64 r = 0; r < sizeof(REGIONS) / sizeof(REGIONS[0]); r++)
        ev_measure(REGIONS[r].name, REGIONS[r].fn, 2);
    u64 t0 = cntvct();
    ev_measure("wfi", r_wfi, 0);
    kv_u64("wfi.cntvct_delta", cntvct() - t0);
    return report();
}
