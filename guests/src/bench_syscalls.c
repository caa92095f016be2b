/* Workload timer_syscalls (`vpmu bench`): an OS kernel at EL1 running a user program at EL0
 * that makes a system call every K instructions, with a 250 Hz timer tick.
 *
 * The kernel (bench_os.h: MMU on, user text and data in their own pages with AP bits)
 * enters the user program with el0_call.  The user program computes (a 4-instruction
 * inner loop of K / 4 iterations), stores into its buffer and makes a system call
 * (svc #0, number in x8, alternating):
 *   1  gettick: returns the tick count plus the number of calls so far
 *   2  write: checks that the 64-byte user buffer lies in user data (else -EFAULT), copies
 *      it into a kernel ring buffer and returns the sum of its words
 * through the runtime's vectors (every register saved, a C handler, ERET).  The virtual
 * timer (PPI 27 through the GICv3) interrupts at 250 Hz of guest time (CNTFRQ / 250 ticks
 * of the counter: 4 ms, i.e. 4 million instructions with QEMU's -icount shift=0 and vpmu's
 * default cycle model); its handler re-arms CNTV_CVAL one period after the previous
 * deadline and accounts the tick to user or kernel time, as a scheduler tick does.
 *
 * Command line: n=SYSCALLS (default 2000), k=INSTRUCTIONS between calls (4..1000000,
 * default 2000).  The counts are deterministic (time is the instruction count): eager ==
 * deferred and round == round are checked by tests/test_workloads.py; `ticks` says how
 * many timer interrupts the run took. */
#include "bench_os.h"

#define SYS_GETTICK 1
#define SYS_WRITE 2
#define ENOSYS 38
#define EFAULT 14
#define HZ 250

static volatile u64 period, next_cval, ticks, user_ticks, kernel_ticks, nsys, kring_pos;
static u64 kring[256];

u64 user_syscalls(u64 params);
__asm__(".section .text.user, \"ax\"\n"
        ".balign 4096\n"
        ".global user_text_start\n"
        "user_text_start:\n"
        ".global user_syscalls\n"
        "user_syscalls:\n"               /* x0 = parameter block: [0] calls, [1] inner iterations */
        "  ldr x19, [x0]\n"
        "  ldr x20, [x0, #8]\n"
        "  add x22, x0, #64\n"           /* the 64-byte buffer passed to write */
        "  mov x21, #0\n"
        "1:\n"
        "  mov x9, x20\n"
        "2:\n"
        "  add x21, x21, x9\n"
        "  eor x10, x21, x9, lsl #3\n"
        "  subs x9, x9, #1\n"
        "  b.ne 2b\n"
        "  and x11, x19, #7\n"
        "  str x10, [x22, x11, lsl #3]\n"
        "  and x8, x19, #1\n"
        "  add x8, x8, #1\n"             /* SYS_GETTICK or SYS_WRITE */
        "  mov x0, x22\n"
        "  mov x1, x21\n"
        "  svc #0\n"
        "  eor x21, x21, x0\n"
        "  subs x19, x19, #1\n"
        "  b.ne 1b\n"
        "  mov x0, x21\n"
        "  ret\n"
        ".global user_text_end\n"
        "user_text_end:\n"
        ".text\n");

static void sync_handler(struct exc_frame *f, int vec)
{
    if (vec == 8 && ESR_EC(f->esr) == 0x15) {          /* SVC from EL0 (AArch64) */
        nsys++;
        if (f->x[8] == SYS_GETTICK) {
            f->x[0] = ticks + nsys;
        } else if (f->x[8] == SYS_WRITE) {
            u64 p = f->x[0];
            if (p < USER_DATA_VA || p > USER_DATA_VA + USER_DATA_PAGES * 4096 - 64) {
                f->x[0] = -(u64)EFAULT;
            } else {
                const u64 *u = (const u64 *)p;
                u64 s = 0;
                for (int i = 0; i < 8; i++) {
                    kring[(kring_pos + i) % 256] = u[i];
                    s += u[i];
                }
                kring_pos += 8;
                f->x[0] = s;
            }
        } else {
            f->x[0] = -(u64)ENOSYS;
        }
        return;
    }
    printf("unexpected exception: vector=%d esr=0x%lx elr=0x%lx far=0x%lx\n", vec, f->esr, f->elr, f->far);
    exit(99);
}

static void irq_handler(struct exc_frame *f, int vec)
{
    (void)vec;
    u32 id = gic_ack();
    if (id == 27) {
        next_cval += period;
        write_sysreg(cntv_cval_el0, next_cval);
        isb();
        ticks++;
        if ((f->spsr & 0xf) == 0)
            user_ticks++;
        else
            kernel_ticks++;
    }
    gic_eoi(id);
}

/* The measured function: arm the tick, run the user program, stop the tick. */
u64 kernel_run(u64 calls, u64 iters, u64 unused)
{
    (void)unused;
    os_user_data[0][0] = calls;
    os_user_data[0][1] = iters;
    next_cval = cntvct() + period;
    write_sysreg(cntv_cval_el0, next_cval);
    write_sysreg(cntv_ctl_el0, 1);                     /* enabled, not masked */
    isb();
    u64 r = el0_call((u64 (*)(u64))user_va(user_syscalls), USER_DATA_VA,
                     USER_DATA_VA + USER_DATA_PAGES * 4096);
    write_sysreg(cntv_ctl_el0, 0);
    isb();
    return r;
}

int main(void)
{
    u64 n = bench_arg("n", 2000), k = bench_arg("k", 2000);
    if (n < 1 || k < 4 || k > 1000000) {
        printf("bench_syscalls: n must be at least 1 and k 4..1000000\n");
        return 2;
    }
    period = cntfrq() / HZ;
    mmu_enable(0);
    os_user_init();
    set_sync_handler(sync_handler);
    set_irq_handler(irq_handler);
    gic_init();
    gic_enable_irq(27, 0x80);
    bench_run((bench_fn)kernel_run, n, k / 4, 0);
    kv_u64("syscalls", nsys);
    kv_u64("ticks", ticks);
    kv_u64("user_ticks", user_ticks);
    kv_u64("kernel_ticks", kernel_ticks);
    return nsys == n ? 0 : 1;
}
