/* Shared by the benchmark workload guests (bench_*.c; `vpmu bench`, vpmu/workloads.py).
 *
 * Every workload measures one function, fn(a, b, c), through bench_measure(): the guest
 * prints "bench: start", bench_measure enables six event counters and the cycle counter
 * with one PMCR_EL0 write, calls fn, disables them, and the guest prints "bench: end" and
 * the counts as key=value lines (bench_report).  `vpmu bench` times vpmu and QEMU between
 * the two lines and runs the same fn on plain Unicorn where it can.
 *
 * The instructions counted are exactly fn's plus BENCH_OVERHEAD (the wrapper's own):
 *   msr pmcr_el0 (enabling counts itself), isb, blr   -> 3 before fn's first instruction
 *   mov x10, #PMCR_LC                                   -> 1 after fn returns
 *   msr pmcr_el0 (disabling does not count itself)      -> 0
 * BR_RETIRED: the blr (fn's ret is fn's own).  No load or store in the window is the
 * wrapper's.  vpmu/workloads.py uses the same constant for the plain-Unicorn instruction count.
 *
 * Around bench_measure (outside the counted window, inside the marker lines) the guest
 * reads semihosting SYS_ELAPSED and prints the difference as `elapsed` (SYS_TICKFREQ ticks
 * per second, printed as `tickfreq`): QEMU answers with its host clock, which times QEMU
 * without the delays of its console output; vpmu answers with guest time (cycles).
 *
 * Everything here runs unchanged on qemu-system-aarch64 -M virt,gic-version=3 -semihosting. */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H
#include "board_common.h"

#define BENCH_OVERHEAD 4

typedef u64 (*bench_fn)(u64, u64, u64);

/* bench_measure(fn, a, b, c) = fn(a, b, c), counted (see above).  bench_plain_return is
 * where plain Unicorn stops: vpmu/workloads.py points the link register there. */
u64 bench_measure(bench_fn fn, u64 a, u64 b, u64 c);
__asm__(".text\n"
        ".global bench_measure\n"
        "bench_measure:\n"
        "  stp x29, x30, [sp, #-16]!\n"
        "  mov x29, sp\n"
        "  mov x9, x0\n"
        "  mov x0, x1\n"
        "  mov x1, x2\n"
        "  mov x2, x3\n"
        "  mov x10, #0x41\n"            /* PMCR_EL0.LC | E */
        "  msr pmcr_el0, x10\n"         /* 1: counting starts with this instruction */
        "  isb\n"                       /* 2 */
        "  blr x9\n"                    /* 3, then fn */
        "  mov x10, #0x40\n"            /* 4: LC */
        "  msr pmcr_el0, x10\n"         /* not counted */
        "  isb\n"
        "  ldp x29, x30, [sp], #16\n"
        "  ret\n"
        ".global bench_plain_return\n"
        "bench_plain_return:\n"
        "  b bench_plain_return\n");

static const u32 bench_events[6] = { EV_INST_RETIRED, EV_CPU_CYCLES, EV_BR_RETIRED, EV_LD_RETIRED,
                                     EV_ST_RETIRED, EV_MEM_ACCESS };

/* Program counters 0-5 with the six events and enable them and the cycle counter (PMCR.E
 * still 0: bench_measure starts them).  Then the start marker. */
static inline __attribute__((unused)) void bench_prepare(void)
{
    pmu_reset();
    for (int i = 0; i < 6; i++)
        pmu_write_type(i, bench_events[i]);
    write_sysreg(pmccfiltr_el0, 0);
    write_sysreg(pmcntenset_el0, 0x8000003fUL);
    isb();
}

/* Semihosting SYS_ELAPSED (0x30): a 64-bit tick count (SYS_TICKFREQ ticks per second). */
static inline __attribute__((unused)) u64 bench_elapsed(void)
{
    u64 t = 0;
    semi_call(0x30, (u64)&t);
    return t;
}

/* bench_prepare, the markers around bench_measure, then the counts and the call itself
 * (fn, a0..a2: what plain Unicorn is given) as key=value lines. */
static inline __attribute__((unused)) u64 bench_run(bench_fn fn, u64 a, u64 b, u64 c)
{
    bench_prepare();
    printf("bench: start\n");
    u64 t0 = bench_elapsed();
    u64 r = bench_measure(fn, a, b, c);
    u64 t1 = bench_elapsed();
    printf("bench: end\n");
    kv_u64("elapsed", t1 - t0);
    kv_u64("tickfreq", semi_call(0x31, 0));
    kv_u64("inst", pmu_read_counter(0));
    kv_u64("cpu_cycles", pmu_read_counter(1));
    kv_u64("br", pmu_read_counter(2));
    kv_u64("ld", pmu_read_counter(3));
    kv_u64("st", pmu_read_counter(4));
    kv_u64("mem", pmu_read_counter(5));
    kv_u64("cycles", read_sysreg(pmccntr_el0));
    kv_hex("sum", r);
    kv_hex("fn", (u64)fn);
    kv_hex("a0", a);
    kv_hex("a1", b);
    kv_hex("a2", c);
    return r;
}

/* "key=N" from the command line, or `dflt`; printed back so the host sees what ran. */
static inline __attribute__((unused)) u64 bench_arg(const char *key, u64 dflt)
{
    u64 v = dflt;
    board_arg_u64(key, &v);
    kv_u64(key, v);
    return v;
}

#endif
