/* Code that changes under the code cache: the counts describe the instructions that ran.
 *
 * Two small functions, as machine code the guest writes itself:
 *   A:  add x0, x0, #1 ; add x0, x0, #1 ; add x0, x0, #0 ; ret    4 instructions, 1 branch
 *   B:  ldr x1, [sp] ; stur x1, [sp, #-16] ; add x0, x0, #2 ; ret  4 instructions, 1 branch,
 *                                                                  1 load, 1 store
 * The two have the same length, so Unicorn's new translation of the same address has the same
 * extent and only the words tell them apart.  measure(fn) counts `msr pmcr_el0 (enable) ;
 * blr fn ; <fn> ; msr pmcr_el0, xzr`: the enabling MSR and the BLR count, so A gives inst=6
 * br=2 ld=0 st=0 and B gives inst=6 br=2 ld=1 st=1 (and the function returns x0 + 2 either
 * way).
 *
 * Cases (each prints NAME.inst/.br/.ld/.st and NAME.ret):
 *   smc_*:    one buffer rewritten A -> B -> A with the architected maintenance (DC CVAU, IC IVAU,
 *             ISB) between writing and calling;
 *   nomaint:  B written over A with no maintenance at all and called at once: architecturally the
 *             PE may run either; Unicorn (like QEMU) runs the new code, and so must the counts;
 *   remap_*:  one virtual page mapped to a page holding A, then to one holding B, and back, with
 *             TLBI VAE1 / TLBI VMALLE1 between (MMU on, 4 KiB pages under a 1 GiB table);
 *   alias:    the page holding B called through the identity map too (the same words at two VAs).
 */
#include "vpmu.h"

#define INSN_ADD1 0x91000400u       /* add x0, x0, #1 */
#define INSN_ADD0 0x91000000u       /* add x0, x0, #0 */
#define INSN_ADD2 0x91000800u       /* add x0, x0, #2 */
#define INSN_RET 0xD65F03C0u
#define INSN_LDR_SP 0xF94003E1u     /* ldr x1, [sp] */
#define INSN_STR_SPM16 0xF81F03E1u  /* stur x1, [sp, #-16] */

static u32 buf[1024] ALIGNED(4096);       /* rewritten in place */
static u32 page_a[1024] ALIGNED(4096);
static u32 page_b[1024] ALIGNED(4096);
static u64 l1[512] ALIGNED(4096), l2[512] ALIGNED(4096), l3[512] ALIGNED(4096);
#define XVA 0x100000000UL                 /* 4 GiB: l1[4] -> l2 -> l3[0] */

u64 measure(u64 fn, u64 pmcr, u64 x0);
__asm__(".global measure\nmeasure:\n"
        "  stp x29, x30, [sp, #-16]!\n"
        "  mov x9, x0\n  mov x0, x2\n"
        "  msr pmcr_el0, x1\n"            /* counted: it enables counting */
        "  blr x9\n"                      /* counted */
        "  msr pmcr_el0, xzr\n"           /* not counted: counting is off after it */
        "  isb\n"
        "  ldp x29, x30, [sp], #16\n  ret\n");

static void put_a(u32 *p) { p[0] = INSN_ADD1; p[1] = INSN_ADD1; p[2] = INSN_ADD0; p[3] = INSN_RET; }
static void put_b(u32 *p) { p[0] = INSN_LDR_SP; p[1] = INSN_STR_SPM16; p[2] = INSN_ADD2; p[3] = INSN_RET; }

static void sync_icache(u32 *p)
{
    __asm__ volatile("dc cvau, %0\n dsb ish\n ic ivau, %0\n dsb ish\n isb" :: "r"(p) : "memory");
}

static void run(const char *name, u64 fn)
{
    for (int i = 0; i < 4; i++) {
        write_sysreg(pmselr_el0, i);
        write_sysreg(pmxevcntr_el0, 0);
    }
    u64 r = measure(fn, PMCR_E | PMCR_LC, 40);
    static const char *ev[4] = {"inst", "br", "ld", "st"};
    for (int i = 0; i < 4; i++) {
        write_sysreg(pmselr_el0, i);
        isb();
        printf("%s.%s=%lu\n", name, ev[i], read_sysreg(pmxevcntr_el0));
    }
    printf("%s.ret=%lu\n", name, r);
}

static void map_x(u32 *page)
{
    l3[0] = (u64)page | (1 << 2) | (3 << 8) | (1 << 10) | 3;    /* page, Normal WB, inner shareable, AF */
    __asm__ volatile("dsb ishst\n tlbi vaae1is, %0\n dsb ish\n isb" :: "r"(XVA >> 12) : "memory");
}

static void mmu_on(void)
{
    write_sysreg(mair_el1, 0xff00UL);
    l1[0] = (1 << 10) | 1;                                           /* devices, Device-nGnRnE */
    for (u64 g = 1; g < 4; g++)
        l1[g] = (g << 30) | (1 << 2) | (3 << 8) | (1 << 10) | 1;     /* RAM, identity */
    l1[4] = (u64)l2 | 3;
    l2[0] = (u64)l3 | 3;
    dsb();
    write_sysreg(tcr_el1, 25UL | (1UL << 8) | (1UL << 10) | (3UL << 12) | (1UL << 23) | (2UL << 32));
    write_sysreg(ttbr0_el1, (u64)l1);
    isb();
    __asm__ volatile("tlbi vmalle1\n dsb sy\n isb" ::: "memory");
    write_sysreg(sctlr_el1, read_sysreg(sctlr_el1) | 1 | (1 << 2) | (1 << 12));
    isb();
}

int main(void)
{
    pmu_reset();
    static const u32 ev[4] = {EV_INST_RETIRED, EV_BR_RETIRED, EV_LD_RETIRED, EV_ST_RETIRED};
    for (int i = 0; i < 4; i++)
        pmu_write_type(i, ev[i]);
    write_sysreg(pmcntenset_el0, 0xF);

    /* self-modifying code, with the architected maintenance */
    put_a(buf); sync_icache(buf);
    run("smc_a1", (u64)buf);
    put_b(buf); sync_icache(buf);
    run("smc_b", (u64)buf);
    put_a(buf); sync_icache(buf);
    run("smc_a2", (u64)buf);

    /* without maintenance: Unicorn runs the new words at once */
    put_b(buf);
    run("nomaint", (u64)buf);

    /* one virtual page, two physical pages */
    put_a(page_a); sync_icache(page_a);
    put_b(page_b); sync_icache(page_b);
    mmu_on();
    map_x(page_a);
    run("remap_a1", XVA);
    map_x(page_b);
    run("remap_b", XVA);
    map_x(page_a);
    run("remap_a2", XVA);
    l3[0] = (u64)page_b | (1 << 2) | (3 << 8) | (1 << 10) | 3;
    __asm__ volatile("dsb ishst\n tlbi vmalle1is\n dsb ish\n isb" ::: "memory");
    run("remap_b_all", XVA);
    run("alias", (u64)page_b);
    return 0;
}
