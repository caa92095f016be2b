/* Benchmark guest: a loop of 10 instructions per iteration (2 loads, 2 stores, ALU, a
 * conditional branch) run with six event counters and the cycle counter enabled.
 * `vpmu bench` also runs bench_loop alone on plain Unicorn (no hooks) to compare.
 * Command line: n=ITERATIONS (default 5000000).  The loop runs between the lines
 * "bench: start" and "bench: end". */
#include "vpmu.h"
#include "board_common.h"

/* Page-aligned and away from code: stores next to translated code take QEMU's
 * self-modifying-code slow path, which would distort the comparison. */
u64 bench_buf[512] ALIGNED(4096);

/* bench_loop(n, p): n iterations of 10 instructions; returns a checksum. */
u64 bench_loop(u64 n, u64 *p);
__asm__(".global bench_loop\n"
        "bench_loop:\n"
        "  mov x2, #0\n"
        "1:\n"
        "  ldr x3, [x1]\n"             /* 1 */
        "  add x2, x2, x3\n"           /* 2 */
        "  ldr x4, [x1, #8]\n"         /* 3 */
        "  eor x2, x2, x4, lsl #1\n"   /* 4 */
        "  str x2, [x1, #16]\n"        /* 5 */
        "  add x3, x3, #1\n"           /* 6 */
        "  str x3, [x1]\n"             /* 7 */
        "  sub x0, x0, #1\n"           /* 8 */
        "  cmp x0, #0\n"               /* 9 */
        "  b.ne 1b\n"                  /* 10 */
        "  mov x0, x2\n"
        "  ret\n"
        ".global bench_end\n"
        "bench_end: nop\n");

int main(void)
{
    static const u32 ev[6] = { EV_INST_RETIRED, EV_CPU_CYCLES, EV_BR_RETIRED, EV_LD_RETIRED,
                               EV_ST_RETIRED, EV_MEM_ACCESS };
    u64 n = 5000000;
    board_arg_u64("n", &n);
    pmu_reset();
    for (int i = 0; i < 6; i++)
        pmu_write_type(i, ev[i]);
    write_sysreg(pmcntenset_el0, 0x8000003f);
    printf("bench: start\n");          /* `vpmu bench` times the loop between these lines */
    pmcr_write(PMCR_LC | PMCR_E);
    u64 sum = bench_loop(n, bench_buf);
    pmcr_write(PMCR_LC);
    printf("bench: end\n");
    kv_u64("iterations", n);
    kv_u64("inst", pmu_read_counter(0));
    kv_u64("br", pmu_read_counter(2));
    kv_u64("ld", pmu_read_counter(3));
    kv_u64("st", pmu_read_counter(4));
    kv_u64("mem", pmu_read_counter(5));
    kv_u64("cycles", read_sysreg(pmccntr_el0));
    kv_hex("sum", sum);
    return 0;
}
