/* Code running at a virtual address different from its physical address: every board path
 * that reads guest memory by address must go through the guest's translation.
 *
 * The MMU maps RAM (PA 0x4000_0000) three times: identity at 1 GiB, an alias at 8 GiB, and a
 * second alias at 9 GiB with PXN set (readable, not executable at EL1).  From the 8 GiB alias
 * (where the VA is not RAM if read as a physical address) the guest:
 *  - prints through semihosting SYS_WRITE0 with an alias pointer (HLT at an alias PC);
 *  - calls PSCI_VERSION (HVC #0 at an alias PC);
 *  - executes BRK (ESR EC 0x3C, ELR = the alias PC);
 *  - waits in WFI for the virtual timer (the board reads the WFI word at an alias PC);
 *  - gives SYS_WRITE0 a pointer to the UART (a device: the board reads RAM only, -1).
 * Then it calls a function through the PXN alias: a permission fault on fetch (EC 0x21,
 * IFSC level-1 permission 0x0D, FAR = ELR = the target), which the handler returns from. */
#include "board_common.h"

#define RAM 0x40000000UL
#define ALIAS (8UL << 30)
#define ALIAS_PXN (9UL << 30)
#define AL(p) ((u64)(p) - RAM + ALIAS)
#define AL_PXN(p) ((u64)(p) - RAM + ALIAS_PXN)
#define BLOCK_RAM(pa) ((pa) | (1UL << 2) | (3UL << 8) | (1UL << 10) | 1)   /* Normal WB, inner-shareable, AF */
#define PXN (1UL << 53)

static u64 l1[512] ALIGNED(4096);
static volatile u64 sync_esr, sync_elr, sync_far, syncs, irqs, irq_id;
static volatile u64 r_pc, r_psci, r_wfi_istatus, r_dev_write;

static void sync_handler(struct exc_frame *f, int vec)
{
    (void)vec;
    syncs++;
    sync_esr = f->esr;
    sync_elr = f->elr;
    sync_far = f->far;
    if (ESR_EC(f->esr) == 0x3C)
        f->elr += 4;                 /* BRK: skip it */
    else
        f->elr = f->x[30];           /* instruction abort on a call: return to the caller */
}

static void irq_handler(struct exc_frame *f, int vec)
{
    (void)f; (void)vec;
    u32 id = gic_ack();
    irqs++;
    irq_id = id;
    write_sysreg(cntv_ctl_el0, 0);
    isb();
    gic_eoi(id);
}

static void mmu_on(void)
{
    write_sysreg(mair_el1, 0xff00UL);                      /* attr0 Device-nGnRnE, attr1 Normal WB */
    l1[0] = 0x0UL | (1UL << 10) | 1;                      /* [0, 1 GiB): devices */
    l1[1] = BLOCK_RAM(RAM);
    l1[ALIAS >> 30] = BLOCK_RAM(RAM);
    l1[ALIAS_PXN >> 30] = BLOCK_RAM(RAM) | PXN;
    dsb();
    write_sysreg(tcr_el1, 25UL | (1UL << 8) | (1UL << 10) | (3UL << 12) | (1UL << 23) | (2UL << 32));
    write_sysreg(ttbr0_el1, (u64)l1);
    isb();
    __asm__ volatile("tlbi vmalle1\n dsb sy\n isb" ::: "memory");
    write_sysreg(sctlr_el1, read_sysreg(sctlr_el1) | 1 | (1 << 2) | (1 << 12));
    isb();
}

static NOINLINE u64 at_alias(u64 arg)
{
    u64 pc;
    __asm__ volatile("adr %0, ." : "=r"(pc));
    r_pc = pc;
    semi_call(SEMI_WRITE0, (u64)"alias: semihosting from the alias\n");   /* an alias pointer */
    r_psci = smccc(PSCI_VERSION, 0, 0, 0);
    __asm__ volatile("brk #0x7");
    write_sysreg(cntv_tval_el0, 1000);
    write_sysreg(cntv_ctl_el0, 1);
    isb();
    wfi();
    r_wfi_istatus = (read_sysreg(cntv_ctl_el0) >> 2) & 1;
    r_dev_write = semi_call(SEMI_WRITE0, 0x09000000UL);                  /* the UART's registers */
    return arg + 1;
}

static NOINLINE u64 never_runs(u64 arg)
{
    return arg + 100;
}

int main(void)
{
    set_sync_handler(sync_handler);
    set_irq_handler(irq_handler);
    gic_init();
    gic_enable_irq(27, 0x80);
    mmu_on();
    kv_u64("mmu", read_sysreg(sctlr_el1) & 1);

    u64 (*f)(u64) = (u64 (*)(u64))AL(at_alias);
    u64 ret = f(41);
    kv_u64("ret", ret);
    kv_u64("pc_is_alias", r_pc >= ALIAS && r_pc < ALIAS + (1UL << 30));
    kv_hex("psci_version", r_psci);
    kv_u64("brk_syncs", syncs);
    kv_hex("brk_ec", ESR_EC(sync_esr));
    kv_u64("brk_elr_is_alias", sync_elr >= ALIAS && sync_elr < ALIAS + (1UL << 30));
    kv_u64("wfi_istatus", r_wfi_istatus);
    kv_u64("dev_write0", r_dev_write);

    /* the timer interrupt is still pending (CTL was not cleared before unmasking) */
    irq_enable();
    isb();
    irq_disable();
    kv_u64("irqs", irqs);
    kv_u64("irq_id", irq_id);

    u64 (*g)(u64) = (u64 (*)(u64))AL_PXN(never_runs);
    syncs = 0;
    g(1);
    kv_u64("pxn_syncs", syncs);
    kv_hex("pxn_ec", ESR_EC(sync_esr));
    kv_hex("pxn_ifsc", sync_esr & 0x3f);
    kv_u64("pxn_elr_ok", sync_elr == AL_PXN(never_runs));
    kv_u64("pxn_far_ok", sync_far == AL_PXN(never_runs));
    return 0;
}
