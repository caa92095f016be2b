/* Event semantics, instructions and exceptions: INST_RETIRED, INST_SPEC, OP_*, CPU_CYCLES,
 * EXC_TAKEN, EXC_RETURN across SVC, BRK, UDF, data aborts and IRQs, at EL1 and from EL0,
 * and filtering by Exception level (PMEVTYPER<n>.P/U, PMCCFILTR.P/U).
 *
 * Run with --counters 31.  Bracketing (ev_harness.h): every count includes the enabling
 * `msr pmcr_el0, x0` and not the disabling `msr pmcr_el0, xzr`.  The exception regions
 * install the harness's vector tables ev_vec_a / ev_vec_b (ev_harness.h: an SVC handler is
 * 1 instruction, a skipping sync handler 4, the IRQ handler 4, the lower-EL sync entry 1).
 * Every region is run twice before it is measured (warm-up), so the branch predictor
 * state is the steady state of the region.  Each region is measured four times: all
 * ELs ("@all"), EL0 only ("@el0": P=1), EL1 only ("@el1": U=1) and none ("@none": P=U=1),
 * in PMEVTYPER and PMCCFILTR alike.
 */
#include "ev_harness.h"

/* ---- straight-line code ------------------------------------------------------------------ */
/* nop8: msr + 8 NOPs.  INST = INST_SPEC = OP = L1I_CACHE = CPU_CYCLES = CCNT = 9; nothing else. */
REGION(r_nop8);
__asm__(R_BEGIN(r_nop8) R_ON ".rept 8\n nop\n .endr\n" R_OFF R_END);

/* alu: msr + mov, add, sub, and, orr, eor, lsl, madd, sdiv, cmp, csel (condition false) = 12.
 * A condition-failing CSEL is architecturally executed.  INST = 12. */
REGION(r_alu);
__asm__(R_BEGIN(r_alu) R_ON
        "mov x1, #7\n add x2, x1, #1\n sub x3, x2, x1\n and x4, x2, x3\n orr x5, x4, x1\n"
        "eor x6, x5, x2\n lsl x7, x6, #2\n madd x8, x7, x1, x2\n sdiv x9, x8, x1\n"
        "cmp x1, #0\n csel x10, x1, x2, eq\n"
        R_OFF R_END);

/* barriers: msr + isb + dsb sy + dmb ish + clrex + nop = 6; ISB is not a branch
 * (PC_WRITE_RETIRED = BR_RETIRED = 0). */
REGION(r_barriers);
__asm__(R_BEGIN(r_barriers) R_ON "isb\n dsb sy\n dmb ish\n clrex\n nop\n" R_OFF R_END);

/* hints: msr + yield + wfe + sev + sevl + nop = 6 (WFE does not wait in vpmu: QEMU treats it
 * as a yield). */
REGION(r_hints);
__asm__(R_BEGIN(r_hints) R_ON "yield\n wfe\n sev\n sevl\n nop\n" R_OFF R_END);

/* ---- exceptions at EL1 --------------------------------------------------------------------- */
/* svc_el1: msr(1) svc(2) -> vector: eret(3) -> nop(4).  The SVC retires (preferred return
 * address is the next instruction).  EXC_TAKEN 1 (from EL1), EXC_RETURN 1, PC_WRITE 1 (ERET);
 * SVC and ERET are not branches: BR_RETIRED 0. */
REGION(r_svc_el1);
__asm__(R_BEGIN(r_svc_el1) VEC(ev_vec_a) R_ON "svc #0\n nop\n" R_OFF VEC_RESTORE R_END);

/* brk: msr(1) brk (faults: does not retire) -> vector b: mrs add msr eret (2-5) -> nop(6).
 * EXC_TAKEN 1, EXC_RETURN 1, PC_WRITE 1. */
REGION(r_brk);
__asm__(R_BEGIN(r_brk) VEC(ev_vec_b) R_ON "brk #1\n nop\n" R_OFF VEC_RESTORE R_END);

/* udf: as brk with a permanently UNDEFINED encoding (udf #0): INST 6. */
REGION(r_udf);
__asm__(R_BEGIN(r_udf) VEC(ev_vec_b) R_ON ".inst 0x00000000\n nop\n" R_OFF VEC_RESTORE R_END);

/* dabt: msr(1) ldr from an address with nothing behind it (data abort: the load does not
 * retire: LD_RETIRED 0, MEM_ACCESS 0) -> vector b (2-5) -> nop(6).  EXC_TAKEN 1. */
REGION(r_dabt);
__asm__(R_BEGIN(r_dabt) VEC(ev_vec_b) "mov x1, #0x1230\n" R_ON "ldr x2, [x1]\n nop\n" R_OFF VEC_RESTORE R_END);

/* hvc0: HVC #0 is the emulated firmware's SMCCC conduit (PSCI_VERSION): no exception is
 * taken in the guest; the HVC retires.  msr(1) hvc(2) nop(3): INST 3, EXC_TAKEN 0. */
REGION(r_hvc0);
__asm__(R_BEGIN(r_hvc0) "mov x8, x0\n ldr x0, =0x84000000\n" "msr pmcr_el0, x8\n" "hvc #0\n nop\n" R_OFF R_END);

/* irq_el1: msr(1) msr SGI1R (2: INTID 1 pending, PSTATE.I masks it) msr daifclr (3) ->
 * the IRQ is taken before the next instruction: handler IAR, CNTV_CTL, EOIR, eret (4-7) ->
 * msr daifset (8).  EXC_TAKEN 1 (an IRQ at EL1), EXC_RETURN 1, PC_WRITE 1. */
REGION(r_irq_el1);
__asm__(R_BEGIN(r_irq_el1) VEC(ev_vec_a) "ldr x1, =" SGI1 "\n" R_ON
        "msr s3_0_c12_c11_5, x1\n msr daifclr, #2\n msr daifset, #2\n" R_OFF VEC_RESTORE R_END);

/* ---- from EL0 -------------------------------------------------------------------------------- */
/* el0_svc: EL1: msr(1) eret(2) -> EL0: nop(1) nop(2) svc(3) -> EL1 vector: br x16 (3) -> done.
 * EL0: INST 3, EXC_TAKEN 1 (attributed to the EL it was taken from).
 * EL1: INST 3, EXC_RETURN 1 (the ERET executes at EL1), PC_WRITE 2 (eret, br),
 *      BR_RETIRED 1 (br x16; trained: predicted).  CCNT per EL = INST per EL. */
REGION(r_el0_svc);
__asm__(R_BEGIN(r_el0_svc) TO_EL0_SETUP VEC(ev_vec_a) R_ON
        "eret\n"
        "2: nop\n nop\n svc #0\n"
        "3:" R_OFF VEC_RESTORE R_END);

/* el0_irq: EL1: msr(1) msr SGI1R(2) eret(3) -> EL0 has PSTATE.I clear: the IRQ is taken
 * before the first EL0 instruction -> EL1 handler (4-7) -> EL0: nop(1) svc(2) -> EL1: br x16
 * (8).  EXC_TAKEN: 2 at EL0 (IRQ and SVC), EXC_RETURN: 2 at EL1, PC_WRITE 3 at EL1. */
REGION(r_el0_irq);
__asm__(R_BEGIN(r_el0_irq) TO_EL0_SETUP VEC(ev_vec_a) "ldr x1, =" SGI1 "\n" R_ON
        "msr s3_0_c12_c11_5, x1\n eret\n"
        "2: nop\n svc #0\n"
        "3:" R_OFF VEC_RESTORE R_END);

/* el0_brk: EL1: msr(1) eret(2) -> EL0: brk (not retired) -> EL1 vector b is for the
 * current EL; from EL0 the lower-EL entry runs: br x16 (3).  EL0: INST 0, EXC_TAKEN 1. */
REGION(r_el0_brk);
__asm__(R_BEGIN(r_el0_brk) TO_EL0_SETUP VEC(ev_vec_b) R_ON
        "eret\n"
        "2: brk #2\n"
        "3:" R_OFF VEC_RESTORE R_END);

/* ---- el0_call (runtime): EL0 only ------------------------------------------------------------ */
/* el0_leaf runs at EL0 through the runtime's el0_call: nop, nop, ret, then the trampoline's
 * svc #0xffff: 4 EL0 instructions, BR_RETURN 1, EXC_TAKEN 1 (the SVC, from EL0).  Measured
 * with P=1 so that the runtime's EL1 code (exception dispatch in C) does not count. */
extern u64 el0_leaf(u64);
__asm__(".text\n.balign 64\n.global el0_leaf\nel0_leaf:\n nop\n nop\n ret\n");

static void measure_el0_call(const char *name)
{
    for (int i = 0; i < 2; i++) {
        ev_clear();
        write_sysreg(pmcr_el0, EV_PMCR);
        el0_call(el0_leaf, 0, (u64)__el0_stack_top);
        write_sysreg(pmcr_el0, 0);
    }
    ev_clear();
    write_sysreg(pmcr_el0, EV_PMCR);
    el0_call(el0_leaf, 0, (u64)__el0_stack_top);
    write_sysreg(pmcr_el0, 0);
    isb();
    ev_print(name);
}

struct region { const char *name; ev_region_t fn; };
static const struct region REGIONS[] = {
    {"nop8", r_nop8}, {"alu", r_alu}, {"barriers", r_barriers}, {"hints", r_hints},
    {"svc_el1", r_svc_el1}, {"brk", r_brk}, {"udf", r_udf}, {"dabt", r_dabt}, {"hvc0", r_hvc0},
    {"irq_el1", r_irq_el1}, {"el0_svc", r_el0_svc}, {"el0_irq", r_el0_irq}, {"el0_brk", r_el0_brk},
};

int main(void)
{
    static const struct { const char *sfx; u64 f; } FILT[] = {
        {"@all", 0}, {"@el0", PMEVTYPER_P}, {"@el1", PMEVTYPER_U}, {"@none", PMEVTYPER_P | PMEVTYPER_U},
    };
    char name[64];
    gic_init();
    gic_enable_irq(1, 0x80);
    kv_u64("counters", pmu_n());
    for (u64 f = 0; f < 4; f++) {
        ev_program(EV_STD, EV_NSTD, FILT[f].f, FILT[f].f);
        for (u64 r = 0; r < sizeof(REGIONS) / sizeof(REGIONS[0]); r++) {
            u64 k = 0;
            for (const char *s = REGIONS[r].name; *s; s++) name[k++] = *s;
            for (const char *s = FILT[f].sfx; *s; s++) name[k++] = *s;
            name[k] = 0;
            ev_measure(name, REGIONS[r].fn, 2);
        }
    }
    ev_program(EV_STD, EV_NSTD, PMEVTYPER_P, PMEVTYPER_P);
    measure_el0_call("el0_call@el0");
    return report();
}
