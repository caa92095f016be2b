/* kvm-unit-tests arm/pmu.c, ported to the vpmu guest runtime (our own code, same structure,
 * same constants, same subtest names as arm/unittests.cfg).
 *
 * Subtest selection: the kernel command line (vpmu run --append "NAME [ARG]"), read through
 * semihosting SYS_GET_CMDLINE (on QEMU after the kernel file name, which is skipped), names one
 * subtest like kvm-unit-tests' argv[1]
 * ("cycle-counter 0", "pmu-sw-incr", ...).  An empty command line runs every subtest in
 * unittests.cfg order, with the CPI check strict at cpi=1 (our default cycle model is exactly
 * one cycle per instruction).
 *
 * Output: for every report() of the original, a line "<subtest>[.<variant>].<check>=PASS|FAIL";
 * per subtest variant "<subtest>.<variant>=PASS|FAIL|SKIP" (variant "32" = "32-bit overflows",
 * "64" = "64-bit overflows"); measured values as "<subtest>.<variant>.<name>=<value>" lines;
 * report_info() text as "# ..." lines.  Exit status = number of failed checks.
 *
 * Where our model is exact the checks are stricter than the originals (exact counts, an
 * "x_exact" check next to the original one); the original check is always kept as it was.
 */
#include "vpmu.h"

/* ---- constants (kvm-unit-tests arm/pmu.c) --------------------------------------------- */
#define SW_INCR 0x0
#define INST_RETIRED 0x8
#define CPU_CYCLES 0x11
#define MEM_ACCESS 0x13
#define INST_PREC 0x1B
#define STALL_FRONTEND 0x23
#define STALL_BACKEND 0x24
#define CHAIN 0x1E

#define COMMON_EVENTS_LOW 0x0
#define COMMON_EVENTS_HIGH 0x3F
#define EXT_COMMON_EVENTS_LOW 0x4000
#define EXT_COMMON_EVENTS_HIGH 0x403F

#define ALL_SET_32 0x00000000FFFFFFFFUL
#define ALL_SET_64 0xFFFFFFFFFFFFFFFFUL
#define ALL_SET(ov64) ((ov64) ? ALL_SET_64 : ALL_SET_32)
#define ALL_CLEAR 0x0000000000000000UL
#define PRE_OVERFLOW_32 0x00000000FFFFFFF0UL
#define PRE_OVERFLOW_64 0xFFFFFFFFFFFFFFF0UL
#define COUNT 250
#define MARGIN 100
#define COUNT_INT 1000
/* PRE_OVERFLOW2: a first COUNT-load loop must not overflow at 32 bits, a second one must */
#define PRE_OVERFLOW2_32 (ALL_SET_32 - COUNT - MARGIN)
#define PRE_OVERFLOW2_64 (ALL_SET_64 - COUNT - MARGIN)
#define PRE_OVERFLOW2(ov64) ((ov64) ? PRE_OVERFLOW2_64 : PRE_OVERFLOW2_32)
#define PRE_OVERFLOW(ov64) ((ov64) ? PRE_OVERFLOW_64 : PRE_OVERFLOW_32)

#define PMU_PPI 23
#define PMU_CYCLE_IDX 31
#define NR_SAMPLES 10

#define ID_DFR0_PMU_NOTIMPL 0x0
#define ID_DFR0_PMU_V3 0x1
#define ID_DFR0_PMU_V3_8_1 0x4
#define ID_DFR0_PMU_V3_8_4 0x5
#define ID_DFR0_PMU_V3_8_5 0x6
#define ID_DFR0_PMU_IMPDEF 0xF

#define PMU_PMCR_N_SHIFT 11
#define PMU_PMCR_N_MASK 0x1f
#define PMEVTYPER_EXCLUDE_EL1 (1UL << 31)
#define PMEVTYPER_EXCLUDE_EL0 (1UL << 30)
#define BIT(n) (1UL << (n))

struct pmu {
    u32 version;
    u32 nb_implemented_counters;
    u32 pmcr_ro;
};
static struct pmu pmu;

/* ---- reporting ------------------------------------------------------------------------ */
static const char *cur = "pmu";     /* "<subtest>" or "<subtest>.<variant>" */
static char cur_buf[64];
static u64 cur_fail, cur_checks, cur_skipped;

static void begin(const char *name, const char *variant)
{
    u64 i = 0;
    for (const char *s = name; *s && i < sizeof(cur_buf) - 4; s++)
        cur_buf[i++] = *s;
    if (variant) {
        cur_buf[i++] = '.';
        for (const char *s = variant; *s && i < sizeof(cur_buf) - 1; s++)
            cur_buf[i++] = *s;
    }
    cur_buf[i] = 0;
    cur = cur_buf;
    cur_fail = cur_checks = cur_skipped = 0;
}

static void end(void)
{
    printf("%s=%s\n", cur, cur_skipped ? "SKIP" : cur_fail ? "FAIL" : "PASS");
}

static void report_skip(const char *why)
{
    cur_skipped = 1;
    printf("# SKIP: %s: %s\n", cur, why);
}

/* one report() of the original (or one of our stricter companions) */
static void check(const char *name, int ok, const char *msg)
{
    cur_checks++;
    printf("%s.%s=%s\n", cur, name, ok ? "PASS" : "FAIL");
    if (!ok) {
        failures++;
        cur_fail++;
        printf("# FAIL: %s: %s\n", cur, msg);
    }
}

static void val(const char *name, u64 v) { printf("%s.%s=0x%lx\n", cur, name, v); }
static void dec(const char *name, u64 v) { printf("%s.%s=%lu\n", cur, name, v); }

/* ---- register helpers (counters #0 and #1 as the original's read/write_regn_el0) ---------- */
static inline u64 read_cntr(int n) { return n ? read_sysreg(pmevcntr1_el0) : read_sysreg(pmevcntr0_el0); }
static inline void write_cntr(int n, u64 v)
{
    if (n) write_sysreg(pmevcntr1_el0, v);
    else write_sysreg(pmevcntr0_el0, v);
}
static inline u64 read_typer(int n) { return n ? read_sysreg(pmevtyper1_el0) : read_sysreg(pmevtyper0_el0); }
static inline void write_typer(int n, u64 v)
{
    if (n) write_sysreg(pmevtyper1_el0, v);
    else write_sysreg(pmevtyper0_el0, v);
}
static inline u64 get_pmcr(void) { return read_sysreg(pmcr_el0); }
static inline void set_pmcr(u64 v) { write_sysreg(pmcr_el0, v); }
static inline u64 get_pmccntr(void) { return read_sysreg(pmccntr_el0); }
static inline void set_pmccntr(u64 v) { write_sysreg(pmccntr_el0, v); }
static inline void set_pmcntenset(u64 v) { write_sysreg(pmcntenset_el0, v); }
static inline void set_pmccfiltr(u64 v) { write_sysreg(pmccfiltr_el0, v); }
static inline u64 get_ovs(void) { return read_sysreg(pmovsclr_el0); }

/* ---- measured regions ----------------------------------------------------------------- */
/* msr pmcr (starts counting: counted) ; isb ; loop x (subs ; b.gt) ; msr pmcr, xzr (not
 * counted) ; isb  =>  exactly 2 + 2*loop instructions (and cycles), no data access. */
static NOINLINE void precise_instrs_loop(int loop, u32 pmcr)
{
    u64 pmcr64 = pmcr;
    __asm__ volatile("msr pmcr_el0, %[pmcr]\n\t"
                     "isb\n"
                     "1:\tsubs %w[loop], %w[loop], #1\n\t"
                     "b.gt 1b\n\t"
                     "msr pmcr_el0, xzr\n\t"
                     "isb\n"
                     : [loop] "+r"(loop)
                     : [pmcr] "r"(pmcr64)
                     : "cc", "memory");
}

/* dsb ; msr pmcr (counted) ; isb ; dsb ; mov x10 ; loop x (sub ; ldr ; cmp ; b.gt) ; dsb ;
 * msr pmcr, xzr (not counted) ; isb  =>  5 + 4*loop instructions counted, exactly `loop`
 * data accesses (MEM_ACCESS).  kut_mem_ldr labels the load: an overflow interrupt taken
 * after the k-th load returns to kut_mem_ldr + 4 with x10 == loop - k. */
extern char kut_mem_ldr[];
static NOINLINE void mem_access_loop(void *addr, long loop, u32 pmcr)
{
    u64 pmcr64 = pmcr;
    __asm__ volatile("dsb ish\n\t"
                     "msr pmcr_el0, %[pmcr]\n\t"
                     "isb\n\t"
                     "dsb ish\n\t"
                     "mov x10, %[loop]\n"
                     "1:\tsub x10, x10, #1\n"
                     ".global kut_mem_ldr\n"
                     "kut_mem_ldr:\n\t"
                     "ldr x9, [%[addr]]\n\t"
                     "cmp x10, #0x0\n\t"
                     "b.gt 1b\n\t"
                     "dsb ish\n\t"
                     "msr pmcr_el0, xzr\n\t"
                     "isb\n"
                     :
                     : [addr] "r"(addr), [pmcr] "r"(pmcr64), [loop] "r"(loop)
                     : "x9", "x10", "cc", "memory");
}

/* The original's `for (i = 0; i < 100; i++) write_sysreg(mask, pmswinc_el0);` unrolled so
 * that an interrupt's ELR tells how many writes retired: 100 x msr pmswinc_el0.  An
 * interrupt taken after the k-th write returns to kut_swinc100 + 4*k. */
extern char kut_swinc100[];
static NOINLINE void swinc_100(u64 mask)
{
    __asm__ volatile(".global kut_swinc100\n"
                     "kut_swinc100:\n"
                     ".rept 100\n\t"
                     "msr pmswinc_el0, %0\n"
                     ".endr\n\t"
                     "isb\n"
                     :: "r"(mask) : "memory");
}

static u8 mem_page[4096] ALIGNED(4096);

/* ---- PMU helpers ---------------------------------------------------------------------- */
static int is_event_supported(u32 n, int warn)
{
    u64 pmceid0 = read_sysreg(pmceid0_el0);
    u64 pmceid1 = read_sysreg(pmceid1_el0);
    u64 reg;

    if (n <= COMMON_EVENTS_HIGH)
        reg = (pmceid0 & 0xFFFFFFFF) | ((pmceid1 & 0xFFFFFFFF) << 32);
    else
        reg = (pmceid0 >> 32) | ((pmceid1 >> 32) << 32);
    int supported = (reg >> (n & 0x3F)) & 1;
    if (!supported && warn)
        printf("# event 0x%x is not supported\n", n);
    return supported;
}

static struct {
    u64 bitmap;
    u32 interrupts[32];
    int unexpected;
    /* ours: where each PMU interrupt was taken */
    u64 n;
    u64 elr[8], x10[8], ovs[8];
} volatile pmu_stats;

static void pmu_reset_stats(void)
{
    for (int i = 0; i < 32; i++)
        pmu_stats.interrupts[i] = 0;
    pmu_stats.bitmap = 0;
    pmu_stats.unexpected = 0;
    pmu_stats.n = 0;
}

static void kut_pmu_reset(void)
{
    /* reset all counters, counting disabled at PMCR level */
    set_pmcr(pmu.pmcr_ro | PMCR_LC | PMCR_C | PMCR_P);
    write_sysreg(pmcntenclr_el0, ALL_SET_32);
    write_sysreg(pmovsclr_el0, ALL_SET_32);
    write_sysreg(pmintenclr_el1, ALL_SET_32);
    pmu_reset_stats();
    isb();
}

static u64 pmevcntr_mask(void)
{
    /* 64-bit event counters from PMUv3p5 keep counting into [63:32] even with 32-bit
     * overflow (AArch64.IncrementEventCounter()). */
    return pmu.version >= ID_DFR0_PMU_V3_8_5 ? ~0UL : (u32)~0u;
}

static int satisfy_prerequisites(const u32 *events, u32 nb_events)
{
    if (pmu.nb_implemented_counters < nb_events) {
        report_skip("number of counters is too small");
        return 0;
    }
    for (u32 i = 0; i < nb_events; i++) {
        if (!is_event_supported(events[i], 0)) {
            printf("# event 0x%x is not supported\n", events[i]);
            report_skip("event not supported");
            return 0;
        }
    }
    return 1;
}

static int check_overflow_prerequisites(int ov64)
{
    if (ov64 && pmu.version < ID_DFR0_PMU_V3_8_5) {
        report_skip("64 overflows need FEAT_PMUv3p5");
        return 0;
    }
    return 1;
}

static void enable_chain_counter(int even)
{
    write_sysreg(pmcntenset_el0, BIT(even + 1));   /* enable the high counter first */
    isb();
    write_sysreg(pmcntenset_el0, BIT(even));       /* then the low counter */
    isb();
}

static void disable_chain_counter(int even)
{
    write_sysreg(pmcntenclr_el0, BIT(even));       /* disable the low counter first */
    isb();
    write_sysreg(pmcntenclr_el0, BIT(even + 1));   /* then the high counter */
    isb();
}

/* ---- cycle-counter -------------------------------------------------------------------- */
static int check_cycles_increase(int cpi)
{
    int success = 1;
    u64 delta_ok = 1, last_delta = 0;

    kut_pmu_reset();
    set_pmcntenset(1UL << PMU_CYCLE_IDX);
    set_pmccfiltr(0);               /* count cycles in EL0 and EL1, not EL2 */
    set_pmcr(get_pmcr() | PMCR_LC | PMCR_C | PMCR_E);
    isb();

    for (int i = 0; i < NR_SAMPLES; i++) {
        u64 a, b;
        /* two back-to-back reads: exactly one instruction (cpi cycles) apart */
        __asm__ volatile("mrs %0, pmccntr_el0\n\tmrs %1, pmccntr_el0" : "=&r"(a), "=r"(b));
        last_delta = b - a;
        if (b - a != (u64)cpi)
            delta_ok = 0;
        if (a >= b) {
            printf("# Read %lu then %lu.\n", a, b);
            success = 0;
            break;
        }
    }
    set_pmcr(get_pmcr() & ~(u64)PMCR_E);
    isb();
    dec("delta", last_delta);
    if (cpi > 0)
        check("monotonic_exact", delta_ok, "back-to-back PMCCNTR reads differ by exactly cpi cycles");
    return success;
}

static void measure_instrs(int num, u32 pmcr)
{
    int loop = (num - 2) / 2;
    precise_instrs_loop(loop, pmcr);
}

static int check_cpi(int cpi)
{
    u32 pmcr = get_pmcr() | PMCR_LC | PMCR_C | PMCR_E;
    int ok = 1;

    kut_pmu_reset();
    set_pmcntenset(1UL << PMU_CYCLE_IDX);
    set_pmccfiltr(0);
    if (cpi > 0)
        printf("# Checking for CPI=%d.\n", cpi);
    for (u32 i = 4; i < 300; i += 32) {
        u64 first = 0;
        for (int j = 0; j < NR_SAMPLES; j++) {
            u64 cycles;
            set_pmccntr(0);
            measure_instrs(i, pmcr);
            cycles = get_pmccntr();
            if (j == 0) {
                first = cycles;
                printf("%s.cycles_%u=%lu\n", cur, i, cycles);
            }
            if (!cycles) {
                printf("# cycles not incrementing!\n");
                return 0;
            } else if (cpi > 0 && cycles != (u64)i * cpi) {
                printf("# unexpected cycle count received: %lu for %u instructions\n", cycles, i);
                return 0;
            } else if ((cycles >> 32) != 0) {
                printf("# cycle count bigger than 32bit!\n");
                return 0;
            }
            if (cycles != first)
                ok = 0;
        }
    }
    check("cpi_samples_equal", ok, "all samples of one instruction count agree");
    return 1;
}

static void test_cycle_counter(int cpi)
{
    begin("cycle-counter", 0);
    dec("cpi_param", cpi);
    check("monotonic", check_cycles_increase(cpi), "Monotonically increasing cycle count");
    check("cpi", check_cpi(cpi), "Cycle/instruction ratio");
    end();
}

/* ---- pmu-event-introspection ---------------------------------------------------------- */
static void test_event_introspection(void)
{
    int required_events;

    begin("pmu-event-introspection", 0);
    if (!pmu.nb_implemented_counters) {
        report_skip("No event counter, skip ...");
        end();
        return;
    }
    val("pmceid0", read_sysreg(pmceid0_el0));
    val("pmceid1", read_sysreg(pmceid1_el0));
    /* PMUv3 requires an implementation to include some common events */
    required_events = is_event_supported(SW_INCR, 1) && is_event_supported(CPU_CYCLES, 1) &&
                      (is_event_supported(INST_RETIRED, 1) || is_event_supported(INST_PREC, 1));
    if (pmu.version >= ID_DFR0_PMU_V3_8_1)
        required_events = required_events && is_event_supported(STALL_FRONTEND, 1) &&
                          is_event_supported(STALL_BACKEND, 1);
    check("required_events", required_events, "Check required events are implemented");
    end();
}

/* ---- pmu-event-counter-config --------------------------------------------------------- */
static void test_event_counter_config(void)
{
    int i;

    begin("pmu-event-counter-config", 0);
    if (!pmu.nb_implemented_counters) {
        report_skip("No event counter, skip ...");
        end();
        return;
    }
    kut_pmu_reset();

    /* Setting through PMSELR/PMXEVTYPER, reading PMEVTYPERn.  The original selects counter
     * 1 (its comment says 0); with a single counter we use 0 instead of trapping. */
    int sel = pmu.nb_implemented_counters >= 2 ? 1 : 0;
    dec("sel", sel);
    write_sysreg(pmselr_el0, sel);
    write_sysreg(pmxevtyper_el0, 0xEA);         /* an unsupported event */
    write_sysreg(pmxevcntr_el0, 0xdeadbeef);
    u64 ty = read_typer(sel), cn = read_cntr(sel);
    val("typer", ty);
    val("cntr", cn);
    check("pmxevtyper", (ty & 0xFFF) == 0xEA, "PMESELR/PMXEVTYPER/PMEVTYPERn");
    check("pmxevtyper_exact", ty == 0xEA, "PMEVTYPERn reads back exactly 0xEA");
    check("pmxevcntr", cn == 0xdeadbeef, "PMESELR/PMXEVCNTR/PMEVCNTRn");

    /* try to configure an unsupported event within the range [0x0, 0x3F] */
    for (i = 0; i <= 0x3F; i++)
        if (!is_event_supported(i, 0))
            break;
    if (i > 0x3F) {
        report_skip("pmevtyper: all events within [0x0, 0x3F] are supported");
        end();
        return;
    }
    dec("unsupported_event", i);
    /* select counter 0 and write the event number into PMXEVCNTR (sic, as the original) */
    write_sysreg(pmselr_el0, 0);
    write_sysreg(pmxevcntr_el0, i);
    (void)read_sysreg(pmxevcntr_el0);
    check("unsupported_event_cntr", read_sysreg(pmxevcntr_el0) == (u64)i,
          "read of a counter programmed with unsupported event");
    end();
}

/* ---- pmu-basic-event-count ------------------------------------------------------------ */
static void test_basic_event_count(int ov64)
{
    u32 implemented_counter_mask, non_implemented_counter_mask, counter_mask;
    u64 pre_overflow = PRE_OVERFLOW(ov64);
    u64 pmcr_lp = ov64 ? PMCR_LP : 0;
    static const u32 events[] = { CPU_CYCLES, INST_RETIRED };

    if (!satisfy_prerequisites(events, 2) || !check_overflow_prerequisites(ov64))
        return;

    implemented_counter_mask = BIT(pmu.nb_implemented_counters) - 1;
    non_implemented_counter_mask = ~(BIT(31) | implemented_counter_mask);
    counter_mask = implemented_counter_mask | non_implemented_counter_mask;

    write_typer(0, CPU_CYCLES | PMEVTYPER_EXCLUDE_EL0);
    write_typer(1, INST_RETIRED | PMEVTYPER_EXCLUDE_EL0);

    /* disable all counters */
    write_sysreg(pmcntenclr_el0, ALL_SET_32);
    check("pmcntenclr", !read_sysreg(pmcntenclr_el0) && !read_sysreg(pmcntenset_el0),
          "pmcntenclr: disable all counters");

    /* clear cycle and all event counters, allow enabling through PMCNTENSET; LC is RES1 */
    set_pmcr(pmu.pmcr_ro | PMCR_LC | PMCR_C | PMCR_P | pmcr_lp);
    isb();
    val("pmcr", get_pmcr());
    check("pmcr_reset", get_pmcr() == (pmu.pmcr_ro | PMCR_LC | pmcr_lp), "pmcr: reset counters");

    /* preset counter #0 to the pre-overflow value */
    write_cntr(0, pre_overflow);
    check("cntr0_preset", read_cntr(0) == pre_overflow, "counter #0 preset to pre-overflow value");
    check("cntr1_zero", !read_cntr(1), "counter #1 is 0");

    /* enable all implemented counters and try the unimplemented ones (PMCR.E still 0) */
    write_sysreg(pmcntenset_el0, counter_mask);
    val("pmcntenset_all", read_sysreg(pmcntenset_el0));
    check("pmcntenset_impl",
          read_sysreg(pmcntenset_el0) == read_sysreg(pmcntenclr_el0) &&
              read_sysreg(pmcntenset_el0) == implemented_counter_mask,
          "pmcntenset: enabled implemented_counters");

    /* disable all counters but #0 and #1 */
    write_sysreg(pmcntenclr_el0, ~0x3UL);
    check("pmcntenset_01",
          read_sysreg(pmcntenset_el0) == read_sysreg(pmcntenclr_el0) && read_sysreg(pmcntenset_el0) == 0x3,
          "pmcntenset: just enabled #0 and #1");

    write_sysreg(pmovsclr_el0, ALL_SET_32);
    check("pmovs_zero", !read_sysreg(pmovsclr_el0), "check overflow reg is 0");

    write_sysreg(pmintenclr_el1, ALL_SET_32);
    check("pmintenclr", !read_sysreg(pmintenclr_el1), "pmintenclr_el1=0, all interrupts disabled");

    write_sysreg(pmintenset_el1, implemented_counter_mask | non_implemented_counter_mask);
    val("pmintenset", read_sysreg(pmintenset_el1));
    check("pmintenset_impl", read_sysreg(pmintenset_el1) == implemented_counter_mask,
          "overflow interrupts enabled on all implemented counters");

    /* Set PMCR.E, run 42 instructions (20 iterations), clear PMCR.E (LP is not set here,
     * as in the original: counter #0 overflows at 32 bits in both variants) */
    precise_instrs_loop(20, pmu.pmcr_ro | PMCR_E);
    u64 c0 = read_cntr(0), c1 = read_cntr(1), ovs = get_ovs();
    printf("# counter #0 is 0x%lx (CPU_CYCLES)\n# counter #1 is 0x%lx (INST_RETIRED)\n", c0, c1);
    val("cntr0", c0);
    dec("cntr1", c1);
    val("ovs", ovs);
    check("overflow_0_only", ovs == 0x1, "check overflow happened on #0 only");
    check("counts_exact", c0 == ((pre_overflow + 42) & pmevcntr_mask()) && c1 == 42,
          "42 cycles and 42 instructions counted");
}

/* ---- pmu-mem-access ------------------------------------------------------------------- */
static void test_mem_access(int ov64)
{
    void *addr = mem_page;
    static const u32 events[] = { MEM_ACCESS, MEM_ACCESS };
    u64 pre_overflow = PRE_OVERFLOW(ov64);
    u64 pmcr_lp = ov64 ? PMCR_LP : 0;

    if (!satisfy_prerequisites(events, 2) || !check_overflow_prerequisites(ov64))
        return;

    kut_pmu_reset();
    write_typer(0, MEM_ACCESS | PMEVTYPER_EXCLUDE_EL0);
    write_typer(1, MEM_ACCESS | PMEVTYPER_EXCLUDE_EL0);
    write_sysreg(pmcntenset_el0, 0x3);
    isb();
    mem_access_loop(addr, 20, pmu.pmcr_ro | PMCR_E | pmcr_lp);     /* 20 loads */
    u64 c0 = read_cntr(0), c1 = read_cntr(1);
    dec("cntr0", c0);
    dec("cntr1", c1);
    /* "We may measure more than 20 mem access depending on the core" */
    check("20_accesses", c0 == c1 && c0 >= 20 && !get_ovs(), "Ran 20 mem accesses");
    check("20_accesses_exact", c0 == 20 && c1 == 20, "exactly 20 MEM_ACCESS per counter");

    kut_pmu_reset();
    write_cntr(0, pre_overflow);
    write_cntr(1, pre_overflow);
    write_sysreg(pmcntenset_el0, 0x3);
    isb();
    mem_access_loop(addr, 20, pmu.pmcr_ro | PMCR_E | pmcr_lp);
    u64 ovs = get_ovs();
    c0 = read_cntr(0);
    c1 = read_cntr(1);
    val("ovf_cntr0", c0);
    val("ovf_cntr1", c1);
    val("ovs", ovs);
    check("overflows", ovs == 0x3, "Ran 20 mem accesses with expected overflows on both counters");
    u64 want = (pre_overflow + 20) & pmevcntr_mask();
    check("overflows_exact", c0 == want && c1 == want, "both counters at pre_overflow + 20");
}

/* ---- pmu-mem-access-reliability ------------------------------------------------------- */
static void test_mem_access_reliability(int ov64)
{
    static const u32 events[] = { MEM_ACCESS };
    void *addr = mem_page;
    u64 cntr_val, num_events, max = 0, min = pmevcntr_mask();
    u64 pre_overflow2 = PRE_OVERFLOW2(ov64);
    u64 all_set = ALL_SET(ov64);
    u64 pmcr_lp = ov64 ? PMCR_LP : 0;
    int overflow = 0;

    if (!satisfy_prerequisites(events, 1) || !check_overflow_prerequisites(ov64))
        return;

    kut_pmu_reset();
    write_typer(0, MEM_ACCESS | PMEVTYPER_EXCLUDE_EL0);
    for (int i = 0; i < 100; i++) {
        kut_pmu_reset();
        write_cntr(0, pre_overflow2);
        write_sysreg(pmcntenset_el0, 0x1);
        isb();
        mem_access_loop(addr, COUNT, pmu.pmcr_ro | PMCR_E | pmcr_lp);    /* COUNT loads */
        cntr_val = read_cntr(0);
        if (cntr_val >= pre_overflow2) {
            num_events = cntr_val - pre_overflow2;
        } else {
            /* unexpected counter overflow */
            num_events = cntr_val + all_set - pre_overflow2;
            overflow = 1;
            printf("# iter=%d num_events=%lu min=%lu max=%lu overflow!!!\n", i, num_events, min, max);
        }
        if (num_events > max) max = num_events;
        if (num_events < min) min = num_events;
    }
    printf("# overflow=%d min=%lu max=%lu expected=%d acceptable margin=%d\n", overflow, min, max, COUNT, MARGIN);
    dec("min", min);
    dec("max", max);
    dec("overflow", overflow);
    check("reliable", !overflow, "mem_access count is reliable");
    check("reliable_exact", min == COUNT && max == COUNT, "every loop counts exactly COUNT accesses");
}

/* ---- pmu-sw-incr ---------------------------------------------------------------------- */
static void test_sw_incr(int ov64)
{
    u64 pre_overflow = PRE_OVERFLOW(ov64);
    u64 pmcr_lp = ov64 ? PMCR_LP : 0;
    static const u32 events[] = { SW_INCR, SW_INCR };
    u64 cntr0 = (pre_overflow + 100) & pmevcntr_mask();

    if (!satisfy_prerequisites(events, 2) || !check_overflow_prerequisites(ov64))
        return;

    kut_pmu_reset();
    write_typer(0, SW_INCR | PMEVTYPER_EXCLUDE_EL0);
    write_typer(1, SW_INCR | PMEVTYPER_EXCLUDE_EL0);
    write_sysreg(pmcntenset_el0, 0x3);       /* enable counters #0 and #1 */
    write_cntr(0, pre_overflow);
    isb();
    swinc_100(0x1);                          /* PMCR.E is 0 */
    u64 c0 = read_cntr(0);
    val("disabled_cntr0", c0);
    check("no_incr_without_e", c0 == pre_overflow, "PWSYNC does not increment if PMCR.E is unset");

    kut_pmu_reset();
    write_cntr(0, pre_overflow);
    write_sysreg(pmcntenset_el0, 0x3);
    set_pmcr(pmu.pmcr_ro | PMCR_E | pmcr_lp);
    isb();
    swinc_100(0x3);
    c0 = read_cntr(0);
    u64 c1 = read_cntr(1), ovs = get_ovs();
    val("cntr0", c0);
    dec("cntr1", c1);
    val("ovs", ovs);
    check("cntr0_100", c0 == cntr0, "counter #0 after + 100 SW_INCR");
    check("cntr1_100", c1 == 100, "counter #1 after + 100 SW_INCR");
    check("overflow_0", ovs == 0x1, "overflow on counter #0 after 100 SW_INCR");
}

/* ---- pmu-chained-counters ------------------------------------------------------------- */
static void test_chained_counters(int unused)
{
    static const u32 events[] = { CPU_CYCLES, CHAIN };
    u64 all_set = pmevcntr_mask();
    u64 want0 = (PRE_OVERFLOW_32 + 46) & pmevcntr_mask();      /* 2 + 2*22 cycles */
    (void)unused;

    if (!satisfy_prerequisites(events, 2))
        return;

    kut_pmu_reset();
    write_typer(0, CPU_CYCLES | PMEVTYPER_EXCLUDE_EL0);
    write_typer(1, CHAIN | PMEVTYPER_EXCLUDE_EL0);
    write_cntr(0, PRE_OVERFLOW_32);
    enable_chain_counter(0);
    precise_instrs_loop(22, pmu.pmcr_ro | PMCR_E);             /* 46 instructions */
    u64 c0 = read_cntr(0), c1 = read_cntr(1), ovs = get_ovs();
    val("a.cntr0", c0);
    val("a.cntr1", c1);
    val("a.ovs", ovs);
    check("chain_incr", c1 == 1, "CHAIN counter #1 incremented");
    check("chain_incr_ovs", ovs == 0x1, "overflow recorded for chained incr #1");
    check("chain_incr_exact", c0 == want0, "counter #0 at PRE_OVERFLOW_32 + 46");

    /* test 64b overflow */
    kut_pmu_reset();
    write_cntr(0, PRE_OVERFLOW_32);
    write_cntr(1, 0x1);
    enable_chain_counter(0);
    precise_instrs_loop(22, pmu.pmcr_ro | PMCR_E);
    c0 = read_cntr(0);
    c1 = read_cntr(1);
    ovs = get_ovs();
    printf("# overflow reg = 0x%lx\n", ovs);
    val("b.cntr0", c0);
    val("b.cntr1", c1);
    val("b.ovs", ovs);
    check("chain_set_2", c1 == 2, "CHAIN counter #1 set to 2");
    check("chain_set_2_ovs", ovs == 0x1, "overflow recorded for chained incr #2");
    check("chain_set_2_exact", c0 == want0, "counter #0 at PRE_OVERFLOW_32 + 46");

    write_cntr(0, PRE_OVERFLOW_32);
    write_cntr(1, all_set);
    precise_instrs_loop(22, pmu.pmcr_ro | PMCR_E);
    c0 = read_cntr(0);
    c1 = read_cntr(1);
    ovs = get_ovs();
    printf("# overflow reg = 0x%lx\n", ovs);
    val("c.cntr0", c0);
    val("c.cntr1", c1);
    val("c.ovs", ovs);
    check("chain_wrapped", c1 == 0, "CHAIN counter #1 wrapped");
    check("chain_wrapped_ovs", ovs == 0x3, "overflow on even and odd counters");
    check("chain_wrapped_exact", c0 == want0, "counter #0 at PRE_OVERFLOW_32 + 46");
}

/* ---- pmu-chained-sw-incr -------------------------------------------------------------- */
static void test_chained_sw_incr(int unused)
{
    static const u32 events[] = { SW_INCR, CHAIN };
    u64 cntr0 = (PRE_OVERFLOW_32 + 100) & pmevcntr_mask();
    u64 cntr1 = (ALL_SET_32 + 1) & pmevcntr_mask();
    (void)unused;

    if (!satisfy_prerequisites(events, 2))
        return;

    kut_pmu_reset();
    write_typer(0, SW_INCR | PMEVTYPER_EXCLUDE_EL0);
    write_typer(1, CHAIN | PMEVTYPER_EXCLUDE_EL0);
    enable_chain_counter(0);
    write_cntr(0, PRE_OVERFLOW_32);
    set_pmcr(pmu.pmcr_ro | PMCR_E);
    isb();
    swinc_100(0x1);
    u64 ovs = get_ovs(), c0 = read_cntr(0), c1 = read_cntr(1);
    printf("# overflow=0x%lx, #0=0x%lx #1=0x%lx\n", ovs, c0, c1);
    val("a.ovs", ovs);
    val("a.cntr0", c0);
    val("a.cntr1", c1);
    check("chain_incr", ovs == 0x1 && c1 == 1, "overflow and chain counter incremented after 100 SW_INCR/CHAIN");
    check("chain_incr_exact", c0 == cntr0, "counter #0 at PRE_OVERFLOW_32 + 100");

    /* 64b SW_INCR and overflow on CHAIN counter */
    kut_pmu_reset();
    write_cntr(0, PRE_OVERFLOW_32);
    write_cntr(1, ALL_SET_32);
    enable_chain_counter(0);
    set_pmcr(pmu.pmcr_ro | PMCR_E);
    isb();
    swinc_100(0x1);
    ovs = get_ovs();
    c0 = read_cntr(0);
    c1 = read_cntr(1);
    printf("# overflow=0x%lx, #0=0x%lx #1=0x%lx\n", ovs, c0, c1);
    val("b.ovs", ovs);
    val("b.cntr0", c0);
    val("b.cntr1", c1);
    check("chain_overflow", ovs == 0x3 && c0 == cntr0 && c1 == cntr1,
          "expected overflows and values after 100 SW_INCR/CHAIN");
}

/* ---- pmu-chain-promotion -------------------------------------------------------------- */
static void print_regs(const char *step)
{
    u64 c1 = read_cntr(1), c0 = read_cntr(0), ovs = get_ovs();
    printf("# %s #1=0x%lx #0=0x%lx overflow=0x%lx\n", step, c1, c0, ovs);
}

static void promo_values(const char *step)
{
    printf("%s.%s.cntr0=0x%lx\n", cur, step, read_cntr(0));
    printf("%s.%s.cntr1=0x%lx\n", cur, step, read_cntr(1));
    printf("%s.%s.ovs=0x%lx\n", cur, step, get_ovs());
}

static void test_chain_promotion(int unused)
{
    static const u32 events[] = { MEM_ACCESS, CHAIN };
    void *addr = mem_page;
    u64 m = pmevcntr_mask();
    u64 once = PRE_OVERFLOW2_32 + COUNT;                /* 0xFFFFFF9B: no overflow yet */
    u64 twice = (PRE_OVERFLOW2_32 + 2 * COUNT) & m;     /* wrapped at 32 bits */
    (void)unused;

    if (!satisfy_prerequisites(events, 2))
        return;

    /* subtest1: only the CHAIN counter enabled */
    kut_pmu_reset();
    write_typer(0, MEM_ACCESS | PMEVTYPER_EXCLUDE_EL0);
    write_typer(1, CHAIN | PMEVTYPER_EXCLUDE_EL0);
    write_sysreg(pmcntenset_el0, 0x2);
    isb();
    mem_access_loop(addr, COUNT, pmu.pmcr_ro | PMCR_E);             /* COUNT loads */
    print_regs("post");
    promo_values("s1");
    check("s1.even_disabled", !read_cntr(0), "chain counter not counting if even counter is disabled");
    check("s1.exact", !read_cntr(1) && !get_ovs(), "nothing counted, no overflow");

    /* subtest2: only the even counter enabled */
    kut_pmu_reset();
    write_cntr(0, PRE_OVERFLOW_32);
    write_sysreg(pmcntenset_el0, 0x1);
    isb();
    mem_access_loop(addr, COUNT, pmu.pmcr_ro | PMCR_E);
    print_regs("post");
    promo_values("s2");
    check("s2.odd_disabled", !read_cntr(1) && get_ovs() == 0x1,
          "odd counter did not increment on overflow if disabled");
    check("s2.exact", read_cntr(0) == ((PRE_OVERFLOW_32 + COUNT) & m), "counter #0 at PRE_OVERFLOW_32 + COUNT");

    /* subtest3: 1st COUNT with CHAIN enabled, next COUNT with CHAIN disabled */
    kut_pmu_reset();
    write_cntr(0, PRE_OVERFLOW2_32);
    enable_chain_counter(0);
    print_regs("init");
    mem_access_loop(addr, COUNT, pmu.pmcr_ro | PMCR_E);
    print_regs("After 1st loop");
    check("s3.first_exact", read_cntr(0) == once && !read_cntr(1) && !get_ovs(), "first loop: no overflow");
    disable_chain_counter(0);
    write_sysreg(pmcntenset_el0, 0x1);     /* enable the low counter */
    isb();
    mem_access_loop(addr, COUNT, pmu.pmcr_ro | PMCR_E);
    print_regs("After 2nd loop");
    promo_values("s3");
    check("s3.overflow", get_ovs() == 0x1, "should have triggered an overflow on #0");
    check("s3.no_chain", !read_cntr(1), "CHAIN counter #1 shouldn't have incremented");
    check("s3.exact", read_cntr(0) == twice, "counter #0 at PRE_OVERFLOW2_32 + 2*COUNT");

    /* subtest4: 1st COUNT with CHAIN disabled, next COUNT with CHAIN enabled */
    kut_pmu_reset();
    write_sysreg(pmcntenset_el0, 0x1);
    write_cntr(0, PRE_OVERFLOW2_32);
    isb();
    print_regs("init");
    mem_access_loop(addr, COUNT, pmu.pmcr_ro | PMCR_E);
    print_regs("After 1st loop");
    check("s4.first_exact", read_cntr(0) == once && !read_cntr(1) && !get_ovs(), "first loop: no overflow");
    /* disable the low counter first and enable the chain counter */
    write_sysreg(pmcntenclr_el0, 0x1);
    isb();
    enable_chain_counter(0);
    mem_access_loop(addr, COUNT, pmu.pmcr_ro | PMCR_E);
    print_regs("After 2nd loop");
    promo_values("s4");
    check("s4.chain", read_cntr(1) == 1 && get_ovs() == 0x1,
          "CHAIN counter enabled: CHAIN counter was incremented and overflow");
    check("s4.exact", read_cntr(0) == twice, "counter #0 at PRE_OVERFLOW2_32 + 2*COUNT");

    /* subtest5: start as MEM_ACCESS/CPU_CYCLES and move to CHAIN/MEM_ACCESS */
    kut_pmu_reset();
    write_typer(0, MEM_ACCESS | PMEVTYPER_EXCLUDE_EL0);
    write_typer(1, CPU_CYCLES | PMEVTYPER_EXCLUDE_EL0);
    write_sysreg(pmcntenset_el0, 0x3);
    write_cntr(0, PRE_OVERFLOW2_32);
    isb();
    print_regs("init");
    mem_access_loop(addr, COUNT, pmu.pmcr_ro | PMCR_E);
    print_regs("After 1st loop");
    printf("%s.s5.first_cycles=%lu\n", cur, read_cntr(1));
    check("s5.first_exact", read_cntr(0) == once && read_cntr(1) == 5 + 4 * COUNT && !get_ovs(),
          "first loop: COUNT accesses, 5 + 4*COUNT cycles");
    /* 0 becomes CHAINED */
    write_sysreg(pmcntenclr_el0, 0x3);
    write_typer(1, CHAIN | PMEVTYPER_EXCLUDE_EL0);
    write_cntr(1, 0x0);
    enable_chain_counter(0);
    mem_access_loop(addr, COUNT, pmu.pmcr_ro | PMCR_E);
    print_regs("After 2nd loop");
    promo_values("s5");
    check("s5.chain", read_cntr(1) == 1 && get_ovs() == 0x1, "32b->64b: CHAIN counter incremented and overflow");
    check("s5.exact", read_cntr(0) == twice, "counter #0 at PRE_OVERFLOW2_32 + 2*COUNT");

    /* subtest6: start as CHAIN/MEM_ACCESS and move to MEM_ACCESS/CPU_CYCLES */
    kut_pmu_reset();
    write_typer(0, MEM_ACCESS | PMEVTYPER_EXCLUDE_EL0);
    write_typer(1, CHAIN | PMEVTYPER_EXCLUDE_EL0);
    write_cntr(0, PRE_OVERFLOW2_32);
    enable_chain_counter(0);
    print_regs("init");
    mem_access_loop(addr, COUNT, pmu.pmcr_ro | PMCR_E);
    print_regs("After 1st loop");
    check("s6.first_exact", read_cntr(0) == once && !read_cntr(1) && !get_ovs(), "first loop: no overflow");
    disable_chain_counter(0);
    write_typer(1, CPU_CYCLES | PMEVTYPER_EXCLUDE_EL0);
    write_sysreg(pmcntenset_el0, 0x3);
    mem_access_loop(addr, COUNT, pmu.pmcr_ro | PMCR_E);
    print_regs("After 2nd loop");
    promo_values("s6");
    check("s6.overflow", get_ovs() == 1, "overflow is expected on counter 0");
    check("s6.exact", read_cntr(0) == twice && read_cntr(1) == 5 + 4 * COUNT,
          "counter #0 at PRE_OVERFLOW2_32 + 2*COUNT, counter #1 counted 5 + 4*COUNT cycles");
}

/* ---- pmu-overflow-interrupt ----------------------------------------------------------- */
static void irq_handler(struct exc_frame *f, int vec)
{
    u32 irqstat = gic_ack();
    u32 irqnr = irqstat & 0xFFFFFF;
    (void)vec;

    if (irqnr == PMU_PPI) {
        u64 overflows = read_sysreg(pmovsclr_el0);
        u64 k = pmu_stats.n;
        if (k < 8) {
            pmu_stats.elr[k] = f->elr;
            pmu_stats.x10[k] = f->x[10];
            pmu_stats.ovs[k] = overflows;
        }
        pmu_stats.n = k + 1;
        for (int i = 0; i < 32; i++) {
            if (overflows & BIT(i)) {
                pmu_stats.interrupts[i]++;
                pmu_stats.bitmap |= BIT(i);
            }
        }
        write_sysreg(pmovsclr_el0, ALL_SET_32);
        isb();
    } else {
        pmu_stats.unexpected = 1;
    }
    gic_eoi(irqstat);
}

static int expect_interrupts(u32 bitmap)
{
    u64 bm = pmu_stats.bitmap;

    if ((bm ^ bitmap) || pmu_stats.unexpected)
        return 0;
    for (int i = 0; i < 32; i++)
        if ((bm & BIT(i)) && pmu_stats.interrupts[i] != 1)
            return 0;
    return 1;
}

/* Where the PMU interrupts of one step were taken: "<step>.irqs" and, for each, the overflow
 * bits it saw and the number of loads (after kut_mem_ldr) or PMSWINC writes (inside
 * kut_swinc100) that had retired: the interrupt must come right after the overflowing one. */
static void irq_sites(const char *step, long loop)
{
    printf("%s.%s.irqs=%lu\n", cur, step, pmu_stats.n);
    for (u64 k = 0; k < pmu_stats.n && k < 8; k++) {
        u64 elr = pmu_stats.elr[k];
        printf("%s.%s.irq%lu.ovs=0x%lx\n", cur, step, k, pmu_stats.ovs[k]);
        if (elr == (u64)kut_mem_ldr + 4)
            printf("%s.%s.irq%lu.loads=%lu\n", cur, step, k, loop - pmu_stats.x10[k]);
        else if (elr >= (u64)kut_swinc100 && elr <= (u64)kut_swinc100 + 400)
            printf("%s.%s.irq%lu.swincs=%lu\n", cur, step, k, (elr - (u64)kut_swinc100) / 4);
        else
            printf("%s.%s.irq%lu.elr=0x%lx\n", cur, step, k, elr);
    }
}

static void test_overflow_interrupt(int ov64)
{
    u64 pre_overflow = PRE_OVERFLOW(ov64);
    u64 all_set = pmevcntr_mask();
    u64 pmcr_lp = ov64 ? PMCR_LP : 0;
    static const u32 events[] = { MEM_ACCESS, SW_INCR };
    void *addr = mem_page;

    if (!satisfy_prerequisites(events, 2) || !check_overflow_prerequisites(ov64))
        return;

    gic_init();
    set_irq_handler(irq_handler);
    irq_enable();
    gic_enable_irq(PMU_PPI, 0x80);

    kut_pmu_reset();
    write_typer(0, MEM_ACCESS | PMEVTYPER_EXCLUDE_EL0);
    write_typer(1, SW_INCR | PMEVTYPER_EXCLUDE_EL0);
    write_sysreg(pmcntenset_el0, 0x3);
    write_cntr(0, pre_overflow);
    write_cntr(1, pre_overflow);
    isb();

    /* a. interrupts are disabled (PMINTENSET_EL1 == 0) */
    mem_access_loop(addr, COUNT_INT, pmu.pmcr_ro | PMCR_E | pmcr_lp);
    u64 a_c0 = read_cntr(0);
    val("a.cntr0", a_c0);
    check("a.no_irq_preset", expect_interrupts(0), "no overflow interrupt after preset");
    set_pmcr(pmu.pmcr_ro | PMCR_E | pmcr_lp);
    isb();
    swinc_100(0x2);
    set_pmcr(pmu.pmcr_ro);
    isb();
    val("a.cntr1", read_cntr(1));
    val("a.ovs", get_ovs());
    check("a.no_irq_counting", expect_interrupts(0), "no overflow interrupt after counting");
    /* (counter #0 also counted the accesses around swinc_100: compare the value read
     * right after the load loop) */
    check("a.exact", a_c0 == ((pre_overflow + COUNT_INT) & all_set) &&
                         read_cntr(1) == ((pre_overflow + 100) & all_set) && get_ovs() == 0x3,
          "both counters overflowed silently");

    /* b. enable interrupts (PMINTENSET_EL1 <= ALL_SET_32) */
    pmu_reset_stats();
    write_cntr(0, pre_overflow);
    write_cntr(1, pre_overflow);
    write_sysreg(pmovsclr_el0, ALL_SET_32);
    write_sysreg(pmintenset_el1, ALL_SET_32);
    isb();
    mem_access_loop(addr, COUNT_INT, pmu.pmcr_ro | PMCR_E | pmcr_lp);
    set_pmcr(pmu.pmcr_ro | PMCR_E | pmcr_lp);
    isb();
    swinc_100(0x3);
    mem_access_loop(addr, COUNT_INT, pmu.pmcr_ro);     /* PMCR.E = 0: a delivery window */
    printf("# overflow=0x%lx\n", get_ovs());
    irq_sites("b", COUNT_INT);
    val("b.cntr1", read_cntr(1));
    check("b.irq_0_1", expect_interrupts(0x3), "overflow interrupts expected on #0 and #1");
    check("b.exact", pmu_stats.n == 2 && pmu_stats.ovs[0] == 0x1 && pmu_stats.elr[0] == (u64)kut_mem_ldr + 4 &&
                         COUNT_INT - pmu_stats.x10[0] == 16 && pmu_stats.ovs[1] == 0x2 &&
                         pmu_stats.elr[1] == (u64)kut_swinc100 + 16 * 4,
          "interrupts right after the 16th load and the 16th PMSWINC write");

    /* c. promote to 64-b (with LP: check that the CHAIN counter does not count) */
    pmu_reset_stats();
    write_typer(1, CHAIN | PMEVTYPER_EXCLUDE_EL0);
    write_cntr(0, pre_overflow);
    isb();
    mem_access_loop(addr, COUNT_INT, pmu.pmcr_ro | PMCR_E | pmcr_lp);
    irq_sites("c", COUNT_INT);
    val("c.cntr1", read_cntr(1));
    check("c.irq_0", expect_interrupts(0x1), "expect overflow interrupt");
    u64 c1_want = ov64 ? (pre_overflow + 100) & all_set : ((pre_overflow + 100) & all_set) + 1;
    check("c.exact", pmu_stats.n == 1 && pmu_stats.ovs[0] == 0x1 && pmu_stats.elr[0] == (u64)kut_mem_ldr + 4 &&
                         COUNT_INT - pmu_stats.x10[0] == 16 && read_cntr(1) == c1_want,
          "one interrupt right after the 16th load; CHAIN counted once (not with LP)");

    /* d. overflow on the odd counter */
    pmu_reset_stats();
    write_cntr(0, pre_overflow);
    write_cntr(1, all_set);
    isb();
    mem_access_loop(addr, COUNT_INT, pmu.pmcr_ro | PMCR_E | pmcr_lp);
    irq_sites("d", COUNT_INT);
    val("d.cntr1", read_cntr(1));
    if (ov64) {
        check("d.irq_0", expect_interrupts(0x1), "expect overflow interrupt on even counter");
        check("d.odd_unchanged", read_cntr(1) == all_set, "Odd counter did not change");
        check("d.exact", pmu_stats.n == 1 && pmu_stats.ovs[0] == 0x1 && COUNT_INT - pmu_stats.x10[0] == 16,
              "one interrupt right after the 16th load");
    } else {
        check("d.irq_0_1", expect_interrupts(0x3), "expect overflow interrupt on even and odd counter");
        check("d.odd_wrapped", read_cntr(1) != all_set, "Odd counter wrapped");
        check("d.exact", pmu_stats.n == 1 && pmu_stats.ovs[0] == 0x3 && COUNT_INT - pmu_stats.x10[0] == 16 &&
                             read_cntr(1) == 0,
              "one interrupt for both overflows right after the 16th load; odd counter wrapped to 0");
    }

    irq_disable();
    kut_pmu_reset();
    gic_disable_irq(PMU_PPI);
    set_irq_handler(0);
}

/* ---- driver --------------------------------------------------------------------------- */
static void run_event_test(const char *name, void (*test)(int), int ov64)
{
    begin(name, ov64 ? "64" : "32");
    test(ov64);
    end();
}

static int pmu_probe(void)
{
    u64 pmcr;

    pmu.version = pmuver();
    kv_u64("pmu.version", pmu.version);
    if (pmu.version == ID_DFR0_PMU_NOTIMPL || pmu.version == ID_DFR0_PMU_IMPDEF)
        return 0;
    pmcr = get_pmcr();
    printf("# PMU implementer/ID code: 0x%lx/0x%lx\n", (pmcr >> 24) & 0xff, (pmcr >> 16) & 0xff);
    /* store the read-only and RES0 fields of the PMCR bottom half */
    pmu.pmcr_ro = pmcr & 0xFFFFFF00;
    pmu.nb_implemented_counters = (pmcr >> PMU_PMCR_N_SHIFT) & PMU_PMCR_N_MASK;
    kv_u64("pmu.counters", pmu.nb_implemented_counters);
    kv_hex("pmu.pmcr_ro", pmu.pmcr_ro);
    return 1;
}

static u64 semihost_call(u64 op, u64 arg)
{
    register u64 x0 __asm__("x0") = op;
    register u64 x1 __asm__("x1") = arg;
    __asm__ volatile("hlt #0xf000" : "+r"(x0) : "r"(x1) : "memory");
    return x0;
}

static char cmdline[256];

static void get_cmdline(void)
{
    u64 block[2] = { (u64)cmdline, sizeof(cmdline) };   /* SYS_GET_CMDLINE {buffer, length} */
    if (semihost_call(0x15, (u64)block) != 0)
        cmdline[0] = 0;
}

static int word_eq(const char *a, const char *w)
{
    while (*w && *a == *w) { a++; w++; }
    return *w == 0 && (*a == 0 || *a == ' ');
}

int main(void)
{
    static const char *const names[] = {
        "cycle-counter", "pmu-event-introspection", "pmu-event-counter-config", "pmu-basic-event-count",
        "pmu-mem-access", "pmu-mem-access-reliability", "pmu-sw-incr", "pmu-chained-counters",
        "pmu-chained-sw-incr", "pmu-chain-promotion", "pmu-overflow-interrupt",
    };
    const u64 nnames = sizeof(names) / sizeof(names[0]);
    int cpi = 1;

    get_cmdline();
    const char *arg = cmdline;
    while (*arg == ' ') arg++;
    /* QEMU's SYS_GET_CMDLINE starts with the -kernel file name: skip a first word that looks
     * like a path (subtest names have no '/' or '.') */
    const char *w = arg;
    while (*w && *w != ' ' && *w != '/' && *w != '.') w++;
    if (*w == '/' || *w == '.') {
        while (*arg && *arg != ' ') arg++;
        while (*arg == ' ') arg++;
    }
    const char *param = arg;
    while (*param && *param != ' ') param++;
    while (*param == ' ') param++;
    if (*param) {
        cpi = 0;
        while (*param >= '0' && *param <= '9') cpi = cpi * 10 + (*param++ - '0');
    }
    kv_str("cmdline", cmdline);

    if (!pmu_probe()) {
        printf("No PMU found, test skipped...\n");
        return report();
    }

    u64 sel = nnames;                 /* all */
    if (*arg) {
        for (sel = 0; sel < nnames; sel++)
            if (word_eq(arg, names[sel]))
                break;
        if (sel == nnames) {
            printf("Unknown sub-test '%s'\n", arg);
            return 255;
        }
    }
    for (u64 t = 0; t < nnames; t++) {
        if (sel != nnames && t != sel)
            continue;
        switch (t) {
        case 0: test_cycle_counter(cpi); break;
        case 1: test_event_introspection(); break;
        case 2: test_event_counter_config(); break;
        case 3: run_event_test(names[t], test_basic_event_count, 0);
                run_event_test(names[t], test_basic_event_count, 1); break;
        case 4: run_event_test(names[t], test_mem_access, 0);
                run_event_test(names[t], test_mem_access, 1); break;
        case 5: run_event_test(names[t], test_mem_access_reliability, 0);
                run_event_test(names[t], test_mem_access_reliability, 1); break;
        case 6: run_event_test(names[t], test_sw_incr, 0);
                run_event_test(names[t], test_sw_incr, 1); break;
        case 7: run_event_test(names[t], test_chained_counters, 0); break;
        case 8: run_event_test(names[t], test_chained_sw_incr, 0); break;
        case 9: run_event_test(names[t], test_chain_promotion, 0); break;
        case 10: run_event_test(names[t], test_overflow_interrupt, 0);
                 run_event_test(names[t], test_overflow_interrupt, 1); break;
        }
    }
    report();
    return (int)(failures > 255 ? 255 : failures);
}
