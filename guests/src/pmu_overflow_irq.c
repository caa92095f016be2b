/* Overflow interrupt precision: counter 0 counts INST_RETIRED from 0xFFFFFFF0 with its
 * interrupt enabled; the IRQ must be taken right after the 16th instruction. */
#include "vpmu.h"

static volatile u64 irq_elr, irq_count, irq_intid, ovs_seen;
extern char ovf_region[];

static void irq_handler(struct exc_frame *f, int vec)
{
    u32 id = gic_ack();
    irq_intid = id;
    irq_elr = f->elr;
    irq_count++;
    ovs_seen = read_sysreg(pmovsclr_el0);
    write_sysreg(pmovsclr_el0, ~0UL);
    isb();
    gic_eoi(id);
}

int main(void)
{
    set_irq_handler(irq_handler);
    gic_init();
    gic_enable_irq(23, 0x80);
    pmu_reset();
    write_sysreg(pmevtyper0_el0, EV_INST_RETIRED);
    write_sysreg(pmevcntr0_el0, 0xFFFFFFF0UL);
    write_sysreg(pmintenset_el1, 1);
    write_sysreg(pmcntenset_el0, 1);
    isb();
    irq_enable();
    /* msr pmcr (counted: 1) ; then 40 nops. Instruction #16 counted is nop #15 (index 14),
       at ovf_region + 4*14; the IRQ's ELR is the next instruction, ovf_region + 4*15. */
    __asm__ volatile("msr pmcr_el0, %0\n"
                     ".global ovf_region\n ovf_region:\n"
                     ".rept 40\n nop\n .endr\n"
                     :: "r"((u64)(PMCR_LC | PMCR_E)) : "memory");
    pmcr_write(PMCR_LC);
    irq_disable();
    kv_u64("irq_count", irq_count);
    kv_u64("irq_intid", irq_intid);
    kv_u64("elr_offset", (irq_elr - (u64)ovf_region) / 4);
    kv_hex("ovs", ovs_seen);
    kv_hex("counter", read_sysreg(pmevcntr0_el0));
    return 0;
}
