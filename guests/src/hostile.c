/* Hostile guests: each case tries to make the runner hang, wrap guest time, or exhaust host
 * memory; every one must end in bounded time and memory with a documented status
 * (tests/test_hostile.py).  --append case=NAME picks one:
 *   big_write [gib=N]      SYS_WRITE of N GiB (default 16) from a buffer the MMU maps onto one
 *                          2 MiB block of RAM: streamed, stopped by --max-output (status 103)
 *   write_fault [mb=N]     SYS_WRITE of N 2-MiB blocks (default 1) + 100 bytes, the last 100
 *                          unmapped: prints write_fault_not_written (100), exits 0
 *   console_big            (--xen) console_io write of 4 GiB - 1 bytes the same way: 103
 *   periodic then=T        (--xen) VCPUOP_set_periodic_timer 1 ms, then T: wfi / block (nothing
 *                          bound: 104), bound (VIRQ_TIMER bound and enabled, WFI: still 104, Xen
 *                          stops the periodic timer of a blocked vCPU), watchdog (a watchdog of
 *                          2^32-1 s, then block: the watchdog ends the run, status 1, at once)
 *   far_timer [cval=N] [timer=p] [pv=1]   the virtual (physical) timer's CVAL = N ticks (default
 *                          2^60, beyond the end of guest time: 104), its PPI enabled, WFI; pv=1
 *                          first starts PV stolen time (--vm with [pvtime]).  A reachable CVAL
 *                          wakes it: prints woke, cntvct, elapsed (SYS_ELAPSED) and checks
 *                          that time went forwards, exits 0
 *   hlt                    semihosting SYS_WRITE0; with --no-semihosting the HLT is an
 *                          Undefined Instruction (printed through the UART), then PSCI off
 * Without semihosting the command line cannot be read (SYS_GET_CMDLINE is an HLT too), so
 * every case but hlt needs it. */
#include "xen_hcall.h"
#include "board_common.h"

#define MS 1000000UL
#define ALIAS_VA (32UL << 30)               /* level-1 entries 32.. map the alias */
#define BLOCK_PA 0x42000000UL               /* RAM + 32 MiB: the 2 MiB block every alias maps */
#define HLT_SEMI 0xD45E0000u
#define SYS_ELAPSED 0x30
#define PV_TIME_ST 0xC5000021UL

static u64 l1[512] ALIGNED(4096);
static u64 l2[512] ALIGNED(4096);
static volatile u64 hlt_undefs, hlt_esr, irqs;

/* 39-bit VAs, 4 KiB granule: [0, 1 GiB) devices, [1 GiB, 2 GiB) RAM (identity), and `gib` GiB
 * from ALIAS_VA whose 2 MiB blocks all map BLOCK_PA (the first `blocks` of each GiB only) */
static void map_alias(u64 gib, u64 blocks)
{
    write_sysreg(mair_el1, 0xff00UL);
    for (int i = 0; i < 512; i++) {
        l1[i] = 0;
        l2[i] = (u64)i < blocks ? BLOCK_PA | (1 << 2) | (3 << 8) | (1 << 10) | 1 : 0;
    }
    l1[0] = (1 << 10) | 1;
    l1[1] = (1UL << 30) | (1 << 2) | (3 << 8) | (1 << 10) | 1;
    for (u64 g = 0; g < gib; g++)
        l1[(ALIAS_VA >> 30) + g] = (u64)l2 | 3;               /* table descriptor */
    dsb();
    write_sysreg(tcr_el1, 25UL | (1UL << 8) | (1UL << 10) | (3UL << 12) | (1UL << 23) | (2UL << 32));
    write_sysreg(ttbr0_el1, (u64)l1);
    isb();
    __asm__ volatile("tlbi vmalle1\n dsb sy\n isb" ::: "memory");
    write_sysreg(sctlr_el1, read_sysreg(sctlr_el1) | 1 | (1 << 2) | (1 << 12));
    isb();
    volatile char *b = (volatile char *)BLOCK_PA;
    for (int i = 0; i < 4096; i++)
        b[i] = (i % 64 == 63) ? '\n' : (char)('a' + i % 26);
}

static u64 arg_or(const char *key, u64 dflt)
{
    u64 v;
    return board_arg_u64(key, &v) ? v : dflt;
}

static void sync_handler(struct exc_frame *f, int vec)
{
    if (ESR_EC(f->esr) == 0 && *(u32 *)f->elr == HLT_SEMI) {   /* HLT #0xF000 without semihosting */
        hlt_undefs++;
        hlt_esr = f->esr;
        f->elr += 4;
        return;
    }
    printf("unexpected exception: vector=%d esr=0x%lx elr=0x%lx far=0x%lx\n", vec, f->esr, f->elr, f->far);
    psci_system_off();
}

static void irq_handler(struct exc_frame *f, int vec)
{
    (void)f; (void)vec;
    u32 id = gic_ack();
    if (id == 1023)
        return;
    irqs++;
    if (id == 27)                                      /* the timer's level stays: mask it */
        write_sysreg(cntv_ctl_el0, 3);
    if (id == 30)
        write_sysreg(cntp_ctl_el0, 3);
    gic_eoi(id);
}

static void big_write(void)
{
    u64 gib = arg_or("gib", 16);
    map_alias(gib, 512);
    u64 block[3] = { 1, ALIAS_VA, gib << 30 };
    u64 r = semi_call(SEMI_WRITE, (u64)block);
    printf("\nbig_write_not_written=%lu\n", r);             /* not reached within --max-output */
}

static void write_fault(void)
{
    u64 mb = arg_or("mb", 1);
    map_alias(1, mb);
    u64 block[3] = { 1, ALIAS_VA, (mb << 21) + 100 };
    u64 r = semi_call(SEMI_WRITE, (u64)block);
    printf("\nwrite_fault_not_written=%lu\n", r);
}

static void console_big(void)
{
    map_alias(4, 512);
    long rc = HYPERVISOR_console_io(CONSOLEIO_write, 0xFFFFFFFFUL, ALIAS_VA);
    printf("\nconsole_big=%ld\n", rc);                      /* not reached within --max-output */
}

static void periodic(void)
{
    struct vcpu_set_periodic_timer t = { MS };
    if (board_arg_is("then", "bound")) {
        gic_init();
        gic_enable_irq(XEN_EVTCHN_PPI, 0x80);
        kv_rc("bind_timer", xen_bind_virq(VIRQ_TIMER, 0));
    }
    kv_rc("periodic", HYPERVISOR_vcpu_op(VCPUOP_set_periodic_timer, 0, &t));
    if (board_arg_is("then", "watchdog")) {
        u32 w[2] = { 0, 0xFFFFFFFFu };                     /* a new watchdog, 2^32 - 1 s */
        kv_rc("watchdog", HYPERVISOR_sched_op(SCHEDOP_watchdog, w));
    }
    puts("periodic: waiting\n");
    if (board_arg_is("then", "block") || board_arg_is("then", "watchdog"))
        HYPERVISOR_sched_op(SCHEDOP_block, 0);
    else
        wfi();
    kv_u64("woke", 1);
}

static void far_timer(void)
{
    u64 cval = arg_or("cval", 1UL << 60);
    int phys = board_arg_is("timer", "p");
    if (board_arg_is("pv", "1"))
        kv_hex("pv_time_st", smccc(PV_TIME_ST, 0, 0, 0));
    gic_init();
    gic_enable_irq(phys ? 30 : 27, 0x80);
    if (phys) {
        write_sysreg(cntp_cval_el0, cval);
        write_sysreg(cntp_ctl_el0, 1);
    } else {
        write_sysreg(cntv_cval_el0, cval);
        write_sysreg(cntv_ctl_el0, 1);
    }
    isb();
    u64 before = cntvct();
    kv_hex("cval", cval);
    puts("far_timer: wfi\n");
    wfi();                                                   /* IRQs masked: WFI still wakes */
    u64 after = cntvct();
    u64 el[2] = { 0, 0 };
    semi_call(SYS_ELAPSED, (u64)el);
    irq_enable();
    isb();
    irq_disable();
    kv_u64("woke", 1);
    kv_hex("cntvct", after);
    kv_hex("elapsed", el[0]);
    kv_u64("forwards", after >= before && after >= cval && el[0] >= cval * 16 && el[0] / 16 >= after);
    kv_u64("irqs", irqs);
}

int main(void)
{
    set_sync_handler(sync_handler);
    set_irq_handler(irq_handler);
    if (board_arg_is("case", "big_write"))
        big_write();
    else if (board_arg_is("case", "write_fault"))
        write_fault();
    else if (board_arg_is("case", "console_big"))
        console_big();
    else if (board_arg_is("case", "periodic"))
        periodic();
    else if (board_arg_is("case", "far_timer"))
        far_timer();
    else {                                                   /* hlt (or no command line) */
        semi_call(SEMI_WRITE0, (u64)"hlt: semihosting is on\n");
        kv_u64("hlt_undefs", hlt_undefs);
        kv_hex("hlt_esr", hlt_esr);
    }
    psci_system_off();
}
