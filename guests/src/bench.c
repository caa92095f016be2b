/* Benchmark guest, workload loop10 (`vpmu bench`): a loop of 10 instructions per iteration
 * (2 loads, 2 stores, ALU, a conditional branch) run with six event counters and the cycle
 * counter enabled (bench_common.h).  `vpmu bench` also runs bench_loop alone on plain
 * Unicorn (no hooks) to compare.  Command line: n=ITERATIONS (default 5000000; 0 runs as 1).
 *
 * Counts: bench_loop is 1 + 10n + 2 instructions (mov; n x 10; mov, ret), the window adds
 * BENCH_OVERHEAD = 4: inst = 10n + 7; br = n (b.ne) + 1 (ret) + 1 (blr) = n + 2;
 * ld = st = 2n, mem = 4n; cpu_cycles = cycles = inst (default cycle model). */
#include "bench_common.h"

/* Page-aligned and away from code: stores next to translated code take QEMU's
 * self-modifying-code slow path, which would distort the comparison. */
u64 bench_buf[512] ALIGNED(4096);

/* bench_loop(n, p): n iterations of 10 instructions; returns a checksum. */
u64 bench_loop(u64 n, u64 *p);
__asm__(".text\n"
        ".global bench_loop\n"
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
    u64 n = bench_arg("n", 5000000);
    if (n == 0)
        n = 1;
    kv_u64("iterations", n);
    bench_run((bench_fn)bench_loop, n, (u64)bench_buf, 0);
    return 0;
}
