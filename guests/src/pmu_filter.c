/* The guest side of the arm64 KVM pmu_event_filter selftest (kvm-pmu.md 4.3): count
 * BR_RETIRED on #0 and INST_RETIRED on #1 around a 10-iteration loop and report PMCEID0/1;
 * the host side (tests/test_filter_guest.py) installs the filters and checks the counts. */
#include "vpmu.h"

int main(void)
{
    pmu_reset();
    write_sysreg(pmevtyper0_el0, EV_BR_RETIRED);
    write_sysreg(pmevtyper1_el0, EV_INST_RETIRED);
    write_sysreg(pmevtyper2_el0, EV_SW_INCR);
    write_sysreg(pmevtyper3_el0, EV_CPU_CYCLES);
    write_sysreg(pmccfiltr_el0, 0);
    write_sysreg(pmcntenset_el0, 0x8000000fUL);
    u64 k = 10;
    /* msr pmcr (1) ; isb (1) ; 10 x (subs ; cmp ; b.gt) ; msr pmcr, xzr (not counted)
       = 32 instructions, 10 branches (9 taken) */
    __asm__ volatile("msr pmcr_el0, %[e]\n isb\n"
                     "1: subs %[k], %[k], #1\n cmp %[k], #0\n b.gt 1b\n"
                     "msr pmswinc_el0, %[four]\n"
                     "msr pmcr_el0, xzr\n isb"
                     : [k] "+r"(k) : [e] "r"((u64)(PMCR_E | PMCR_LC)), [four] "r"(4UL) : "cc");
    kv_u64("br", read_sysreg(pmevcntr0_el0));
    kv_u64("inst", read_sysreg(pmevcntr1_el0));
    kv_u64("swinc", read_sysreg(pmevcntr2_el0));
    kv_u64("cycles", read_sysreg(pmevcntr3_el0));
    kv_u64("ccnt", read_sysreg(pmccntr_el0));
    kv_hex("pmceid0", read_sysreg(pmceid0_el0));
    kv_hex("pmceid1", read_sysreg(pmceid1_el0));
    kv_hex("typer0", read_sysreg(pmevtyper0_el0));
    return 0;
}
