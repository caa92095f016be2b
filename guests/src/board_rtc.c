/* The PL031 RTC at 0x0901_0000 (SPI 2 = INTID 34) and the ID registers that describe the
 * GIC CPU interface.  Run with --rtc-base B (deterministic): guest time starts at 0, so
 *  - RTCDR reads B during the first second; RTCCR reads 1; the PrimeCell ids are PL031's;
 *  - a match value of B + 2 interrupts when the count becomes B + 2: the WFI ends at guest
 *    time 2 s exactly (CNTVCT 125,000,000 at 62.5 MHz), RIS = MIS = 1, ICR clears them;
 *  - loading RTCLR sets the count (and RTCLR reads back the loaded value);
 *  - a match value equal to the count raises RIS at once (masked: MIS = 0, no interrupt);
 *  - ID_AA64PFR0_EL1 and ID_PFR1_EL1 as on QEMU's virt: GIC = 1 (system-register GICv3 CPU
 *    interface), no EL2 and no EL3 (0x1000022 and 0x10010001 for a cortex-a57). */
#include "board_common.h"

#define RTC 0x09010000UL
#define RTCDR 0x00
#define RTCMR 0x04
#define RTCLR 0x08
#define RTCCR 0x0C
#define RTCIMSC 0x10
#define RTCRIS 0x14
#define RTCMIS 0x18
#define RTCICR 0x1C
#define R(off) (*(volatile u32 *)(RTC + (off)))

static volatile u64 nirq, irq_id, irq_cntvct, irq_mis;

static void irq_handler(struct exc_frame *f, int vec)
{
    (void)f; (void)vec;
    u32 id = gic_ack();
    irq_cntvct = read_sysreg(cntvct_el0);
    irq_id = id;
    nirq++;
    irq_mis = R(RTCMIS);
    R(RTCICR) = 1;
    gic_eoi(id);
}

int main(void)
{
    set_irq_handler(irq_handler);
    kv_hex("periph_id", R(0xFE0) | R(0xFE4) << 8 | R(0xFE8) << 16 | (u64)R(0xFEC) << 24);
    kv_hex("cell_id", R(0xFF0) | R(0xFF4) << 8 | R(0xFF8) << 16 | (u64)R(0xFFC) << 24);
    kv_u64("cr", R(RTCCR));
    u32 t0 = R(RTCDR);
    kv_u64("dr", t0);

    gic_init();
    gic_enable_irq(34, 0x80);
    R(RTCMR) = t0 + 2;
    R(RTCIMSC) = 1;
    irq_enable();
    while (!nirq)
        wfi();
    irq_disable();
    kv_u64("irqs", nirq);
    kv_u64("irq_id", irq_id);
    kv_u64("irq_mis", irq_mis);
    kv_u64("irq_cntvct", irq_cntvct);
    kv_u64("dr_at_irq", R(RTCDR) - t0);
    kv_u64("ris_after_icr", R(RTCRIS));

    R(RTCIMSC) = 0;
    R(RTCLR) = 1000;
    kv_u64("dr_after_load", R(RTCDR));
    kv_u64("lr", R(RTCLR));
    R(RTCMR) = R(RTCDR);
    kv_u64("ris_match_now", R(RTCRIS));
    kv_u64("mis_match_now", R(RTCMIS));
    kv_u64("irqs_after", nirq);

    kv_u64("pfr0_gic", (read_sysreg(id_aa64pfr0_el1) >> 24) & 0xf);
    kv_u64("pfr1_gic", (read_sysreg(id_pfr1_el1) >> 28) & 0xf);
    kv_hex("id_aa64pfr0", read_sysreg(id_aa64pfr0_el1));
    kv_hex("id_pfr1", read_sysreg(id_pfr1_el1));
    return 0;
}
