/* PV time (SMCCC PV_TIME_FEATURES / PV_TIME_ST, Arm DEN0057A) and the 64-byte stolen-time
 * record: revision 0, attributes 0, stolen ns (little-endian u64 at offset 8). */
#include "vpmu.h"
#include "board_common.h"

#define PV_TIME_FEATURES 0xC5000020UL
#define PV_TIME_ST 0xC5000021UL
#define SMCCC_ARCH_FEATURES 0x80000001UL

int main(void)
{
    kv_hex("arch_features_pv", smccc(SMCCC_ARCH_FEATURES, PV_TIME_FEATURES, 0, 0));
    kv_hex("features_features", smccc(PV_TIME_FEATURES, PV_TIME_FEATURES, 0, 0));
    kv_hex("features_st", smccc(PV_TIME_FEATURES, PV_TIME_ST, 0, 0));
    u64 ipa = smccc(PV_TIME_ST, 0, 0, 0);
    kv_hex("st", ipa);
    if ((s64)ipa < 0)
        return 0;
    volatile u32 *rec32 = (volatile u32 *)ipa;
    volatile u64 *rec64 = (volatile u64 *)ipa;
    kv_u64("revision", rec32[0]);
    kv_u64("attributes", rec32[1]);
    kv_u64("stolen_at_start", rec64[1]);
    /* run for 3.5 ms of guest time: the host takes its slice each millisecond */
    pmu_reset();
    write_sysreg(pmcntenset_el0, 1UL << 31);
    pmcr_write(PMCR_LC | PMCR_E);
    u64 c0 = read_sysreg(pmccntr_el0);
    u64 t0 = cntvct();
    while (cntvct() - t0 < 3500000UL / 16)       /* 62.5 MHz ticks */
        ;
    u64 t1 = cntvct();
    u64 cycles = read_sysreg(pmccntr_el0) - c0;
    kv_u64("stolen_ns", rec64[1]);
    kv_u64("elapsed_ns", (t1 - t0) * 16);
    kv_u64("cycles", cycles);
    if (board_arg_is("then", "wfi")) {
        /* nothing can wake this WFI: the stolen-time tick moves time on but interrupts nobody */
        __asm__ volatile("msr daifset, #2\n wfi" ::: "memory");
        kv_u64("woke", 1);
    }
    return 0;
}
