/* Synchronous exceptions taken from EL1h (current EL with SP_ELx, vector group 4..7):
 * ESR_EL1, ELR_EL1 (as an offset from the faulting instruction's label), SPSR_EL1 and
 * FAR_EL1 for SVC, BRK, UNDEFINED encodings, data aborts (read and write) and an
 * instruction abort on an address with nothing behind it (0x0F00_0000: a hole in QEMU
 * virt's map, between the platform bus and PCIe), as the Arm ARM defines them. */
#include "board_common.h"

#define HOLE 0x0F000000UL

static volatile u64 r_esr, r_elr, r_spsr, r_far, r_vec, r_count;

static void sync_handler(struct exc_frame *f, int vec)
{
    r_esr = f->esr;
    r_elr = f->elr;
    r_spsr = f->spsr;
    r_far = f->far;
    r_vec = vec;
    r_count++;
    u64 ec = ESR_EC(f->esr);
    if (ec == 0x21)                  /* instruction abort: we came by BLR, go back to x30 */
        f->elr = f->x[30];
    else if (ec != 0x15)             /* SVC already returns past itself */
        f->elr += 4;
}

static void clear(void) { r_esr = r_elr = r_spsr = r_far = r_vec = 0; }

extern char vectors[];
extern char svc_a[], svc_b[], svc_c[], brk_a[], brk_b[], udf_a[], udf_b[], sysreg_a[], sysreg_b[],
    ldr_a[], str_a[], ldrw_a[], ldp_a[];

static NOINLINE void t_svc(void)
{
    /* NZCV = 0b0110 (Z, C): SPSR_EL1 = NZCV | DAIF (all masked at entry) | EL1h (0x5) */
    __asm__ volatile("mov x9, #0x60000000\n msr nzcv, x9\n"
                     ".global svc_a\nsvc_a: svc #0x1234" ::: "x9", "cc", "memory");
}

static NOINLINE void t_svc_zero_unmasked(void)
{
    /* DAIF all clear and NZCV = 0b1001 (N, V): SPSR = 0x90000005 */
    __asm__ volatile("mrs x10, daif\n msr daif, xzr\n"
                     "mov x9, #0x90000000\n msr nzcv, x9\n"
                     ".global svc_b\nsvc_b: svc #0\n"
                     "msr daif, x10" ::: "x9", "x10", "cc", "memory");
}

static NOINLINE void t_svc_max(void)
{
    __asm__ volatile("msr nzcv, xzr\n.global svc_c\nsvc_c: svc #0xffff" ::: "cc", "memory");
}

static NOINLINE void t_brk(void)
{
    __asm__ volatile("msr nzcv, xzr\n.global brk_a\nbrk_a: brk #0x42" ::: "cc", "memory");
}

static NOINLINE void t_brk_max(void)
{
    __asm__ volatile(".global brk_b\nbrk_b: brk #0xffff" ::: "memory");
}

static NOINLINE void t_udf(void)
{
    __asm__ volatile(".global udf_a\nudf_a: .inst 0x00000000" ::: "memory");   /* UDF #0 */
}

static NOINLINE void t_udf_other(void)
{
    /* UDF #0xf00: the immediate is not part of the syndrome (ESR ISS = 0) */
    __asm__ volatile(".global udf_b\nudf_b: .inst 0x00000f00" ::: "memory");
}

static NOINLINE void t_sysreg_undef(void)
{
    /* MRS of an encoding no CPU implements (op0=3 op1=6 CRn=15 CRm=15 op2=7) */
    __asm__ volatile(".global sysreg_a\nsysreg_a: mrs x0, s3_6_c15_c15_7" ::: "x0", "memory");
}

static NOINLINE void t_sysreg_ro_write(void)
{
    /* MSR to MIDR_EL1 (read-only): UNDEFINED */
    __asm__ volatile(".global sysreg_b\nsysreg_b: msr s3_0_c0_c0_0, xzr" ::: "memory");
}

static NOINLINE void t_ldr(void)
{
    __asm__ volatile("mov x1, #0x0f000000\n add x1, x1, #0x10\n"
                     ".global ldr_a\nldr_a: ldr x0, [x1]" ::: "x0", "x1", "memory");
}

static NOINLINE void t_str(void)
{
    __asm__ volatile("mov x1, #0x0f000000\n add x1, x1, #0x20\n"
                     ".global str_a\nstr_a: str xzr, [x1]" ::: "x1", "memory");
}

static NOINLINE void t_ldrw(void)
{
    __asm__ volatile("mov x1, #0x0f000000\n add x1, x1, #0x34\n"
                     ".global ldrw_a\nldrw_a: ldr w0, [x1]" ::: "x0", "x1", "memory");
}

static NOINLINE void t_ldp(void)
{
    __asm__ volatile("mov x1, #0x0f000000\n add x1, x1, #0x40\n"
                     ".global ldp_a\nldp_a: ldp x2, x3, [x1]" ::: "x1", "x2", "x3", "memory");
}

static NOINLINE void t_iabt(void)
{
    __asm__ volatile("mov x12, x30\n mov x1, #0x0f000000\n blr x1\n mov x30, x12"
                     ::: "x1", "x12", "x30", "memory");
}

static void show(const char *name, const char *label)
{
    printf("%s: esr=0x%lx elr_off=%ld spsr=0x%lx far=0x%lx vec=%lu\n", name, r_esr,
           (s64)(r_elr - (u64)label), r_spsr, r_far, r_vec);
}

int main(void)
{
    set_sync_handler(sync_handler);
    kv_u64("el", current_el());
    kv_hex("daif_at_entry", read_sysreg(daif));
    kv_u64("spsel", read_sysreg(spsel));

    clear(); t_svc(); show("svc", svc_a);
    clear(); t_svc_zero_unmasked(); show("svc0_unmasked", svc_b);
    clear(); t_svc_max(); show("svc_ffff", svc_c);
    clear(); t_brk(); show("brk", brk_a);
    clear(); t_brk_max(); show("brk_ffff", brk_b);
    clear(); t_udf(); show("udf", udf_a);
    clear(); t_udf_other(); show("udf_other", udf_b);
    clear(); t_sysreg_undef(); show("mrs_unallocated", sysreg_a);
    clear(); t_sysreg_ro_write(); show("msr_midr", sysreg_b);
    clear(); t_ldr(); show("dabt_read", ldr_a);
    clear(); t_str(); show("dabt_write", str_a);
    clear(); t_ldrw(); show("dabt_read32", ldrw_a);
    clear(); t_ldp(); show("dabt_ldp", ldp_a);
    clear(); t_iabt();
    printf("iabt: esr=0x%lx elr=0x%lx spsr=0x%lx far=0x%lx vec=%lu\n", r_esr, r_elr, r_spsr, r_far, r_vec);
    kv_u64("sync_count", r_count);
    kv_u64("vbar_is_vectors", read_sysreg(vbar_el1) == (u64)vectors);
    return 0;
}
