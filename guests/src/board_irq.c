/* Interrupts through the GICv3: acknowledge with ICC_IAR1_EL1, end with ICC_EOIR1_EL1.
 *  1. nothing pending: IAR = 1023 (spurious), RPR = 0xff (idle)
 *  2. SGI 1 sent with ICC_SGI1R_EL1 while PSTATE.I is set: pending, not taken; taken right
 *     after "msr daifclr, #2" (ELR = the next instruction), vector 5, RPR = its priority
 *  3. ICC_PMR_EL1 masking: an SGI of priority 0x80 is not taken with PMR = 0x80, and is
 *     taken once PMR = 0x88 (priority must be strictly higher = numerically lower)
 *  4. two pending SGIs are taken highest priority first (0x80 before 0xa0)
 *  5. preemption: a 0x80 SGI sent from a 0xa0 handler that unmasks IRQs is taken inside it
 *  6. GICR_ISPENDR0 / ICPENDR0 set and clear the pending state of SGI 8
 *  7. PPI 23 made pending by a PMU overflow (PMSWINC on a counter at 0xffffffff)
 *  8. PPI 27 made pending by the virtual timer (CVAL in the past), a level interrupt:
 *     the handler disables the timer before EOI
 * Priorities are multiples of 8 (QEMU implements 5 priority bits, vpmu 8). */
#include "board_common.h"

#define MAXLOG 16
static volatile u64 nlog, log_id[MAXLOG], log_rpr[MAXLOG], log_vec[MAXLOG], log_elr[MAXLOG], log_depth[MAXLOG];
static volatile u64 depth, nested_rpr, pmovs_seen, timer_ctl_seen;

static void irq_handler(struct exc_frame *f, int vec)
{
    u32 id = gic_ack();
    u64 i = nlog < MAXLOG ? nlog++ : MAXLOG - 1;
    log_id[i] = id;
    log_rpr[i] = read_sysreg(ICC_RPR_EL1);
    log_vec[i] = vec;
    log_elr[i] = f->elr;
    log_depth[i] = depth;
    if (id == 5) {                       /* preemption test: send SGI 6 (0x80) and let it in */
        depth++;
        gic_send_sgi(6);
        __asm__ volatile("msr daifclr, #2\n isb\n nop\n msr daifset, #2" ::: "memory");
        nested_rpr = read_sysreg(ICC_RPR_EL1);
        depth--;
    } else if (id == 23) {
        pmovs_seen = read_sysreg(pmovsclr_el0);
        write_sysreg(pmovsclr_el0, ~0UL);
        isb();
    } else if (id == 27) {
        timer_ctl_seen = read_sysreg(cntv_ctl_el0);
        write_sysreg(cntv_ctl_el0, 0);
        isb();
    }
    gic_eoi(id);
}

static void show_log(const char *name)
{
    printf("%s: n=%lu ids=", name, nlog);
    for (u64 i = 0; i < nlog; i++)
        printf("%s%lu", i ? "," : "", log_id[i]);
    printf(" rpr=");
    for (u64 i = 0; i < nlog; i++)
        printf("%s0x%lx", i ? "," : "", log_rpr[i]);
    printf(" vec=");
    for (u64 i = 0; i < nlog; i++)
        printf("%s%lu", i ? "," : "", log_vec[i]);
    printf("\n");
}

static void unmask_mask(void)
{
    __asm__ volatile("msr daifclr, #2\n isb\n nop\n msr daifset, #2" ::: "memory");
}

extern char after_unmask[];

int main(void)
{
    set_irq_handler(irq_handler);
    gic_init();                                  /* PMR = 0xf0 */

    /* 1 */
    kv_u64("iar_idle", read_sysreg(ICC_IAR1_EL1));
    kv_hex("rpr_idle", read_sysreg(ICC_RPR_EL1));
    kv_u64("hppir_idle", read_sysreg(ICC_HPPIR1_EL1));

    /* 2 */
    gic_enable_irq(1, 0x80);
    write_sysreg(ICC_SGI1R_EL1, (1UL << 24) | 1);     /* INTID 1, Aff 0.0.0, target list {0} */
    isb();
    kv_u64("sgi_hppir", read_sysreg(ICC_HPPIR1_EL1));
    kv_u64("sgi_taken_while_masked", nlog);
    __asm__ volatile("msr daifclr, #2\n.global after_unmask\nafter_unmask: nop\nmsr daifset, #2" ::: "memory");
    show_log("sgi");
    kv_u64("sgi_elr_after_unmask", nlog && log_elr[0] == (u64)after_unmask);
    kv_hex("rpr_after_eoi", read_sysreg(ICC_RPR_EL1));
    kv_u64("iar_after", read_sysreg(ICC_IAR1_EL1));

    /* 3 */
    nlog = 0;
    gic_enable_irq(2, 0x80);
    write_sysreg(ICC_PMR_EL1, 0x80);
    isb();
    gic_send_sgi(2);
    unmask_mask();
    kv_u64("pmr80_taken", nlog);
    kv_u64("pmr80_hppir", read_sysreg(ICC_HPPIR1_EL1));
    kv_u64("pmr80_iar", read_sysreg(ICC_IAR1_EL1));      /* masked by PMR: spurious */
    write_sysreg(ICC_PMR_EL1, 0x88);
    isb();
    unmask_mask();
    show_log("pmr88");
    write_sysreg(ICC_PMR_EL1, 0xf0);
    isb();

    /* 4 */
    nlog = 0;
    gic_enable_irq(3, 0xa0);
    gic_enable_irq(4, 0x80);
    gic_send_sgi(3);
    gic_send_sgi(4);
    kv_u64("order_hppir", read_sysreg(ICC_HPPIR1_EL1));
    unmask_mask();
    show_log("order");

    /* 5 */
    nlog = 0;
    gic_enable_irq(5, 0xa0);
    gic_enable_irq(6, 0x80);
    gic_send_sgi(5);
    unmask_mask();
    show_log("preempt");
    printf("preempt_depth=%lu,%lu\n", log_depth[0], nlog > 1 ? log_depth[1] : 99);
    kv_hex("preempt_rpr_after_nested", nested_rpr);

    /* 6 */
    nlog = 0;
    gic_enable_irq(8, 0x80);
    *(volatile u32 *)(GICR_SGI_BASE + GICR_ISPENDR0) = 1u << 8;
    kv_u64("ispendr_bit8", (*(volatile u32 *)(GICR_SGI_BASE + GICR_ISPENDR0) >> 8) & 1);
    *(volatile u32 *)(GICR_SGI_BASE + GICR_ICPENDR0) = 1u << 8;
    kv_u64("icpendr_bit8", (*(volatile u32 *)(GICR_SGI_BASE + GICR_ISPENDR0) >> 8) & 1);
    unmask_mask();
    kv_u64("cleared_taken", nlog);
    *(volatile u32 *)(GICR_SGI_BASE + GICR_ISPENDR0) = 1u << 8;
    unmask_mask();
    show_log("ispendr");

    /* 7 */
    nlog = 0;
    gic_enable_irq(23, 0x80);
    pmu_reset();
    write_sysreg(pmevtyper0_el0, EV_SW_INCR);
    write_sysreg(pmevcntr0_el0, 0xffffffffUL);
    write_sysreg(pmintenset_el1, 1);
    write_sysreg(pmcntenset_el0, 1);
    pmcr_write(PMCR_LC | PMCR_E);
    write_sysreg(pmswinc_el0, 1);
    isb();
    kv_u64("pmu_taken_while_masked", nlog);
    unmask_mask();
    show_log("pmu");
    kv_hex("pmu_pmovs", pmovs_seen);
    kv_u64("pmu_counter_low32", read_sysreg(pmevcntr0_el0) & 0xffffffffUL);   /* 64-bit from PMUv3p5 */
    pmcr_write(PMCR_LC);

    /* 8 */
    nlog = 0;
    gic_enable_irq(27, 0x80);
    write_sysreg(cntv_cval_el0, 0);
    write_sysreg(cntv_ctl_el0, 1);
    isb();
    kv_hex("timer_ctl", read_sysreg(cntv_ctl_el0));    /* ENABLE | ISTATUS */
    unmask_mask();
    show_log("vtimer");
    kv_hex("vtimer_ctl_in_handler", timer_ctl_seen);

    kv_hex("rpr_end", read_sysreg(ICC_RPR_EL1));
    kv_u64("iar_end", read_sysreg(ICC_IAR1_EL1));
    return 0;
}
