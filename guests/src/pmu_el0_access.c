/* EL0 access to every PMU register under each PMUSERENR_EL0 setting (kvm-pmu.md 3.1):
 * for each register and direction a tiny EL0 function does the access; the EL1 handler
 * records an UNDEF (ESR.EC = 0) and skips the instruction.  Prints one line per
 * (pmuserenr, register, direction): "r.<pmuserenr>.<reg>=<1 if it UNDEFed>". */
#include "vpmu.h"

static volatile u64 undefs, last_ec;

static void sync_handler(struct exc_frame *f, int vec)
{
    (void)vec;
    last_ec = ESR_EC(f->esr);
    undefs++;
    f->elr += 4;
}

#define RD(name, reg) static u64 rd_##name(u64 a) { (void)a; return read_sysreg(reg); }
#define WR(name, reg) static u64 wr_##name(u64 a) { write_sysreg(reg, a); return 0; }
#define RW(name, reg) RD(name, reg) WR(name, reg)

RW(pmcr, pmcr_el0)
RW(pmcntenset, pmcntenset_el0)
RW(pmcntenclr, pmcntenclr_el0)
RW(pmovsset, pmovsset_el0)
RW(pmovsclr, pmovsclr_el0)
RW(pmselr, pmselr_el0)
RW(pmccntr, pmccntr_el0)
RW(pmxevtyper, pmxevtyper_el0)
RW(pmxevcntr, pmxevcntr_el0)
RW(pmevtyper0, pmevtyper0_el0)
RW(pmevcntr0, pmevcntr0_el0)
RW(pmccfiltr, pmccfiltr_el0)
RW(pmuserenr, pmuserenr_el0)
RW(pmintenset, pmintenset_el1)
RW(pmintenclr, pmintenclr_el1)
RD(pmceid0, pmceid0_el0)
RD(pmceid1, pmceid1_el0)
WR(pmswinc, pmswinc_el0)
/* reading PMSWINC and writing PMCEID0 have no assembler names: encode them */
static u64 rd_pmswinc(u64 a) { (void)a; u64 v; __asm__ volatile("mrs %0, s3_3_c9_c12_4" : "=r"(v)); return v; }
static u64 wr_pmceid0(u64 a) { __asm__ volatile("msr s3_3_c9_c12_6, %0" :: "r"(a)); return 0; }

static const struct { const char *name; u64 (*rd)(u64); u64 (*wr)(u64); } regs[] = {
    { "PMCR_EL0", rd_pmcr, wr_pmcr }, { "PMCNTENSET_EL0", rd_pmcntenset, wr_pmcntenset },
    { "PMCNTENCLR_EL0", rd_pmcntenclr, wr_pmcntenclr }, { "PMOVSSET_EL0", rd_pmovsset, wr_pmovsset },
    { "PMOVSCLR_EL0", rd_pmovsclr, wr_pmovsclr }, { "PMSELR_EL0", rd_pmselr, wr_pmselr },
    { "PMCCNTR_EL0", rd_pmccntr, wr_pmccntr }, { "PMXEVTYPER_EL0", rd_pmxevtyper, wr_pmxevtyper },
    { "PMXEVCNTR_EL0", rd_pmxevcntr, wr_pmxevcntr }, { "PMEVTYPER0_EL0", rd_pmevtyper0, wr_pmevtyper0 },
    { "PMEVCNTR0_EL0", rd_pmevcntr0, wr_pmevcntr0 }, { "PMCCFILTR_EL0", rd_pmccfiltr, wr_pmccfiltr },
    { "PMUSERENR_EL0", rd_pmuserenr, wr_pmuserenr }, { "PMINTENSET_EL1", rd_pmintenset, wr_pmintenset },
    { "PMINTENCLR_EL1", rd_pmintenclr, wr_pmintenclr }, { "PMCEID0_EL0", rd_pmceid0, wr_pmceid0 },
    { "PMCEID1_EL0", rd_pmceid1, 0 }, { "PMSWINC_EL0", rd_pmswinc, wr_pmswinc },
};

int main(void)
{
    static const u64 settings[] = { 0, 1, 2, 4, 8, 0xf };
    set_sync_handler(sync_handler);
    kv_u64("el0_pmuserenr_writable_bits", 0);
    for (unsigned s = 0; s < sizeof settings / sizeof settings[0]; s++) {
        for (unsigned r = 0; r < sizeof regs / sizeof regs[0]; r++) {
            for (int dir = 0; dir < 2; dir++) {
                u64 (*fn)(u64) = dir ? regs[r].wr : regs[r].rd;
                if (!fn)
                    continue;
                pmu_select(0);                      /* PMXEV* select counter 0 */
                write_sysreg(pmuserenr_el0, settings[s]);
                isb();
                u64 before = undefs;
                last_ec = 0xff;
                /* writes use 0 (harmless: E stays clear, nothing is set) */
                el0_call(fn, 0, (u64)__el0_stack_top);
                printf("%c.%lu.%s=%lu\n", dir ? 'w' : 'r', settings[s], regs[r].name,
                       (undefs != before && last_ec == 0) ? 1UL : 0UL);
            }
        }
    }
    write_sysreg(pmuserenr_el0, 0);
    kv_u64("pmuserenr_readback", read_sysreg(pmuserenr_el0));
    return 0;
}
