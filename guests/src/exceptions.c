/* The exception model: SVC (EL1, EL0), BRK, UNDEF, data abort, IRQ through the GIC,
 * ERET to EL0 and back.  Each handler records what it saw; results as key=value lines. */
#include "vpmu.h"

static volatile u64 last_esr, last_elr, last_far, last_spsr, last_vec, sync_count;

static void sync_handler(struct exc_frame *f, int vec)
{
    last_esr = f->esr;
    last_elr = f->elr;
    last_far = f->far;
    last_spsr = f->spsr;
    last_vec = vec;
    sync_count++;
    u64 ec = ESR_EC(f->esr);
    if (ec != 0x15)              /* not SVC: skip the faulting instruction */
        f->elr += 4;
}

static volatile u64 irq_intid = 1023, irq_count;

static void irq_handler(struct exc_frame *f, int vec)
{
    u32 id = gic_ack();
    irq_intid = id;
    irq_count++;
    last_vec = vec;
    gic_eoi(id);
}

extern char svc_insn[], brk_insn[], udf_insn[], ldr_insn[], el0_svc_insn[];

static u64 el0_fn(u64 arg)
{
    __asm__ volatile(".global el0_svc_insn\nel0_svc_insn: svc #0x77" ::: "memory");
    return arg + 1;
}

int main(void)
{
    set_sync_handler(sync_handler);
    set_irq_handler(irq_handler);

    __asm__ volatile(".global svc_insn\nsvc_insn: svc #0x1234" ::: "memory");
    kv_hex("svc_esr", last_esr);
    kv_u64("svc_elr_ok", last_elr == (u64)svc_insn + 4);
    kv_hex("svc_spsr", last_spsr);
    kv_u64("svc_vec", last_vec);

    __asm__ volatile(".global brk_insn\nbrk_insn: brk #0x42" ::: "memory");
    kv_hex("brk_esr", last_esr);
    kv_u64("brk_elr_ok", last_elr == (u64)brk_insn);

    __asm__ volatile(".global udf_insn\nudf_insn: .inst 0x00000000" ::: "memory");
    kv_hex("udf_esr", last_esr);
    kv_u64("udf_elr_ok", last_elr == (u64)udf_insn);

    /* 0x0900_8000: nothing behind it on QEMU's virt board either (between the UART and the
       RTC), so both report a synchronous external abort. */
    __asm__ volatile("ldr x1, =0x09008000\n.global ldr_insn\nldr_insn: ldr x0, [x1]" ::: "x0", "x1", "memory");
    kv_hex("dabt_esr", last_esr);
    kv_hex("dabt_far", last_far);
    kv_u64("dabt_elr_ok", last_elr == (u64)ldr_insn);

    __asm__ volatile("ldr x1, =0x09008000\nstr xzr, [x1]" ::: "x1", "memory");
    kv_hex("dabt_w_esr", last_esr);

    u64 r = el0_call(el0_fn, 41, (u64)__el0_stack_top);
    kv_u64("el0_ret", r);
    kv_hex("el0_svc_esr", last_esr);
    kv_u64("el0_svc_elr_ok", last_elr == (u64)el0_svc_insn + 4);
    kv_hex("el0_svc_spsr", last_spsr);
    kv_u64("el0_svc_vec", last_vec);
    kv_u64("el_after_el0", current_el());

    gic_init();
    gic_enable_irq(5, 0x80);
    gic_send_sgi(5);             /* pending, but PSTATE.I is set: not taken yet */
    kv_u64("irq_before_unmask", irq_count);
    irq_enable();
    __asm__ volatile("nop");
    irq_disable();
    kv_u64("irq_count", irq_count);
    kv_u64("irq_intid", irq_intid);
    kv_u64("irq_vec", last_vec);
    kv_u64("sync_count", sync_count);
    return 0;
}
