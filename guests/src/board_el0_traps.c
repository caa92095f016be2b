/* What EL0 may not do, and how it is refused (Arm ARM D1 / the generic timer chapter):
 *   hvc #0 / smc #0 at EL0         UNDEFINED (EC 0x00); no firmware call is made
 *   hlt #0xf000 at EL0             UNDEFINED: semihosting is for EL1 (QEMU's default, no userspace=on)
 *   mrs cntvct_el0, EL0VCTEN = 0   trapped to EL1 with EC 0x18 (MSR/MRS trap), ISS = the access
 *   mrs cntvct_el0, EL0VCTEN = 1   allowed
 *   msr daifset, SCTLR_EL1.UMA = 0 trapped to EL1 with EC 0x18
 *   mrs cntfrq_el0                 trapped (EC 0x18) unless CNTKCTL_EL1.EL0PCTEN or EL0VCTEN is set
 * On QEMU all of these behave as listed (docs/qemu-compat.md). */
#include "board_common.h"

extern char __el0_stack_top[];
u64 el0_hvc_fn(u64), el0_smc_fn(u64), el0_semi_fn(u64), el0_cntvct_fn(u64), el0_daif_fn(u64), el0_cntfrq_fn(u64);
__asm__(
    ".text\n"
    ".global el0_hvc_fn\nel0_hvc_fn:\n  hvc #0\n  ret\n"          /* x0 = PSCI_VERSION on entry */
    ".global el0_smc_fn\nel0_smc_fn:\n  smc #0\n  ret\n"
    ".global el0_semi_fn\nel0_semi_fn:\n  mov x1, x0\n  mov x0, #4\n  hlt #0xf000\n  ret\n"   /* SYS_WRITE0 */
    ".global el0_cntvct_fn\nel0_cntvct_fn:\n  isb\n  mrs x8, cntvct_el0\n  mov x0, #1\n  cbnz x8, 1f\n  mov x0, #2\n1: ret\n"
    ".global el0_daif_fn\nel0_daif_fn:\n  msr daifset, #2\n  mrs x0, daif\n  msr daifclr, #2\n  ret\n"
    ".global el0_cntfrq_fn\nel0_cntfrq_fn:\n  mov x0, #0\n  mrs x0, cntfrq_el0\n  ret\n");

static volatile u64 r_esr, r_count, r_vec;

static void sync_handler(struct exc_frame *f, int vec)
{
    r_esr = f->esr;
    r_vec = vec;
    r_count++;
    f->elr += 4;
}

static u64 el0(u64 (*fn)(u64), u64 arg) { r_esr = 0; r_vec = 0; return el0_call(fn, arg, (u64)__el0_stack_top); }

int main(void)
{
    set_sync_handler(sync_handler);
    u64 r;

    r = el0(el0_hvc_fn, PSCI_VERSION);
    printf("el0_hvc: x0=0x%lx esr=0x%lx vec=%lu\n", r, r_esr, r_vec);
    r = el0(el0_smc_fn, PSCI_VERSION);
    printf("el0_smc: x0=0x%lx esr=0x%lx vec=%lu\n", r, r_esr, r_vec);
    r = el0(el0_semi_fn, (u64)"semihosting from EL0 must not print this\n");
    printf("el0_semihosting: x0=0x%lx esr=0x%lx vec=%lu\n", r, r_esr, r_vec);

    write_sysreg(cntkctl_el1, 0);
    isb();
    r = el0(el0_cntvct_fn, 0);
    printf("el0_cntvct_trapped: esr=0x%lx vec=%lu\n", r_esr, r_vec);
    write_sysreg(cntkctl_el1, 2);                                 /* EL0VCTEN */
    isb();
    r = el0(el0_cntvct_fn, 0);
    printf("el0_cntvct_allowed: ret=%lu esr=0x%lx\n", r, r_esr);
    write_sysreg(cntkctl_el1, 0);
    isb();

    r = el0(el0_daif_fn, 0);
    printf("el0_daifset: esr=0x%lx vec=%lu\n", r_esr, r_vec);

    r = el0(el0_cntfrq_fn, 0);
    printf("el0_cntfrq_trapped: esr=0x%lx vec=%lu\n", r_esr, r_vec);
    write_sysreg(cntkctl_el1, 1);                                 /* EL0PCTEN */
    isb();
    r = el0(el0_cntfrq_fn, 0);
    printf("el0_cntfrq_allowed: ret=%lu esr=0x%lx\n", r, r_esr);
    write_sysreg(cntkctl_el1, 0);
    isb();
    kv_u64("sync_count", r_count);
    return 0;
}
