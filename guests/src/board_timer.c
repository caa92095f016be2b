/* The generic timer as a guest sees it:
 *  - CNTFRQ_EL0 = 62.5 MHz (QEMU virt with cortex-a57) and CNTVCT_EL0 never goes backwards
 *  - CNTVCT advances 1 tick per 16 ns; with one instruction per ns (vpmu's default cycle
 *    model, QEMU -icount shift=0) a 16000-instruction loop takes 1000 ticks
 *  - WFI with an interrupt already pending returns at once (even with PSTATE.I set), and
 *    the interrupt is still pending afterwards
 *  - WFI with the virtual timer armed (CNTV_CVAL, CTL.ENABLE, PPI 27) wakes when it fires:
 *    CNTVCT >= CVAL and CTL.ISTATUS = 1 after the WFI; unmasking then takes INTID 27
 *  - the same with CNTV_TVAL, and with the EL1 physical timer (CNTP_TVAL, PPI 30)
 *  - WFI with IRQs unmasked: the timer interrupt is taken right after the WFI */
#include "board_common.h"

static volatile u64 nirq, last_id = 1023, last_elr;

static void irq_handler(struct exc_frame *f, int vec)
{
    u32 id = gic_ack();
    nirq++;
    last_id = id;
    last_elr = f->elr;
    if (id == 27) write_sysreg(cntv_ctl_el0, 0);
    if (id == 30) write_sysreg(cntp_ctl_el0, 0);
    isb();
    gic_eoi(id);
}

/* CNTVCT ticks across 15999 instructions: mov (1) + 3999 iterations of sub, nop, nop,
 * cbnz (15996) + isb (1) + the second mrs (1) */
static NOINLINE u64 ticks_for_16000_insns(void)
{
    u64 t0, t1;
    __asm__ volatile("isb\n mrs %0, cntvct_el0\n"
                     "mov x9, #3999\n"
                     "1: sub x9, x9, #1\n nop\n nop\n cbnz x9, 1b\n"
                     "isb\n mrs %1, cntvct_el0\n"
                     : "=&r"(t0), "=&r"(t1) :: "x9", "memory");
    return t1 - t0;
}

extern char after_wfi[];

int main(void)
{
    set_irq_handler(irq_handler);
    kv_u64("cntfrq", cntfrq());

    u64 prev = cntvct(), first = prev, backwards = 0;
    for (int i = 0; i < 1000; i++) {
        u64 now = cntvct();
        if (now < prev) backwards++;
        prev = now;
    }
    kv_u64("cntvct_backwards", backwards);
    kv_u64("cntvct_advanced", prev > first);
    u64 d = ticks_for_16000_insns();
    kv_u64("loop_ticks_about_1000", d >= 999 && d <= 1001);

    gic_init();

    /* WFI with a pending interrupt (PSTATE.I set): returns at once */
    gic_enable_irq(1, 0x80);
    gic_send_sgi(1);
    u64 t0 = cntvct();
    wfi();
    u64 t1 = cntvct();
    kv_u64("wfi_pending_returned_fast", t1 - t0 < 100);
    kv_u64("wfi_pending_taken_while_masked", nirq);
    irq_enable(); isb(); irq_disable();
    kv_u64("wfi_pending_taken_after_unmask", nirq);
    kv_u64("wfi_pending_id", last_id);

    /* WFI until the virtual timer fires (CVAL = now + 1 ms) */
    nirq = 0;
    gic_enable_irq(27, 0x80);
    u64 cval = cntvct() + 62500;
    write_sysreg(cntv_cval_el0, cval);
    write_sysreg(cntv_ctl_el0, 1);
    isb();
    kv_u64("vtimer_istatus_before", (read_sysreg(cntv_ctl_el0) >> 2) & 1);
    wfi();
    u64 after = cntvct();
    kv_u64("vtimer_woke_after_cval", after >= cval);
    kv_u64("vtimer_istatus_after", (read_sysreg(cntv_ctl_el0) >> 2) & 1);
    kv_u64("vtimer_taken_while_masked", nirq);
    irq_enable(); isb(); irq_disable();
    kv_u64("vtimer_taken", nirq);
    kv_u64("vtimer_id", last_id);

    /* CNTV_TVAL: a 32-bit down-counter view of CVAL - CNTVCT */
    nirq = 0;
    write_sysreg(cntv_tval_el0, 10000);
    write_sysreg(cntv_ctl_el0, 1);
    isb();
    s32 tv = (s32)read_sysreg(cntv_tval_el0);
    kv_u64("tval_counts_down", tv <= 10000 && tv > 9000);
    wfi();
    kv_u64("tval_fired", (read_sysreg(cntv_ctl_el0) >> 2) & 1);
    kv_u64("tval_negative_after", (s32)read_sysreg(cntv_tval_el0) <= 0);
    irq_enable(); isb(); irq_disable();
    kv_u64("tval_taken", nirq);

    /* the EL1 physical timer, PPI 30 */
    nirq = 0;
    gic_enable_irq(30, 0x80);
    write_sysreg(cntp_tval_el0, 5000);
    write_sysreg(cntp_ctl_el0, 1);
    isb();
    wfi();
    kv_u64("ptimer_fired", (read_sysreg(cntp_ctl_el0) >> 2) & 1);
    irq_enable(); isb(); irq_disable();
    kv_u64("ptimer_taken", nirq);
    kv_u64("ptimer_id", last_id);

    /* WFI with IRQs unmasked: taken right after the WFI */
    nirq = 0;
    write_sysreg(cntv_tval_el0, 20000);
    write_sysreg(cntv_ctl_el0, 1);
    isb();
    __asm__ volatile("msr daifclr, #2\n wfi\n.global after_wfi\nafter_wfi: nop\n msr daifset, #2" ::: "memory");
    kv_u64("wfi_unmasked_taken", nirq);
    kv_u64("wfi_unmasked_elr_after_wfi", last_elr == (u64)after_wfi);
    kv_u64("wfi_unmasked_id", last_id);
    return 0;
}
