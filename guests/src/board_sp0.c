/* EL1t: code running at EL1 with SPSel = 0 (on SP_EL0) takes its exceptions through the
 * "current EL with SP0" vector group (0 sync, 1 IRQ), with SPSR_EL1.M = 0b0100, the
 * handler on SP_EL1, and the ERET back to EL1t restores SPSel = 0 and the SP_EL0 stack. */
#include "board_common.h"

extern char __stack_top[];
static u64 sp0_stack[512] ALIGNED(16);
#define SP0_TOP ((u64)&sp0_stack[512])

u64 run_on_sp0(u64 (*fn)(void), u64 sp0);
__asm__(
    ".text\n.global run_on_sp0\nrun_on_sp0:\n"
    "  stp x29, x30, [sp, #-16]!\n"
    "  msr sp_el0, x1\n"
    "  msr spsel, #0\n"
    "  blr x0\n"
    "  msr spsel, #1\n"
    "  ldp x29, x30, [sp], #16\n"
    "  ret\n");

static volatile u64 r_esr, r_elr, r_spsr, r_vec, r_count, r_sp_el0, r_frame;
static volatile u64 i_intid = 1023, i_spsr, i_vec, i_count, i_elr;

static void sync_handler(struct exc_frame *f, int vec)
{
    r_esr = f->esr;
    r_elr = f->elr;
    r_spsr = f->spsr;
    r_vec = vec;
    r_sp_el0 = f->sp_el0;
    r_frame = (u64)f;
    r_count++;
    if (ESR_EC(f->esr) != 0x15)
        f->elr += 4;
}

static void irq_handler(struct exc_frame *f, int vec)
{
    u32 id = gic_ack();
    i_intid = id;
    i_spsr = f->spsr;
    i_vec = vec;
    i_elr = f->elr;
    i_count++;
    gic_eoi(id);
}

static int on_el1_stack(u64 p) { return p < (u64)__stack_top && p >= (u64)__stack_top - 0x10000; }
static int on_sp0_stack(u64 p) { return p <= SP0_TOP && p >= (u64)sp0_stack; }

extern char sp0_svc[], sp0_brk[], sp0_ldr[], sp0_after_unmask[];
static volatile u64 t_spsel, t_sp_in, t_sp_after_svc, t_sp_el0_at_svc, t_sp_after_all, t_svc_frame_ok,
    t_svc_esr, t_svc_elr_off, t_svc_spsr, t_svc_vec, t_brk_esr, t_brk_vec, t_brk_spsr, t_dabt_esr, t_dabt_vec;

static NOINLINE u64 at_el1t(void)
{
    t_spsel = read_sysreg(spsel);
    t_sp_in = read_sp();
    __asm__ volatile("msr nzcv, xzr\n.global sp0_svc\nsp0_svc: svc #0x20" ::: "cc", "memory");
    t_sp_after_svc = read_sp();
    t_svc_esr = r_esr; t_svc_elr_off = r_elr - (u64)sp0_svc; t_svc_spsr = r_spsr; t_svc_vec = r_vec;
    t_sp_el0_at_svc = r_sp_el0;
    t_svc_frame_ok = on_el1_stack(r_frame);
    __asm__ volatile(".global sp0_brk\nsp0_brk: brk #0x21" ::: "memory");
    t_brk_esr = r_esr; t_brk_vec = r_vec; t_brk_spsr = r_spsr;
    __asm__ volatile("mov x1, #0x0f000000\n.global sp0_ldr\nsp0_ldr: ldr x0, [x1]" ::: "x0", "x1", "memory");
    t_dabt_esr = r_esr; t_dabt_vec = r_vec;
    /* SGI 3 is pending; unmasking IRQs takes it through vector 1 */
    __asm__ volatile("msr daifclr, #2\n.global sp0_after_unmask\nsp0_after_unmask: nop\n"
                     "msr daifset, #2" ::: "memory");
    t_sp_after_all = read_sp();
    return 7;
}

int main(void)
{
    set_sync_handler(sync_handler);
    set_irq_handler(irq_handler);
    gic_init();
    gic_enable_irq(3, 0x80);
    gic_send_sgi(3);
    u64 sp_el1_before = read_sp();
    u64 r = run_on_sp0(at_el1t, SP0_TOP);
    kv_u64("ret", r);
    kv_u64("el1t_spsel", t_spsel);
    kv_u64("el1t_sp_on_sp0_stack", on_sp0_stack(t_sp_in));
    kv_u64("el1t_sp_intact_after_svc", t_sp_after_svc == t_sp_in);
    kv_u64("el1t_sp_intact_after_all", t_sp_after_all == t_sp_in);
    kv_hex("svc_esr", t_svc_esr);
    kv_u64("svc_elr_off", t_svc_elr_off);
    kv_hex("svc_spsr", t_svc_spsr);
    kv_u64("svc_vec", t_svc_vec);
    kv_u64("svc_sp_el0_is_el1t_sp", t_sp_el0_at_svc == t_sp_in);
    kv_u64("svc_frame_on_el1_stack", t_svc_frame_ok);
    kv_hex("brk_esr", t_brk_esr);
    kv_u64("brk_vec", t_brk_vec);
    kv_hex("brk_spsr", t_brk_spsr);
    kv_hex("dabt_esr", t_dabt_esr);
    kv_u64("dabt_vec", t_dabt_vec);
    kv_u64("irq_count", i_count);
    kv_u64("irq_intid", i_intid);
    kv_u64("irq_vec", i_vec);
    kv_hex("irq_spsr", i_spsr);
    kv_u64("irq_elr_after_unmask", i_elr == (u64)sp0_after_unmask);
    kv_u64("spsel_after", read_sysreg(spsel));
    kv_u64("el1_sp_intact", read_sp() == sp_el1_before);
    kv_u64("sync_count", r_count);
    return 0;
}
