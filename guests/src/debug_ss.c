/* Software step (Arm ARM D2.12): the exact sequence of Software Step exceptions (ESR_EL1 with
 * ISV and EX, ELR_EL1, SPSR_EL1.SS/D) for
 * - EL1 with MDSCR_EL1.KDE: clearing PSTATE.D makes the step active-pending at once (ISV = 0 at
 *   the next instruction); the handler's SPSR.SS = 1 steps one instruction each (ISV = 1, ELR
 *   the next one: after a taken branch its target), a load-exclusive sets EX; the MSR DAIFSet
 *   that masks debug exceptions is stepped too (QEMU takes the step exception after it);
 * - an HVC the board answers (PSCI_VERSION): the step completes with it, so the next step
 *   exception has ISV = 0 at the instruction after it;
 * - an instruction that takes a data abort (an access to nothing): SPSR.SS stays 1, and the
 *   handler returning past it steps the next instruction;
 * - EL0 entered by ERET with SPSR.SS = 0 (active-pending at once) and then 1, an SVC stepped
 *   (the SVC exception has SPSR.SS = 0, the step exception follows the return with ISV = 0);
 * - what disables it: KDE = 0 at EL1 (EL0 still steps), PSTATE.D at EL1, the OS lock (its
 *   release with PSTATE.D clear makes the step active-pending at the next instruction);
 * - exactness: the EL0 instructions retired while stepped, counted by the PMU (EL0 only), are
 *   those retired without stepping;
 * - hardware breakpoints (QEMU's own, EC 0x31) obey the OS lock too.
 * Prints "ss_cases=N" and failures=0 when every check holds. */
#include "board_common.h"

#define MDSCR_SS 1UL
#define MDSCR_KDE (1UL << 13)
#define MDSCR_MDE (1UL << 15)
#define SPSR_SS (1UL << 21)
#define SPSR_D (1UL << 9)
#define ESR_SS_CUR 0xCE000022UL      /* EC 0x33, IL, IFSC 0b100010: no instruction stepped */
#define ESR_SS_LOW 0xCA000022UL      /* EC 0x32 */
#define ISV (1UL << 24)              /* an instruction was stepped */
#define EX (1UL << 6)                /* ... and it was a load-exclusive */
#define HOLE 0x0F000000UL            /* nothing there (QEMU virt): a synchronous external abort */

__asm__(".text\n"
        /* EL1, KDE: x0 = 0 + 1 + 2, a branch over an UDF, a load-exclusive */
        ".global seq1\nseq1:\n  mov x0, #0\n  adr x2, seq1_word\n  msr daifclr, #8\n"
        ".global s1_0\ns1_0:\n  add x0, x0, #1\n"
        ".global s1_1\ns1_1:\n  add x0, x0, #2\n"
        ".global s1_2\ns1_2:\n  b s1_4\n  udf #0\n"
        ".global s1_4\ns1_4:\n  ldxr x1, [x2]\n"
        ".global s1_5\ns1_5:\n  clrex\n"
        ".global s1_6\ns1_6:\n  msr daifset, #8\n"
        ".global s1_7\ns1_7:\n  ret\n"
        ".balign 8\nseq1_word:\n  .quad 0\n"
        /* EL1: a stepped HVC #0 (PSCI_VERSION) */
        ".global seq_hvc\nseq_hvc:\n  msr daifclr, #8\n"
        ".global h_0\nh_0:\n  mov x0, #0x84000000\n"
        ".global h_1\nh_1:\n  hvc #0\n"
        ".global h_2\nh_2:\n  nop\n"
        ".global h_3\nh_3:\n  msr daifset, #8\n"
        ".global h_4\nh_4:\n  ret\n"
        /* EL1: a stepped load from nothing (the handler skips it) */
        ".global seq_abt\nseq_abt:\n  mov x9, #0x0f000000\n  msr daifclr, #8\n"
        ".global a_0\na_0:\n  ldr x1, [x9]\n"
        ".global a_1\na_1:\n  add x0, x0, #1\n"
        ".global a_2\na_2:\n  msr daifset, #8\n"
        ".global a_3\na_3:\n  ret\n"
        /* EL1: the OS lock released while PSTATE.D is clear */
        ".global seq_osl\nseq_osl:\n  msr daifclr, #8\n  nop\n  nop\n  msr oslar_el1, xzr\n"
        ".global o_0\no_0:\n  nop\n"
        ".global o_1\no_1:\n  msr daifset, #8\n"
        ".global o_2\no_2:\n  ret\n"
        /* EL1, nothing stepped: a few instructions with PSTATE.D clear */
        ".global seq_quiet\nseq_quiet:\n  mov x0, #0\n  msr daifclr, #8\n  add x0, x0, #1\n  add x0, x0, #1\n"
        "  msr daifset, #8\n  ret\n"
        /* EL1: a hardware breakpoint on b_1 */
        ".global seq_bp\nseq_bp:\n  msr daifclr, #8\n"
        ".global b_0\nb_0:\n  nop\n"
        ".global b_1\nb_1:\n  nop\n"
        "  msr daifset, #8\n  ret\n"
        /* EL0: x0 = 5 + 1 + 1 around an SVC; the trampoline's SVC #0xffff ends it */
        ".global e_0\ne_0:\n  mov x0, #5\n"
        ".global e_1\ne_1:\n  add x0, x0, #1\n"
        ".global e_2\ne_2:\n  svc #0x12\n"
        ".global e_3\ne_3:\n  add x0, x0, #1\n"
        ".global e_4\ne_4:\n  ret\n");

extern char s1_0[], s1_1[], s1_2[], s1_4[], s1_5[], s1_6[], s1_7[], h_0[], h_1[], h_2[], h_3[], h_4[], a_0[], a_1[],
    a_2[], a_3[], o_0[], o_1[], o_2[], b_1[], e_0[], e_1[], e_2[], e_3[], e_4[], el0_return_trampoline[];
u64 seq1(void), seq_hvc(void), seq_abt(void), seq_osl(void), seq_quiet(void), seq_bp(void),
    e_0_fn(u64) __asm__("e_0");

#define MAXREC 32
static volatile u64 n, r_esr[MAXREC], r_elr[MAXREC], r_spsr[MAXREC];
static volatile int keep_stepping = 1;

static void handler(struct exc_frame *f, int vec)
{
    (void)vec;
    u64 ec = ESR_EC(f->esr);
    if (n < MAXREC) {
        r_esr[n] = f->esr;
        r_elr[n] = f->elr;
        r_spsr[n] = f->spsr;
    }
    n++;
    if (ec == 0x32 || ec == 0x33) {
        if (keep_stepping)
            f->spsr |= SPSR_SS;           /* step the next instruction */
        return;
    }
    if (ec == 0x15)                       /* SVC: the return address is already past it */
        return;
    if (ec == 0x31) {                     /* breakpoint: go on with debug exceptions masked */
        f->spsr |= SPSR_D;
        return;
    }
    if (ec == 0x25 && f->far == HOLE) {   /* the load from nothing: skip it */
        f->elr += 4;
        return;
    }
    printf("unexpected exception: vector=%d esr=0x%lx elr=0x%lx far=0x%lx\n", vec, f->esr, f->elr, f->far);
    exit(99);
}

static u64 cases;
struct rec { u64 esr; const char *elr; u64 spsr_mask, spsr_bits; };

/* the exceptions recorded since the last reset are exactly `want` */
static void expect(const char *what, const struct rec *want, u64 nwant)
{
    cases++;
    if (n != nwant) {
        failures++;
        printf("FAIL %s: %lu exceptions (expected %lu)\n", what, n, nwant);
        for (u64 i = 0; i < n && i < MAXREC; i++)
            printf("  %lu: esr=0x%lx elr=0x%lx spsr=0x%lx\n", i, r_esr[i], r_elr[i], r_spsr[i]);
        return;
    }
    for (u64 i = 0; i < nwant; i++)
        if (r_esr[i] != want[i].esr || r_elr[i] != (u64)want[i].elr
            || (r_spsr[i] & want[i].spsr_mask) != want[i].spsr_bits) {
            failures++;
            printf("FAIL %s #%lu: esr=0x%lx elr=0x%lx spsr=0x%lx (expected esr=0x%lx elr=0x%lx)\n", what, i,
                   r_esr[i], r_elr[i], r_spsr[i], want[i].esr, (u64)want[i].elr);
        }
}

static void reset(u64 mdscr)
{
    n = 0;
    keep_stepping = 1;
    write_sysreg(mdscr_el1, mdscr);
    isb();
}

#define SSD (SPSR_SS | SPSR_D)
#define EL1H_D0 SSD | 0xf, 0x5     /* SPSR: SS = 0, D = 0, EL1h */

int main(void)
{
    set_sync_handler(handler);
    __asm__ volatile("msr daifset, #8");
    write_sysreg(oslar_el1, 0);
    isb();

    /* EL1 with KDE: active-pending at once, then one instruction per step */
    reset(MDSCR_KDE | MDSCR_SS);
    u64 x0 = seq1();
    static const struct rec w1[] = {
        { ESR_SS_CUR, s1_0, EL1H_D0 },            { ESR_SS_CUR | ISV, s1_1, EL1H_D0 },
        { ESR_SS_CUR | ISV, s1_2, EL1H_D0 },      { ESR_SS_CUR | ISV, s1_4, EL1H_D0 },
        { ESR_SS_CUR | ISV | EX, s1_5, EL1H_D0 }, { ESR_SS_CUR | ISV, s1_6, EL1H_D0 },
        { ESR_SS_CUR | ISV, s1_7, SSD | 0xf, SPSR_D | 0x5 },     /* after DAIFSet: D is set */
    };
    expect("el1", w1, 7);
    CHECK_EQ(x0, 3);

    /* a stepped HVC the board answers completes the step */
    reset(MDSCR_KDE | MDSCR_SS);
    u64 ver = seq_hvc();
    static const struct rec wh[] = {
        { ESR_SS_CUR, h_0, EL1H_D0 }, { ESR_SS_CUR | ISV, h_1, EL1H_D0 }, { ESR_SS_CUR, h_2, EL1H_D0 },
        { ESR_SS_CUR | ISV, h_3, EL1H_D0 }, { ESR_SS_CUR | ISV, h_4, SSD | 0xf, SPSR_D | 0x5 },
    };
    expect("hvc", wh, 5);
    kv_hex("psci_version", ver);

    /* a stepped instruction that aborts does not complete its step (SPSR.SS = 1) */
    reset(MDSCR_KDE | MDSCR_SS);
    seq_abt();
    static const struct rec wa[] = {
        { ESR_SS_CUR, a_0, EL1H_D0 },
        { 0x96000010UL, a_0, SSD | 0xf, SPSR_SS | 0x5 },          /* EC 0x25, SEA, SPSR.SS = 1 */
        { ESR_SS_CUR | ISV, a_2, EL1H_D0 },
        { ESR_SS_CUR | ISV, a_3, SSD | 0xf, SPSR_D | 0x5 },
    };
    expect("abort", wa, 4);

    /* the OS lock: nothing until it is released, then active-pending at once */
    write_sysreg(oslar_el1, 1);
    reset(MDSCR_KDE | MDSCR_SS);
    seq_osl();
    static const struct rec wo[] = {
        { ESR_SS_CUR, o_0, EL1H_D0 }, { ESR_SS_CUR | ISV, o_1, EL1H_D0 },
        { ESR_SS_CUR | ISV, o_2, SSD | 0xf, SPSR_D | 0x5 },
    };
    expect("oslock", wo, 3);

    /* KDE = 0: EL1 does not step */
    reset(MDSCR_SS);
    CHECK_EQ(seq_quiet(), 0x2);
    expect("kde0", 0, 0);

    /* EL0, entered with SPSR.SS = 0: active-pending at once; an SVC in between */
    reset(MDSCR_SS);
    pmu_reset();
    pmu_write_type(0, EV_INST_RETIRED | PMEVTYPER_P);      /* EL0 only */
    write_sysreg(pmcntenset_el0, 1);
    pmcr_write(PMCR_E);
    x0 = el0_call(e_0_fn, 0, (u64)__el0_stack_top);
    pmcr_write(0);
    u64 stepped = pmu_read_counter(0);
    static const struct rec we[] = {
        { ESR_SS_LOW, e_0, SSD | 0xf, 0 },        { ESR_SS_LOW | ISV, e_1, SSD | 0xf, 0 },
        { ESR_SS_LOW | ISV, e_2, SSD | 0xf, 0 },  { 0x56000012UL, e_3, SSD | 0xf, 0 },   /* SVC, SS = 0 */
        { ESR_SS_LOW, e_3, SSD | 0xf, 0 },        { ESR_SS_LOW | ISV, e_4, SSD | 0xf, 0 },
        { ESR_SS_LOW | ISV, el0_return_trampoline, SSD | 0xf, 0 },
    };
    expect("el0", we, 7);
    CHECK_EQ(x0, 7);

    /* the same EL0 code without stepping retires as many EL0 instructions */
    reset(0);
    pmu_reset();
    pmu_write_type(0, EV_INST_RETIRED | PMEVTYPER_P);
    write_sysreg(pmcntenset_el0, 1);
    pmcr_write(PMCR_E);
    x0 = el0_call(e_0_fn, 0, (u64)__el0_stack_top);
    pmcr_write(0);
    u64 plain = pmu_read_counter(0);
    static const struct rec wsvc[] = { { 0x56000012UL, e_3, SSD | 0xf, 0 } };
    expect("el0-plain", wsvc, 1);
    CHECK_EQ(x0, 7);
    CHECK_EQ(stepped, 6);
    CHECK_EQ(plain, 6);
    kv_u64("el0_retired_stepped", stepped);
    kv_u64("el0_retired_plain", plain);

    /* a hardware breakpoint: taken, and not while the OS lock is set */
    write_sysreg(dbgbvr0_el1, (u64)b_1);
    write_sysreg(dbgbcr0_el1, (0xfUL << 5) | (1UL << 1) | 1);     /* BAS 0b1111, EL1, enabled */
    reset(MDSCR_MDE | MDSCR_KDE);
    seq_bp();
    static const struct rec wb[] = { { 0xC6000022UL, b_1, EL1H_D0 } };   /* EC 0x31, IFSC 0b100010 */
    expect("breakpoint", wb, 1);
    write_sysreg(oslar_el1, 1);
    reset(MDSCR_MDE | MDSCR_KDE);
    seq_bp();
    expect("breakpoint-oslock", 0, 0);
    write_sysreg(oslar_el1, 0);
    write_sysreg(dbgbcr0_el1, 0);

    reset(0);
    kv_u64("ss_cases", cases);
    return report();
}
