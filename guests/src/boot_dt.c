/* Boot like real software: find the UART, the GIC and the PMU interrupt in the device tree
 * the board handed over (x0 for Image/flat boots; the start of RAM for an ELF), turn the
 * MMU on, and count events with the overflow interrupt taken from the tree.  Also built as
 * a flat binary (boot_flat.c) and as a Linux Image (boot_image.c); runs on QEMU's virt too. */
#include "vpmu.h"

static volatile u64 irqs, irq_id;

static void irq_handler(struct exc_frame *f, int vec)
{
    (void)f; (void)vec;
    u32 id = gic_ack();
    irq_id = id;
    irqs++;
    write_sysreg(pmovsclr_el0, ~0UL);
    isb();
    gic_eoi(id);
}

static u64 reg_base(u64 dtb, const char *compat)
{
    int node = fdt_find_compatible(dtb, compat);
    if (node < 0) return 0;
    u32 len;
    const u8 *reg = fdt_getprop(dtb, node, "reg", &len);
    return reg && len >= 16 ? be64(reg) : 0;    /* #address-cells = 2 */
}

int main(void)
{
    u64 dtb = boot_regs[0] ? boot_regs[0] : 0x40000000UL;
    kv_u64("dt_from_x0", boot_regs[0] != 0);
    kv_u64("x1", boot_regs[1]);
    kv_u64("x2", boot_regs[2]);
    kv_u64("x3", boot_regs[3]);
    kv_u64("el", current_el());
    kv_u64("dt_valid", fdt_valid(dtb));
    kv_hex("uart", reg_base(dtb, "arm,pl011"));
    kv_hex("gicd", reg_base(dtb, "arm,gic-v3"));
    int pmu = fdt_find_compatible(dtb, "arm,armv8-pmuv3");
    u32 len = 0;
    const u8 *intr = pmu >= 0 ? fdt_getprop(dtb, pmu, "interrupts", &len) : 0;
    u32 intid = 0;
    if (intr && len >= 12)
        intid = be32(intr + 4) + (be32(intr) == 1 ? 16 : 32);   /* <type number flags> */
    kv_u64("pmu_intid", intid);

    mmu_enable(0);
    kv_u64("mmu", read_sysreg(sctlr_el1) & 1);
    set_irq_handler(irq_handler);
    gic_init();
    gic_enable_irq(intid, 0x80);
    pmu_reset();
    write_sysreg(pmevtyper0_el0, EV_INST_RETIRED);
    write_sysreg(pmevtyper1_el0, EV_INST_RETIRED);
    write_sysreg(pmevcntr1_el0, 0xFFFFFF00UL);   /* overflows after 256 instructions */
    write_sysreg(pmintenset_el1, 2);
    write_sysreg(pmcntenset_el0, 3);
    irq_enable();
    u64 k = 1000;
    /* msr pmcr (1) ; isb (1) ; 1000 x (subs, b.ne) ; msr pmcr, xzr (not counted) = 2002 */
    __asm__ volatile("msr pmcr_el0, %[e]\n isb\n1: subs %[k], %[k], #1\n b.ne 1b\n msr pmcr_el0, xzr\n isb"
                     : [k] "+r"(k) : [e] "r"((u64)(PMCR_E | PMCR_LC)) : "cc");
    irq_disable();
    kv_u64("inst", read_sysreg(pmevcntr0_el0));
    kv_u64("irqs", irqs);
    kv_u64("irq_id", irq_id);
    mmu_disable();
    return 0;
}
