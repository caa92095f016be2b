/* Workloads loop6 and loop4 (`vpmu bench`): short loops, one translated block per iteration,
 * with six event counters and the cycle counter on.  loop6 is the loop of issue 10 (add, ldr,
 * add, str, subs, b.ne); loop4 a 4-instruction variant (ldr, add, subs, b.ne).  Both are plain
 * functions (x0 = iterations, x1 = buffer) that vpmu/workloads.py also runs on plain Unicorn.
 * Command line: k=6|4 (which loop, default 6), n=ITERATIONS (default 3000000; 0 runs as 1).
 *
 * Counts (bench_common.h: the window adds BENCH_OVERHEAD = 4 instructions and the blr):
 *   loop6: instructions 1 + 6n + 2 (mov; n x 6; mov, ret)  -> inst = 6n + 7
 *          branches n (b.ne) + 1 (ret) + 1 (blr)            -> br   = n + 2
 *          ld = n, st = n, mem = 2n
 *   loop4: instructions 1 + 4n + 2                          -> inst = 4n + 7
 *          br = n + 2, ld = n, st = 0, mem = n
 * With the default cycle model (1 per instruction) cpu_cycles = cycles = inst. */
#include "bench_common.h"

/* Page-aligned, in .data (the same initial contents for the guest and for plain Unicorn),
 * away from code: stores next to translated code take QEMU's self-modifying-code path. */
u64 loop_buf[512] ALIGNED(4096) = { 3 };

u64 loop6(u64 n, u64 *p);
u64 loop4(u64 n, u64 *p);
__asm__(".text\n"
        ".global loop6\n"
        "loop6:\n"
        "  mov x2, #0\n"
        "1:\n"
        "  add x2, x2, x0\n"            /* 1 */
        "  ldr x3, [x1]\n"              /* 2 */
        "  add x3, x3, x2\n"            /* 3 */
        "  str x3, [x1]\n"              /* 4 */
        "  subs x0, x0, #1\n"           /* 5 */
        "  b.ne 1b\n"                   /* 6 */
        "  mov x0, x3\n"
        "  ret\n"
        ".global loop4\n"
        "loop4:\n"
        "  mov x2, #0\n"
        "1:\n"
        "  ldr x3, [x1]\n"              /* 1 */
        "  add x2, x2, x3\n"            /* 2 */
        "  subs x0, x0, #1\n"           /* 3 */
        "  b.ne 1b\n"                   /* 4 */
        "  mov x0, x2\n"
        "  ret\n");

int main(void)
{
    u64 k = bench_arg("k", 6);
    u64 n = bench_arg("n", 3000000);
    if (k != 4 && k != 6) {
        printf("bench_loops: k must be 4 or 6\n");
        return 2;
    }
    if (n == 0)
        n = 1;
    bench_run((bench_fn)(k == 4 ? loop4 : loop6), n, (u64)loop_buf, 0);
    return 0;
}
