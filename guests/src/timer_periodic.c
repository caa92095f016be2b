/* Generic timer: periodic virtual-timer interrupts (PPI 27) re-armed through CNTV_TVAL_EL0,
 * measured with CPU_CYCLES.  Part 1 waits in WFI between 16 ms ticks (the board skips idle
 * time to the next deadline, and CPU_CYCLES does not count while waiting); part 2 spins
 * with a 32 us period, so the cycles between ticks are the period plus the handler. */
#include "vpmu.h"

#define PERIOD_IDLE 1000000UL          /* ticks of 62.5 MHz: 16 ms = 16e6 CPU cycles at 1 GHz */
#define PERIOD_BUSY 2000UL             /* 32 us = 32000 CPU cycles */
#define TICKS 50

static volatile u64 period = PERIOD_IDLE;

static volatile u64 ticks, last_cnt, min_gap = ~0UL, max_gap, cyc_at_tick[TICKS + 1];

static void irq_handler(struct exc_frame *f, int vec)
{
    (void)f; (void)vec;
    u32 id = gic_ack();
    if (id == 27) {
        u64 now = cntvct();
        if (ticks) {
            u64 gap = now - last_cnt;
            if (gap < min_gap) min_gap = gap;
            if (gap > max_gap) max_gap = gap;
        }
        last_cnt = now;
        cyc_at_tick[ticks < TICKS ? ticks : TICKS] = read_sysreg(pmccntr_el0);
        ticks++;
        write_sysreg(cntv_tval_el0, period);   /* re-arm: the next tick one period later */
        isb();
    }
    gic_eoi(id);
}

int main(void)
{
    set_irq_handler(irq_handler);
    gic_init();
    gic_enable_irq(27, 0x80);
    pmu_reset();
    write_sysreg(pmccfiltr_el0, 0);
    write_sysreg(pmcntenset_el0, 1UL << 31);
    pmcr_write(PMCR_LC | PMCR_E);
    kv_u64("cntfrq", cntfrq());
    u64 t0 = cntvct();
    write_sysreg(cntv_tval_el0, period);
    write_sysreg(cntv_ctl_el0, 1);              /* ENABLE, not masked */
    isb();
    irq_enable();
    while (ticks < TICKS / 2)
        wfi();                                  /* idle: time advances, CPU_CYCLES does not */
    u64 idle_cycles = cyc_at_tick[TICKS / 2 - 1] - cyc_at_tick[0];
    u64 idle_min = min_gap, idle_max = max_gap;
    period = PERIOD_BUSY;                       /* from the tick after next */
    min_gap = ~0UL;
    max_gap = 0;
    while (ticks < TICKS / 2 + 2)
        ;
    min_gap = ~0UL;
    max_gap = 0;
    while (ticks < TICKS)
        ;                                       /* busy: every cycle counts */
    irq_disable();
    write_sysreg(cntv_ctl_el0, 0);
    u64 busy_cycles = cyc_at_tick[TICKS - 1] - cyc_at_tick[TICKS / 2 + 2];
    kv_u64("ticks", ticks);
    kv_u64("elapsed_ticks", cntvct() - t0);
    kv_u64("idle_min_gap", idle_min);
    kv_u64("idle_max_gap", idle_max);
    kv_u64("busy_min_gap", min_gap);
    kv_u64("busy_max_gap", max_gap);
    kv_u64("idle_cycles_per_tick", idle_cycles / (TICKS / 2 - 1));
    kv_u64("busy_cycles_per_tick", busy_cycles / (TICKS - 3 - TICKS / 2));
    return 0;
}
