/* Measurement harness of the ev_* guests (event semantics, tests/test_events*.py).
 *
 * A measured region is a top-level assembly function `void r_NAME(u64 pmcr)` that starts
 * counting with `msr pmcr_el0, x0` and stops with `msr pmcr_el0, xzr`.  Bracketing rule
 * (the same everywhere): a counter read sees every instruction retired before it; the
 * MSR that enables counting counts itself, the one that disables counting does not.  So
 * every region's count is "the enabling MSR + the region body".
 *
 * ev_measure() runs the region `warm` times (warm-up: trains the branch predictor and fills
 * the cache models; counting is on, because the cache models only see what happens while
 * a counter listens to a cache event, see docs/events.md), resets the counters, runs it
 * once more and prints one line per counter, "NAME.EVENT=value", plus
 * "NAME.CCNT=value" (PMCCNTR_EL0).  Counter i counts ev_list[i] (EV_STD by default: 31
 * events, run the guest with --counters 31).  Output goes through one semihosting
 * SYS_WRITE0 per region: the PL011 costs a trap per character.
 */
#ifndef EV_HARNESS_H
#define EV_HARNESS_H
#include "vpmu.h"

#define EV_PMCR ((u64)(PMCR_E | PMCR_LC))

struct ev { u16 num; const char *name; };

/* The standard set: every implemented event except SW_INCR and CHAIN (software events,
 * tested in ev_misc), 31 counters. */
static const struct ev EV_STD[] = {
    {0x08, "INST_RETIRED"}, {0x1B, "INST_SPEC"}, {0x3A, "OP_RETIRED"}, {0x3B, "OP_SPEC"},
    {0x11, "CPU_CYCLES"}, {0x14, "L1I_CACHE"}, {0x06, "LD_RETIRED"}, {0x07, "ST_RETIRED"},
    {0x13, "MEM_ACCESS"}, {0x04, "L1D_CACHE"}, {0x0F, "UNALIGNED_LDST_RETIRED"},
    {0x21, "BR_RETIRED"}, {0x0D, "BR_IMMED_RETIRED"}, {0x0E, "BR_RETURN_RETIRED"},
    {0x0C, "PC_WRITE_RETIRED"}, {0x12, "BR_PRED"}, {0x10, "BR_MIS_PRED"},
    {0x22, "BR_MIS_PRED_RETIRED"}, {0x09, "EXC_TAKEN"}, {0x0A, "EXC_RETURN"},
    {0x0B, "CID_WRITE_RETIRED"}, {0x1C, "TTBR_WRITE_RETIRED"}, {0x23, "STALL_FRONTEND"},
    {0x24, "STALL_BACKEND"}, {0x3C, "STALL"}, {0x01, "L1I_CACHE_REFILL"},
    {0x4006, "L1I_CACHE_LMISS"}, {0x03, "L1D_CACHE_REFILL"}, {0x15, "L1D_CACHE_WB"},
    {0x400D, "PMU_OVFS"}, {0x4004, "CNT_CYCLES"},
};
#define EV_NSTD (sizeof(EV_STD) / sizeof(EV_STD[0]))

static const struct ev *ev_list = EV_STD;
static u64 ev_n = EV_NSTD;          /* events in ev_list */
static u64 ev_used;                 /* counters programmed: min(PMCR.N, ev_n) */

/* ---- output buffered and written with semihosting SYS_WRITE0 ---------------------------- */
static char ev_obuf[4096];
static u64 ev_olen;

static void ev_flush(void)
{
    if (!ev_olen)
        return;
    ev_obuf[ev_olen] = 0;
    register u64 x0 __asm__("x0") = 4;                  /* SYS_WRITE0 */
    register u64 x1 __asm__("x1") = (u64)ev_obuf;
    __asm__ volatile("hlt #0xf000" : "+r"(x0) : "r"(x1) : "memory");
    ev_olen = 0;
}

static void ev_puts(const char *s)
{
    while (*s) {
        if (ev_olen >= sizeof(ev_obuf) - 2)
            ev_flush();
        ev_obuf[ev_olen++] = *s++;
    }
}

static void ev_putu(u64 v)
{
    char b[24];
    int n = 0;
    do { b[n++] = '0' + v % 10; v /= 10; } while (v);
    char o[24];
    int k = 0;
    while (n) o[k++] = b[--n];
    o[k] = 0;
    ev_puts(o);
}

static void ev_kv(const char *a, const char *b, u64 v)
{
    ev_puts(a);
    if (b) { ev_puts("."); ev_puts(b); }
    ev_puts("=");
    ev_putu(v);
    ev_puts("\n");
}

/* ---- programming and measuring ----------------------------------------------------------- */
/* Program counter i with ev_list[i] | evfilt (PMEVTYPER P/U bits), PMCCFILTR = ccfilt, enable
 * all of them and the cycle counter; PMCR.E stays 0. */
static void ev_program(const struct ev *list, u64 n, u64 evfilt, u64 ccfilt)
{
    ev_list = list;
    ev_n = n;
    pmu_reset();
    ev_used = pmu_n() < n ? pmu_n() : n;
    for (u64 i = 0; i < ev_used; i++)
        pmu_write_type(i, list[i].num | evfilt);
    write_sysreg(pmccfiltr_el0, ccfilt);
    write_sysreg(pmcntenset_el0, ((1UL << ev_used) - 1) | (1UL << 31));
    isb();
}

typedef void (*ev_region_t)(u64 pmcr);

static void ev_clear(void)
{
    write_sysreg(pmcr_el0, PMCR_LC | PMCR_P | PMCR_C);  /* E = 0, counters and PMCCNTR = 0 */
    write_sysreg(pmovsclr_el0, ~0UL);
    isb();
}

static void ev_print(const char *name)
{
    for (u64 i = 0; i < ev_used; i++)
        ev_kv(name, ev_list[i].name, pmu_read_counter(i));
    ev_kv(name, "CCNT", read_sysreg(pmccntr_el0));
    ev_flush();
}

/* ev_measure with the value the region's enabling MSR writes to PMCR_EL0 */
static NOINLINE void ev_measure_pmcr(const char *name, ev_region_t fn, int warm, u64 pmcr)
{
    for (int i = 0; i < warm; i++) {
        ev_clear();
        fn(pmcr);
    }
    ev_clear();
    fn(pmcr);
    isb();
    ev_print(name);
}

static void ev_measure(const char *name, ev_region_t fn, int warm)
{
    ev_measure_pmcr(name, fn, warm, EV_PMCR);
}

/* Region boilerplate for top-level asm.  R_ON / R_OFF are the bracketing MSRs. */
#define R_BEGIN(name) ".text\n.balign 64\n.global " #name "\n.type " #name ", %function\n" #name ":\n"
#define R_ON "msr pmcr_el0, x0\n"                  /* counted */
#define R_OFF "msr pmcr_el0, xzr\n"                /* not counted */
#define R_END "ret\n"
#define REGION(name) extern void name(u64)

/* ---- vector tables for measured exceptions ------------------------------------------------
 * Regions that take exceptions install one of these (VEC(ev_vec_a)) so that every handler
 * instruction is known:
 *   ev_vec_a  sync, current EL:  eret                                          (1 instruction)
 *   ev_vec_b  sync, current EL:  mrs x17, elr; add x17, x17, #4; msr elr, x17; eret    (4)
 *             (skips the faulting instruction)
 *   both      IRQ, any EL:       mrs x17, IAR1; msr cntv_ctl, xzr; msr EOIR1, x17; eret (4)
 *             (acknowledges the interrupt, stops the virtual timer)
 *             sync, lower EL:    br x16   (the region continues at EL1 where x16 says)  (1)
 * Anything else is a test failure (exit 97). */
#define SGI1 "0x1000001"      /* ICC_SGI1R_EL1 value: INTID 1 to CPU 0 */

__asm__(".text\n"
        ".macro ev_bad_entry\n .balign 0x80\n b ev_vec_bad\n .endm\n"
        ".macro ev_irq_entry\n .balign 0x80\n mrs x17, s3_0_c12_c12_0\n msr cntv_ctl_el0, xzr\n"
        " msr s3_0_c12_c12_1, x17\n eret\n .endm\n"
        ".balign 2048\n.global ev_vec_a\nev_vec_a:\n"
        " ev_bad_entry\n ev_bad_entry\n ev_bad_entry\n ev_bad_entry\n"
        " .balign 0x80\n eret\n"                         /* 0x200 sync, current EL, SPx */
        " ev_irq_entry\n"                                /* 0x280 IRQ, current EL */
        " ev_bad_entry\n ev_bad_entry\n"
        " .balign 0x80\n br x16\n"                       /* 0x400 sync, lower EL */
        " ev_irq_entry\n"                                /* 0x480 IRQ, lower EL */
        " ev_bad_entry\n ev_bad_entry\n ev_bad_entry\n ev_bad_entry\n ev_bad_entry\n ev_bad_entry\n"
        ".balign 2048\n.global ev_vec_b\nev_vec_b:\n"
        " ev_bad_entry\n ev_bad_entry\n ev_bad_entry\n ev_bad_entry\n"
        " .balign 0x80\n mrs x17, elr_el1\n add x17, x17, #4\n msr elr_el1, x17\n eret\n"
        " ev_irq_entry\n"
        " ev_bad_entry\n ev_bad_entry\n"
        " .balign 0x80\n br x16\n"
        " ev_irq_entry\n"
        " ev_bad_entry\n ev_bad_entry\n ev_bad_entry\n ev_bad_entry\n ev_bad_entry\n ev_bad_entry\n"
        "ev_vec_bad:\n mrs x0, esr_el1\n mrs x1, elr_el1\n bl ev_vec_bad_c\n");

void ev_vec_bad_c(u64 esr, u64 elr)
{
    printf("unexpected exception in a measured region: esr=0x%lx elr=0x%lx\n", esr, elr);
    exit(97);
}

#define VEC(t) "adr x9, " #t "\n msr vbar_el1, x9\n isb\n"
#define VEC_RESTORE "ldr x9, =vectors\n msr vbar_el1, x9\n isb\n"
/* enter EL0 at label 2f with an ERET (EL0t, interrupts unmasked); an SVC (or any synchronous
 * exception) from EL0 continues at EL1 at label 3f */
#define TO_EL0_SETUP "adr x16, 3f\n adr x9, 2f\n msr elr_el1, x9\n msr spsr_el1, xzr\n"

#endif
