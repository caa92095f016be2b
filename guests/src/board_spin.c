/* A long, fixed amount of work: iters=N iterations (default 1000000) of a 2-instruction
 * loop, then "spin_done=1" and exit 0.  With --max-insns below ~2N vpmu stops with 103. */
#include "board_common.h"

int main(void)
{
    u64 n = 1000000;
    board_arg_u64("iters", &n);
    puts("board_spin: start\n");
    __asm__ volatile("cbz %0, 2f\n1: subs %0, %0, #1\n b.ne 1b\n2:" : "+r"(n) :: "cc");
    kv_u64("spin_done", 1);
    return 0;
}
