/* Data aborts on stores, right after an exception return: ELR_EL1 must be the store
 * itself and the abort taken once.  The handler skips the faulting instruction, so a
 * wrong ELR (an earlier instruction) re-runs the instructions before the store, which
 * moves the address: FAR then shows it (0x0F00_0018 expected, 0x0F00_0030 if the
 * "add" ran twice).  Each case is preceded by a different way of entering and leaving
 * an exception: SVC, BRK, semihosting (HLT), PSCI (HVC), a load abort. */
#include "board_common.h"

static volatile u64 n, elr, far, esr;

static void handler(struct exc_frame *f, int vec)
{
    if (ESR_EC(f->esr) == 0x15 || ESR_EC(f->esr) == 0x3c) {    /* the "previous exception" */
        if (ESR_EC(f->esr) == 0x3c) f->elr += 4;
        return;
    }
    n++;
    elr = f->elr;
    far = f->far;
    esr = f->esr;
    f->elr += 4;
}

u64 store_fn(u64), load_fn(u64);
extern char store_insn[];
__asm__(".text\n.global store_fn\nstore_fn:\n"
        "  mov x1, #0x0f000000\n  add x1, x1, #0x18\n"
        ".global store_insn\nstore_insn:\n  str w0, [x1]\n  ret\n"
        ".global load_fn\nload_fn:\n"
        "  mov x1, #0x0f000000\n  ldr x0, [x1]\n  ret\n");

static void check(const char *after)
{
    n = elr = far = esr = 0;
    store_fn(0);
    printf("after_%s: n=%lu elr_off=%ld far=0x%lx esr=0x%lx\n", after, n, (s64)(elr - (u64)store_insn), far, esr);
}

int main(void)
{
    set_sync_handler(handler);
    check("nothing");
    __asm__ volatile("svc #0" ::: "memory");
    check("svc");
    __asm__ volatile("brk #0" ::: "memory");
    check("brk");
    semi_call(0x13, 0);                                          /* SYS_ERRNO */
    check("semihosting");
    smccc(PSCI_VERSION, 0, 0, 0);
    check("psci");
    load_fn(0);
    check("load_abort");
    return 0;
}
