/* What a PMU driver probes first: ID_AA64DFR0_EL1.PMUVer, then PMCR_EL0 (UNDEF without a PMU). */
#include "vpmu.h"

static volatile u64 undefs;
static void sync_handler(struct exc_frame *f, int vec) { (void)vec; if (ESR_EC(f->esr) == 0) undefs++; f->elr += 4; }

int main(void)
{
    set_sync_handler(sync_handler);
    kv_u64("pmuver", pmuver());
    kv_u64("perfmon_aarch32", (read_sysreg(id_dfr0_el1) >> 24) & 0xf);
    u64 pmcr = read_sysreg(pmcr_el0);
    kv_u64("pmcr_undef", undefs);
    kv_u64("n", undefs ? 0 : (pmcr >> 11) & 0x1f);
    kv_hex("pmcr", undefs ? 0 : pmcr);
    undefs = 0;
    (void)read_sysreg(pmmir_el1);
    kv_u64("pmmir_undef", undefs);
    return 0;
}
