/* Smoke test of the counting path: the kvm-unit-tests precise loop. */
#include "vpmu.h"

static NOINLINE void precise_loop(u64 k, u64 pmcr)
{
    /* msr pmcr (starts counting; counted) ; isb ; k x (subs ; b.gt) ; msr pmcr, xzr (not counted)
       => 2 + 2k instructions */
    __asm__ volatile("msr pmcr_el0, %[pmcr]\n\tisb\n"
                     "1:\tsubs %[k], %[k], #1\n\tb.gt 1b\n"
                     "\tmsr pmcr_el0, xzr\n\tisb\n"
                     : [k] "+r"(k) : [pmcr] "r"(pmcr) : "cc");
}

int main(void)
{
    pmu_reset();
    write_sysreg(pmevtyper0_el0, EV_INST_RETIRED);
    write_sysreg(pmevtyper1_el0, EV_CPU_CYCLES);
    write_sysreg(pmevtyper2_el0, EV_BR_RETIRED);
    write_sysreg(pmccfiltr_el0, 0);
    write_sysreg(pmcntenset_el0, 0x80000007);
    isb();
    precise_loop(20, PMCR_LC | PMCR_E);
    kv_u64("inst", read_sysreg(pmevcntr0_el0));
    kv_u64("cycles", read_sysreg(pmevcntr1_el0));
    kv_u64("br", read_sysreg(pmevcntr2_el0));
    kv_u64("ccnt", read_sysreg(pmccntr_el0));
    kv_hex("pmcr", read_sysreg(pmcr_el0));
    kv_u64("n", pmu_n());
    kv_u64("pmuver", pmuver());
    return 0;
}
