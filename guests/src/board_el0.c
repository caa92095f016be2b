/* ERET to EL0 and back (runtime el0_call): exceptions taken from EL0 use the lower-EL
 * vector group (8..11) with EL0 syndromes (EC 0x15 SVC, 0x3C BRK, 0x00 UNDEFINED,
 * 0x24 data abort from a lower EL, 0x20 instruction abort from a lower EL), SPSR_EL1.M = EL0t
 * with the EL0 flags, and the stack pointers stay banked: EL0 runs on SP_EL0, every
 * handler on SP_EL1, and neither is disturbed by the other.  Finally an IRQ pending when
 * EL0 is entered is taken from EL0 (vector 9). */
#include "board_common.h"

extern char __stack_top[], __el0_stack_top[];
extern char el0_svc_insn[], el0_brk_insn[], el0_udf_insn[], el0_ldr_insn[], el0_str_insn[],
    el0_sysreg_insn[], el0_irq_fn[];
u64 el0_svc_fn(u64), el0_brk_fn(u64), el0_udf_fn(u64), el0_ldr_fn(u64), el0_str_fn(u64),
    el0_iabt_fn(u64), el0_sysreg_fn(u64);

/* EL0 code in assembly: nothing here may touch the EL0 stack except as noted. */
__asm__(
    ".text\n"
    /* x0 = SP_EL0 change across the SVC (0 = intact); NZCV = N|V at the SVC */
    ".global el0_svc_fn\nel0_svc_fn:\n"
    "  mov x10, sp\n"
    "  mov x9, #0x90000000\n  msr nzcv, x9\n"
    ".global el0_svc_insn\nel0_svc_insn:\n  svc #0x77\n"
    "  mov x11, sp\n  sub x0, x11, x10\n  ret\n"
    ".global el0_brk_fn\nel0_brk_fn:\n"
    "  msr nzcv, xzr\n"
    ".global el0_brk_insn\nel0_brk_insn:\n  brk #0x5\n  ret\n"
    ".global el0_udf_fn\nel0_udf_fn:\n"
    ".global el0_udf_insn\nel0_udf_insn:\n  .inst 0x00000000\n  ret\n"
    ".global el0_ldr_fn\nel0_ldr_fn:\n"
    "  mov x1, #0x0f000000\n  add x1, x1, #0x8\n"
    ".global el0_ldr_insn\nel0_ldr_insn:\n  ldr x2, [x1]\n  ret\n"
    ".global el0_str_fn\nel0_str_fn:\n"
    "  mov x1, #0x0f000000\n  add x1, x1, #0x18\n"
    ".global el0_str_insn\nel0_str_insn:\n  str w0, [x1]\n  ret\n"
    ".global el0_iabt_fn\nel0_iabt_fn:\n"
    "  mov x12, x30\n  mov x1, #0x0f000000\n  blr x1\n  mov x30, x12\n  ret\n"
    ".global el0_sysreg_fn\nel0_sysreg_fn:\n"
    ".global el0_sysreg_insn\nel0_sysreg_insn:\n  mrs x0, sctlr_el1\n  ret\n"
    /* for the IRQ test: the IRQ is taken before the first instruction */
    ".global el0_irq_fn\nel0_irq_fn:\n  add x0, x0, #1\n  ret\n");

static volatile u64 r_esr, r_elr, r_spsr, r_far, r_vec, r_count, r_sp_el0, r_frame;

static void sync_handler(struct exc_frame *f, int vec)
{
    r_esr = f->esr;
    r_elr = f->elr;
    r_spsr = f->spsr;
    r_far = f->far;
    r_vec = vec;
    r_sp_el0 = f->sp_el0;
    r_frame = (u64)f;                 /* where the handler's frame is: on SP_EL1 */
    r_count++;
    u64 ec = ESR_EC(f->esr);
    if (ec == 0x20)
        f->elr = f->x[30];
    else if (ec != 0x15)
        f->elr += 4;
}

static volatile u64 i_intid = 1023, i_elr, i_spsr, i_vec, i_count, i_sp_el0;

static void irq_handler(struct exc_frame *f, int vec)
{
    u32 id = gic_ack();
    i_intid = id;
    i_elr = f->elr;
    i_spsr = f->spsr;
    i_vec = vec;
    i_sp_el0 = f->sp_el0;
    i_count++;
    gic_eoi(id);
}

static void clear(void) { r_esr = r_elr = r_spsr = r_far = r_vec = r_sp_el0 = r_frame = 0; }

static int on_el1_stack(u64 p) { return p < (u64)__stack_top && p >= (u64)__stack_top - 0x10000; }

static void show(const char *name, const char *label)
{
    printf("%s: esr=0x%lx elr_off=%ld spsr=0x%lx far=0x%lx vec=%lu\n", name, r_esr,
           (s64)(r_elr - (u64)label), r_spsr, r_far, r_vec);
}

static u64 call_el0(u64 (*fn)(u64), u64 arg)
{
    return el0_call(fn, arg, (u64)__el0_stack_top);
}

int main(void)
{
    set_sync_handler(sync_handler);
    set_irq_handler(irq_handler);
    u64 sp_before = read_sp();

    clear();
    u64 sp_delta = call_el0(el0_svc_fn, 0);
    show("el0_svc", el0_svc_insn);
    kv_u64("el0_sp_intact", sp_delta == 0);
    kv_u64("svc_sp_el0_is_el0_stack", r_sp_el0 == (u64)__el0_stack_top);
    kv_u64("svc_frame_on_el1_stack", on_el1_stack(r_frame));

    clear(); call_el0(el0_brk_fn, 0); show("el0_brk", el0_brk_insn);
    clear(); call_el0(el0_udf_fn, 0); show("el0_udf", el0_udf_insn);
    clear(); call_el0(el0_ldr_fn, 0); show("el0_dabt_read", el0_ldr_insn);
    clear(); call_el0(el0_str_fn, 0); show("el0_dabt_write", el0_str_insn);
    clear(); call_el0(el0_iabt_fn, 0);
    printf("el0_iabt: esr=0x%lx elr=0x%lx spsr=0x%lx far=0x%lx vec=%lu\n", r_esr, r_elr, r_spsr, r_far, r_vec);
    clear(); call_el0(el0_sysreg_fn, 0); show("el0_mrs_sctlr", el0_sysreg_insn);

    /* back at EL1h on the same stack, SP_EL0 where EL0 left it */
    kv_u64("el_after", current_el());
    kv_u64("spsel_after", read_sysreg(spsel));
    kv_u64("el1_sp_intact", read_sp() == sp_before);
    kv_u64("sp_el0_after_is_el0_stack", read_sysreg(sp_el0) == (u64)__el0_stack_top);

    /* an SGI pending (masked at EL1) is taken as soon as EL0 runs with PSTATE.I clear */
    gic_init();
    gic_enable_irq(7, 0x80);
    gic_send_sgi(7);
    kv_u64("irq_before_el0", i_count);
    u64 r = call_el0((u64 (*)(u64))el0_irq_fn, 41);
    kv_u64("el0_irq_ret", r);
    kv_u64("el0_irq_count", i_count);
    kv_u64("el0_irq_intid", i_intid);
    kv_u64("el0_irq_vec", i_vec);
    kv_hex("el0_irq_spsr", i_spsr);
    kv_u64("el0_irq_elr_is_fn", i_elr == (u64)el0_irq_fn);
    kv_u64("el0_irq_sp_el0_is_el0_stack", i_sp_el0 == (u64)__el0_stack_top);
    kv_u64("sync_count", r_count);
    return 0;
}
