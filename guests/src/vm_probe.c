/* What the guest sees of the machine its run options or VM description (--vm) configure:
 * the RAM size in the device tree's /memory node (and that its last word is really there),
 * PMUVer and PMCR_EL0.N, PMCEID0/1, the PMU and timer interrupts in the tree, the INTID the
 * virtual timer really raises (every PPI enabled, so a wrong wiring shows), and the PV-time
 * base (SMCCC PV_TIME_ST).  tests/test_options.py runs it once per VM-description field. */
#include "vpmu.h"

#define PV_TIME_ST 0xC5000021UL
#define FDT_BEGIN_NODE 1
#define FDT_PROP 3
#define FDT_END 9

static volatile u64 timer_intid;

static void irq_handler(struct exc_frame *f, int vec)
{
    (void)f; (void)vec;
    u32 id = gic_ack();
    if (!timer_intid)
        timer_intid = id;
    write_sysreg(cntv_ctl_el0, 0);              /* deassert: the timer fires once */
    isb();
    gic_eoi(id);
}

/* The first node whose device_type is `type` (the memory node has no "compatible"). */
static int fdt_find_device_type(u64 dtb, const char *type)
{
    const u8 *s = (const u8 *)(dtb + be32((const u8 *)dtb + 8));   /* off_dt_struct */
    int off = 0;
    for (;;) {
        u32 tok = be32(s + off);
        if (tok == FDT_END)
            return -1;
        if (tok == FDT_BEGIN_NODE) {
            u32 len;
            const char *v = fdt_getprop(dtb, off, "device_type", &len);
            if (v && !strcmp(v, type))
                return off;
            off += 4;
            while (s[off])
                off++;
            off = (off + 4) & ~3;
        } else if (tok == FDT_PROP) {
            off += 12 + ((be32(s + off + 4) + 3) & ~3u);
        } else {
            off += 4;
        }
    }
}

/* INTID of the `i`th three-cell interrupt specifier of the node compatible with `compat`. */
static u64 dt_intid(u64 dtb, const char *compat, u32 i)
{
    int node = fdt_find_compatible(dtb, compat);
    if (node < 0)
        return 0;
    u32 len;
    const u8 *p = fdt_getprop(dtb, node, "interrupts", &len);
    if (!p || len < 12 * (i + 1))
        return 0;
    p += 12 * i;
    return be32(p) == 1 ? be32(p + 4) + 16 : be32(p + 4) + 32;   /* 1 = PPI, 0 = SPI */
}

int main(void)
{
    u64 dtb = 0x40000000UL;                     /* an ELF boot: the tree at the start of RAM */
    int mem = fdt_find_device_type(dtb, "memory");
    u32 len = 0;
    const u8 *reg = mem >= 0 ? fdt_getprop(dtb, mem, "reg", &len) : 0;
    u64 base = reg && len >= 16 ? be64(reg) : 0, size = reg && len >= 16 ? be64(reg + 8) : 0;
    kv_hex("mem_base", base);
    kv_hex("mem_size", size);
    if (size) {
        volatile u64 *last = (volatile u64 *)(base + size - 8);   /* a data abort if absent */
        *last = 0x5a5a5a5aa5a5a5a5UL;
        kv_u64("mem_last_word_ok", *last == 0x5a5a5a5aa5a5a5a5UL);
    }

    u64 ver = pmuver();
    kv_u64("pmuver", ver);
    if (ver) {                                  /* without a PMU these registers UNDEF */
        kv_u64("n", pmu_n());
        kv_hex("pmceid0", read_sysreg(pmceid0_el0));
        kv_hex("pmceid1", read_sysreg(pmceid1_el0));
    }
    kv_u64("dt_pmu_intid", dt_intid(dtb, "arm,armv8-pmuv3", 0));
    /* arm,armv8-timer: secure physical, non-secure physical, virtual, hypervisor physical */
    kv_u64("dt_ptimer_intid", dt_intid(dtb, "arm,armv8-timer", 1));
    kv_u64("dt_vtimer_intid", dt_intid(dtb, "arm,armv8-timer", 2));
    kv_u64("dt_hptimer_intid", dt_intid(dtb, "arm,armv8-timer", 3));

    set_irq_handler(irq_handler);
    gic_init();
    for (u32 ppi = 16; ppi < 32; ppi++)
        gic_enable_irq(ppi, 0x80);
    write_sysreg(cntv_tval_el0, 100);
    write_sysreg(cntv_ctl_el0, 1);              /* ENABLE, not masked */
    isb();
    irq_enable();
    for (u64 spins = 0; !timer_intid && spins < 1000000; spins++)
        barrier();
    irq_disable();
    kv_u64("vtimer_fired_intid", timer_intid);

    kv_hex("pvtime_st", smccc(PV_TIME_ST, 0, 0, 0));
    return 0;
}
