/* The guest side of the KVM selftest arm64/vpmu_counter_access.c (our own code, same checks).
 *
 * The host configures PMCR_EL0.N (vpmu run --counters N); the expected N may also be passed on
 * the kernel command line (--append N, read through semihosting SYS_GET_CMDLINE), like the
 * selftest's vcpu_args_set(pmcr_n).  The guest
 *   - reads PMCR_EL0.N and prints it (and checks it against the command line if given),
 *   - checks that bits [30:N] of the six bitmap views (PMCNTEN/PMINTEN/PMOVS SET/CLR) read 0,
 *   - for each implemented counter and each of the four accessor combinations (direct
 *     PMEVCNTR<n>/PMEVTYPER<n>, or PMSELR + PMXEVCNTR/PMXEVTYPER, for reads and for writes):
 *     PMCR.P reset with E=0; clear / set / clear the counter's bit through the CLR / SET
 *     registers and check all six views; PMEVTYPER := P|INST_RETIRED reads back identical;
 *     the counter reads 0; writing i + 0x12345 reads back identical,
 *   - for each unimplemented counter in [N, 30] and each combination: counter read, counter
 *     write, type read and type write each raise exactly one UNDEF (ESR.EC == 0, the handler
 *     skips the instruction), and writes to the SET registers leave all six views clear.
 * Stricter than the selftest: the six views must read exactly the one bit (or 0), not just
 * "bit set/clear", and each UNDEF must come from the expected instruction (ELR).
 * Output: per-check "NAME=PASS|FAIL" and "NAME.checks=<count>" lines, "pmcr_n", "undefs",
 * "failures"; exit status = number of failed checks (capped at 255).
 */
#include "vpmu.h"

#define MAX_GENERAL_COUNTERS 31
#define CYCLE_IDX 31
#define EXCLUDE_EL1 (1UL << 31)
#define BIT(n) (1UL << (n))
#define GENMASK(h, l) (((~0UL) << (l)) & (~0UL >> (63 - (h))))

/* ---- check bookkeeping: one counter pair per named check ---------------------------------- */
enum { C_PMCR_N, C_UNIMPL_RESET, C_IMPL_BITMAP, C_IMPL_TYPER, C_IMPL_CNTR_ZERO, C_IMPL_CNTR_RW,
       C_UNIMPL_UNDEF, C_UNIMPL_BITMAP, C_COUNT };
static const char *const check_names[C_COUNT] = {
    "pmcr_n", "unimpl_bits_clear", "impl_bitmap", "impl_typer", "impl_cntr_reset", "impl_cntr_rw",
    "unimpl_undef", "unimpl_bitmap",
};
static u64 nchecks[C_COUNT], nfail[C_COUNT];

static void check(int c, int ok, int pmc, int acc, const char *what, u64 got, u64 want)
{
    nchecks[c]++;
    if (ok)
        return;
    nfail[c]++;
    failures++;
    if (nfail[c] <= 4)      /* enough to diagnose, not a flood */
        printf("# FAIL %s: pmc=%d acc=%d %s: got 0x%lx, want 0x%lx\n", check_names[c], pmc, acc, what, got, want);
}

/* ---- direct accessors: PMEVCNTR<n>_EL0 / PMEVTYPER<n>_EL0, n = 0..30 -------------------- */
#define PMEVN_CASE(n, OP) case n: OP(n); break;
#define PMEVN_SWITCH(x, OP)                                                                    \
    switch (x) {                                                                               \
    PMEVN_CASE(0, OP) PMEVN_CASE(1, OP) PMEVN_CASE(2, OP) PMEVN_CASE(3, OP) PMEVN_CASE(4, OP)  \
    PMEVN_CASE(5, OP) PMEVN_CASE(6, OP) PMEVN_CASE(7, OP) PMEVN_CASE(8, OP) PMEVN_CASE(9, OP)  \
    PMEVN_CASE(10, OP) PMEVN_CASE(11, OP) PMEVN_CASE(12, OP) PMEVN_CASE(13, OP)                \
    PMEVN_CASE(14, OP) PMEVN_CASE(15, OP) PMEVN_CASE(16, OP) PMEVN_CASE(17, OP)                \
    PMEVN_CASE(18, OP) PMEVN_CASE(19, OP) PMEVN_CASE(20, OP) PMEVN_CASE(21, OP)                \
    PMEVN_CASE(22, OP) PMEVN_CASE(23, OP) PMEVN_CASE(24, OP) PMEVN_CASE(25, OP)                \
    PMEVN_CASE(26, OP) PMEVN_CASE(27, OP) PMEVN_CASE(28, OP) PMEVN_CASE(29, OP)                \
    PMEVN_CASE(30, OP)                                                                         \
    default: printf("# bad counter index %d\n", (int)(x)); failures++;                         \
    }

/* Each access is one MSR/MRS; `last_pc` is set to its address (adr right before it) so the
 * UNDEF handler can check that the trapping instruction is the expected one. */
static volatile u64 last_pc;
#define READ_CNTR(n) __asm__ volatile("adr %1, 1f\n\tstr %1, [%2]\n1:\tmrs %0, pmevcntr" #n "_el0" \
                                      : "=r"(v), "=&r"(t) : "r"(&last_pc) : "memory")
#define WRITE_CNTR(n) __asm__ volatile("adr %0, 1f\n\tstr %0, [%1]\n1:\tmsr pmevcntr" #n "_el0, %2" \
                                       : "=&r"(t) : "r"(&last_pc), "r"(val) : "memory")
#define READ_TYPER(n) __asm__ volatile("adr %1, 1f\n\tstr %1, [%2]\n1:\tmrs %0, pmevtyper" #n "_el0" \
                                       : "=r"(v), "=&r"(t) : "r"(&last_pc) : "memory")
#define WRITE_TYPER(n) __asm__ volatile("adr %0, 1f\n\tstr %0, [%1]\n1:\tmsr pmevtyper" #n "_el0, %2" \
                                        : "=&r"(t) : "r"(&last_pc), "r"(val) : "memory")

static NOINLINE u64 read_pmevcntrn(int n) { u64 v = 0, t; PMEVN_SWITCH(n, READ_CNTR); (void)t; isb(); return v; }
static NOINLINE void write_pmevcntrn(int n, u64 val) { u64 t; PMEVN_SWITCH(n, WRITE_CNTR); (void)t; isb(); }
static NOINLINE u64 read_pmevtypern(int n) { u64 v = 0, t; PMEVN_SWITCH(n, READ_TYPER); (void)t; isb(); return v; }
static NOINLINE void write_pmevtypern(int n, u64 val) { u64 t; PMEVN_SWITCH(n, WRITE_TYPER); (void)t; isb(); }

/* ---- indirect accessors: PMSELR_EL0 then PMXEVCNTR_EL0 / PMXEVTYPER_EL0 ------------------ */
static NOINLINE u64 read_sel_evcntr(int sel)
{
    u64 v, t;
    write_sysreg(pmselr_el0, sel);
    isb();
    __asm__ volatile("adr %1, 1f\n\tstr %1, [%2]\n1:\tmrs %0, pmxevcntr_el0" : "=r"(v), "=&r"(t) : "r"(&last_pc) : "memory");
    return v;
}
static NOINLINE void write_sel_evcntr(int sel, u64 val)
{
    u64 t;
    write_sysreg(pmselr_el0, sel);
    isb();
    __asm__ volatile("adr %0, 1f\n\tstr %0, [%1]\n1:\tmsr pmxevcntr_el0, %2" : "=&r"(t) : "r"(&last_pc), "r"(val) : "memory");
    isb();
}
static NOINLINE u64 read_sel_evtyper(int sel)
{
    u64 v, t;
    write_sysreg(pmselr_el0, sel);
    isb();
    __asm__ volatile("adr %1, 1f\n\tstr %1, [%2]\n1:\tmrs %0, pmxevtyper_el0" : "=r"(v), "=&r"(t) : "r"(&last_pc) : "memory");
    return v;
}
static NOINLINE void write_sel_evtyper(int sel, u64 val)
{
    u64 t;
    write_sysreg(pmselr_el0, sel);
    isb();
    __asm__ volatile("adr %0, 1f\n\tstr %0, [%1]\n1:\tmsr pmxevtyper_el0, %2" : "=&r"(t) : "r"(&last_pc), "r"(val) : "memory");
    isb();
}

struct pmc_accessor {
    u64 (*read_cntr)(int idx);
    void (*write_cntr)(int idx, u64 val);
    u64 (*read_typer)(int idx);
    void (*write_typer)(int idx, u64 val);
};

static const struct pmc_accessor pmc_accessors[4] = {
    /* all direct accesses */
    { read_pmevcntrn, write_pmevcntrn, read_pmevtypern, write_pmevtypern },
    /* all indirect accesses */
    { read_sel_evcntr, write_sel_evcntr, read_sel_evtyper, write_sel_evtyper },
    /* read direct, write indirect */
    { read_pmevcntrn, write_sel_evcntr, read_pmevtypern, write_sel_evtyper },
    /* read indirect, write direct */
    { read_sel_evcntr, write_pmevcntrn, read_sel_evtyper, write_pmevtypern },
};

/* ---- bitmap registers ------------------------------------------------------------------ */
static u64 pmcr_n;

/* the six views, in the selftest's order */
static void read_views(u64 v[6])
{
    v[0] = read_sysreg(pmcntenset_el0);
    v[1] = read_sysreg(pmcntenclr_el0);
    v[2] = read_sysreg(pmintenset_el1);
    v[3] = read_sysreg(pmintenclr_el1);
    v[4] = read_sysreg(pmovsset_el0);
    v[5] = read_sysreg(pmovsclr_el0);
}

/* bits of `mask` set (set_expected) or clear in all six views; with `exact`, each view must
 * equal (set_expected ? mask : 0) as a whole */
static void check_bitmap_pmu_regs(int c, u64 mask, int set_expected, int exact, int pmc, int acc)
{
    static const char *const view[6] = { "PMCNTENSET", "PMCNTENCLR", "PMINTENSET", "PMINTENCLR",
                                         "PMOVSSET", "PMOVSCLR" };
    u64 v[6];
    read_views(v);
    for (int i = 0; i < 6; i++) {
        u64 want = set_expected ? mask : 0;
        int ok = exact ? v[i] == want : ((v[i] & mask) == want);
        check(c, ok, pmc, acc, view[i], v[i], want);
    }
}

static void test_bitmap_pmu_regs(int c, int pmc_idx, int set_op, int acc)
{
    u64 test_bit = BIT(pmc_idx);
    int set_expected = 0;

    if (set_op) {
        write_sysreg(pmcntenset_el0, test_bit);
        write_sysreg(pmintenset_el1, test_bit);
        write_sysreg(pmovsset_el0, test_bit);
        /* the bit is set only if the counter is implemented */
        set_expected = (u64)pmc_idx < ((read_sysreg(pmcr_el0) >> 11) & 0x1f);
    } else {
        write_sysreg(pmcntenclr_el0, test_bit);
        write_sysreg(pmintenclr_el1, test_bit);
        write_sysreg(pmovsclr_el0, test_bit);
    }
    isb();
    check_bitmap_pmu_regs(c, test_bit, set_expected, 1, pmc_idx, acc);
}

static void pmu_disable_reset(void)
{
    u64 pmcr = read_sysreg(pmcr_el0);
    pmcr &= ~(u64)PMCR_E;
    write_sysreg(pmcr_el0, pmcr | PMCR_P);     /* reset all counters, disabling them */
    isb();
}

/* ---- implemented counters -------------------------------------------------------------- */
static void test_access_pmc_regs(const struct pmc_accessor *acc, int pmc_idx, int ai)
{
    u64 write_data, read_data;

    pmu_disable_reset();
    test_bitmap_pmu_regs(C_IMPL_BITMAP, pmc_idx, 0, ai);    /* make sure the bit is clear */
    test_bitmap_pmu_regs(C_IMPL_BITMAP, pmc_idx, 1, ai);    /* setting it works */
    test_bitmap_pmu_regs(C_IMPL_BITMAP, pmc_idx, 0, ai);    /* clearing it works */

    /* PMEVTYPER<n>.evtCount reads back what was written for events 0..0x3F even when the
     * event is not supported (Arm ARM); INST_RETIRED is supported anyway */
    write_data = EXCLUDE_EL1 | EV_INST_RETIRED;
    acc->write_typer(pmc_idx, write_data);
    read_data = acc->read_typer(pmc_idx);
    check(C_IMPL_TYPER, read_data == write_data, pmc_idx, ai, "PMEVTYPER", read_data, write_data);

    read_data = acc->read_cntr(pmc_idx);
    /* disabled and reset: 0 */
    check(C_IMPL_CNTR_ZERO, read_data == 0, pmc_idx, ai, "PMEVCNTR after PMCR.P", read_data, 0);

    write_data = read_data + pmc_idx + 0x12345;
    acc->write_cntr(pmc_idx, write_data);
    read_data = acc->read_cntr(pmc_idx);
    check(C_IMPL_CNTR_RW, read_data == write_data, pmc_idx, ai, "PMEVCNTR", read_data, write_data);
}

/* ---- unimplemented counters: UNDEF ------------------------------------------------------ */
#define INVALID_EC (~0UL)
static volatile u64 expected_ec = INVALID_EC;
static volatile u64 undef_count, bad_exceptions, bad_elr;

static void guest_sync_handler(struct exc_frame *f, int vec)
{
    u64 ec = ESR_EC(f->esr);

    if (vec != 4 || expected_ec == INVALID_EC || ec != expected_ec) {
        bad_exceptions++;
        printf("# unexpected exception: vector=%d esr=0x%lx elr=0x%lx (expected EC 0x%lx)\n", vec, f->esr,
               f->elr, expected_ec);
        if (bad_exceptions > 8)
            exit(99);
    }
    if (f->elr != last_pc)
        bad_elr++;
    undef_count++;
    f->elr += 4;                  /* skip the trapping instruction */
    expected_ec = INVALID_EC;     /* an exception occurred */
}

#define TEST_EXCEPTION(ec, op, what)                                                          \
    do {                                                                                      \
        expected_ec = (ec);                                                                   \
        dsb();                                                                                \
        u64 before = undef_count, elr_bad = bad_elr;                                          \
        op;                                                                                   \
        int ok = expected_ec == INVALID_EC && undef_count == before + 1 && bad_elr == elr_bad; \
        check(C_UNIMPL_UNDEF, ok, pmc_idx, ai, what, undef_count - before, 1);                \
        expected_ec = INVALID_EC;                                                             \
    } while (0)

static void test_access_invalid_pmc_regs(const struct pmc_accessor *acc, int pmc_idx, int ai)
{
    /* reading/writing the event count/type registers is UNDEFINED (EC 0, "unknown reason") */
    TEST_EXCEPTION(0x00, (void)acc->read_cntr(pmc_idx), "counter read");
    TEST_EXCEPTION(0x00, acc->write_cntr(pmc_idx, 0), "counter write");
    TEST_EXCEPTION(0x00, (void)acc->read_typer(pmc_idx), "type read");
    TEST_EXCEPTION(0x00, acc->write_typer(pmc_idx, 0), "type write");
    /* the counter's bit in the bitmap registers is RAZ/WI */
    test_bitmap_pmu_regs(C_UNIMPL_BITMAP, pmc_idx, 1, ai);
    test_bitmap_pmu_regs(C_UNIMPL_BITMAP, pmc_idx, 0, ai);
}

/* ---- command line (semihosting SYS_GET_CMDLINE) ----------------------------------------- */
static u64 semihost_call(u64 op, u64 arg)
{
    register u64 x0 __asm__("x0") = op;
    register u64 x1 __asm__("x1") = arg;
    __asm__ volatile("hlt #0xf000" : "+r"(x0) : "r"(x1) : "memory");
    return x0;
}

/* the expected N from the command line, or -1 */
static long cmdline_n(void)
{
    static char buf[64];
    u64 block[2] = { (u64)buf, sizeof(buf) };
    if (semihost_call(0x15, (u64)block) != 0)
        return -1;
    const char *p = buf;
    while (*p == ' ') p++;
    if (*p < '0' || *p > '9')
        return -1;
    long n = 0;
    while (*p >= '0' && *p <= '9') n = n * 10 + (*p++ - '0');
    return n;
}

int main(void)
{
    u64 pmcr, unimp_mask;
    long expected_n = cmdline_n();

    set_sync_handler(guest_sync_handler);

    pmcr = read_sysreg(pmcr_el0);
    pmcr_n = (pmcr >> 11) & 0x1f;
    kv_u64("pmcr_n", pmcr_n);
    kv_u64("pmuver", pmuver());
    if (expected_n >= 0) {
        kv_u64("expected_n", expected_n);
        check(C_PMCR_N, (u64)expected_n == pmcr_n && expected_n <= MAX_GENERAL_COUNTERS, -1, -1, "PMCR.N",
              pmcr_n, expected_n);
    }

    /* bits [30:N] (unimplemented counters) of the six views reset to 0; the implemented ones
     * are UNKNOWN in KVM (0 on vpmu): only [30:N] is checked, as in the selftest */
    unimp_mask = pmcr_n < MAX_GENERAL_COUNTERS ? GENMASK(MAX_GENERAL_COUNTERS - 1, pmcr_n) : 0;
    kv_hex("unimp_mask", unimp_mask);
    check_bitmap_pmu_regs(C_UNIMPL_RESET, unimp_mask, 0, 0, -1, -1);

    /* implemented counters, every accessor combination */
    for (int i = 0; i < 4; i++)
        for (int pmc = 0; pmc < (int)pmcr_n; pmc++)
            test_access_pmc_regs(&pmc_accessors[i], pmc, i);

    /* unimplemented counters, every accessor combination */
    for (int i = 0; i < 4; i++)
        for (int pmc = pmcr_n; pmc < MAX_GENERAL_COUNTERS; pmc++)
            test_access_invalid_pmc_regs(&pmc_accessors[i], pmc, i);

    kv_u64("undefs", undef_count);
    kv_u64("undefs_expected", 4 * 4 * (MAX_GENERAL_COUNTERS - pmcr_n));
    kv_u64("bad_exceptions", bad_exceptions);
    kv_u64("bad_elr", bad_elr);
    if (bad_exceptions || bad_elr || undef_count != 4 * 4 * (MAX_GENERAL_COUNTERS - pmcr_n))
        failures++;
    for (int c = 0; c < C_COUNT; c++) {
        if (c == C_PMCR_N && expected_n < 0)
            continue;
        printf("%s=%s\n", check_names[c], nfail[c] ? "FAIL" : "PASS");
        printf("%s.checks=%lu\n", check_names[c], nchecks[c]);
    }
    report();
    return (int)(failures > 255 ? 255 : failures);
}
