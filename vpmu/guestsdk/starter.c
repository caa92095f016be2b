/* A vpmu guest: counts a loop with two PMU event counters and prints the counts as
 * key=value lines.  Build and run it:
 *
 *     vpmu guest build NAME.c        (writes NAME.elf)
 *     vpmu run NAME.elf              (prints inst=42 and branches=20, exit status 0)
 *
 * vpmu.h (in the vpmu package, found by vpmu guest build) declares the runtime: printf,
 * kv_u64, the PMU and GIC helpers, exception handlers, exit().  main() returning is exit(). */
#include "vpmu.h"

int main(void)
{
    pmu_reset();                                       /* counters stopped and zeroed */
    write_sysreg(pmevtyper0_el0, EV_INST_RETIRED);     /* counter 0: instructions retired */
    write_sysreg(pmevtyper1_el0, EV_BR_RETIRED);       /* counter 1: branches retired */
    write_sysreg(pmcntenset_el0, 3);                   /* enable counters 0 and 1 */
    u64 k = 20;
    /* Counted (an instruction counts after its own effect: vpmu's docs/events.md): the msr that sets
     * PMCR_EL0.E, the isb, 20 x (subs; b.gt); not the msr that clears E.  1 + 1 + 40 = 42
     * instructions, of which the 20 b.gt are branches (taken or not, each retires as one). */
    __asm__ volatile("msr pmcr_el0, %[e]\n isb\n1: subs %[k], %[k], #1\n b.gt 1b\n msr pmcr_el0, xzr\n isb"
                     : [k] "+r"(k) : [e] "r"((u64)PMCR_E) : "cc");
    kv_u64("inst", read_sysreg(pmevcntr0_el0));
    kv_u64("branches", read_sysreg(pmevcntr1_el0));
    return 0;                                          /* the run's exit status (semihosting) */
}
