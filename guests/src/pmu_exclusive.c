/* Store-exclusive outcome: a failed STXR is not a store (Arm ARM ST_RETIRED). */
#include "vpmu.h"

static u64 word ALIGNED(64);

int main(void)
{
    u64 st_ok, st_fail, mem_ok, mem_fail, s1, s2;
    pmu_reset();
    pmu_write_type(0, EV_ST_RETIRED);
    pmu_write_type(1, EV_MEM_ACCESS);
    pmu_write_type(2, EV_INST_RETIRED);
    write_sysreg(pmcntenset_el0, 7);
    /* success: msr(1) ldxr(1 access) stxr(1 access, ok) msr-off -> ST=1, MEM=2, INST=3 */
    __asm__ volatile("msr pmcr_el0, %[e]\n ldxr %[t], [%[p]]\n stxr %w[s], %[t], [%[p]]\n msr pmcr_el0, xzr\n isb"
                     : [s] "=&r"(s1) : [e] "r"((u64)PMCR_E), [p] "r"(&word), [t] "r"(0UL) : "memory");
    st_ok = pmu_read_counter(0);
    mem_ok = pmu_read_counter(1);
    kv_u64("inst_ok", pmu_read_counter(2));
    pmcr_write(PMCR_P | PMCR_LC);
    /* failure: clrex then stxr -> ST=0, MEM=0; INST=3 (msr, clrex, stxr) */
    __asm__ volatile("msr pmcr_el0, %[e]\n clrex\n stxr %w[s], %[t], [%[p]]\n msr pmcr_el0, xzr\n isb"
                     : [s] "=&r"(s2) : [e] "r"((u64)PMCR_E), [p] "r"(&word), [t] "r"(1UL) : "memory");
    st_fail = pmu_read_counter(0);
    mem_fail = pmu_read_counter(1);
    kv_u64("status_ok", s1);
    kv_u64("status_fail", s2);
    kv_u64("st_ok", st_ok);
    kv_u64("mem_ok", mem_ok);
    kv_u64("st_fail", st_fail);
    kv_u64("mem_fail", mem_fail);
    kv_u64("inst_fail", pmu_read_counter(2));
    return 0;
}
