/* Workload icache (`vpmu bench`): code generation with instruction-cache maintenance, as a
 * JIT, a module loader or Linux's flush_icache_range (caches_clean_inval_pou) do it.
 *
 * With the MMU on (mmu_enable), each iteration writes a generated function of LEN
 * instructions (movz x0, #i; LEN - 2 x add x0, x0, #k; ret) into the next slot of a code
 * buffer of PAGES pages (SLOT bytes per slot), then, over the slot's lines:
 *   dc cvau per D-cache line; dsb ish; ic ivau per I-cache line; dsb ish; isb
 * (line sizes from CTR_EL0.DminLine/IminLine, as Linux reads them), and calls it.  The
 * returned values are summed: a stale instruction would change the sum, so `sum` checks
 * that the maintenance took effect (vpmu, QEMU and plain Unicorn must agree on it).
 *
 * Command line: n=ITERATIONS (default 20000), len=INSTRUCTIONS (3..64, default 32),
 * pages=PAGES (1..64, default 16).  icache_run is a plain function of the guest state after
 * mmu_enable(0), which is how vpmu/workloads.py runs it on plain Unicorn. */
#include "bench_common.h"

#define MAX_PAGES 64
#define SLOT 256                        /* bytes: room for 64 instructions */
#define MOVZ_X0(imm) (0xd2800000u | ((u32)(imm) << 5))
#define ADD_X0_X0(imm) (0x91000000u | ((u32)(imm) << 10))
#define RET 0xd65f03c0u

/* Page-aligned, away from the guest's code and data (a store to a page holding translated
 * code takes QEMU's self-modifying-code path: here that is the point, elsewhere noise). */
static u32 code_buf[MAX_PAGES][1024] ALIGNED(4096);

static void clean_inval_pou(u64 start, u64 end)
{
    u64 ctr = read_sysreg(ctr_el0);
    u64 dline = 4UL << ((ctr >> 16) & 0xf), iline = 4UL << (ctr & 0xf);
    for (u64 a = start & ~(dline - 1); a < end; a += dline)
        __asm__ volatile("dc cvau, %0" :: "r"(a) : "memory");
    __asm__ volatile("dsb ish" ::: "memory");
    for (u64 a = start & ~(iline - 1); a < end; a += iline)
        __asm__ volatile("ic ivau, %0" :: "r"(a) : "memory");
    __asm__ volatile("dsb ish\n isb" ::: "memory");
}

/* n iterations, len instructions per generated function, a buffer of `pages` pages;
 * returns the sum of what the generated functions returned. */
u64 icache_run(u64 n, u64 len, u64 pages)
{
    u64 slots = pages * (4096 / SLOT), sum = 0;
    for (u64 i = 0; i < n; i++) {
        u32 *f = (u32 *)((u8 *)code_buf + (i % slots) * SLOT);
        f[0] = MOVZ_X0(i & 0xffff);
        for (u64 j = 1; j < len - 1; j++)
            f[j] = ADD_X0_X0((i + j) & 0xfff);
        f[len - 1] = RET;
        clean_inval_pou((u64)f, (u64)(f + len));
        sum += ((u64 (*)(void))f)();
    }
    return sum;
}

int main(void)
{
    u64 n = bench_arg("n", 20000), len = bench_arg("len", 32), pages = bench_arg("pages", 16);
    if (len < 3 || len > SLOT / 4 || pages < 1 || pages > MAX_PAGES) {
        printf("bench_icache: len must be 3..%d and pages 1..%d\n", SLOT / 4, MAX_PAGES);
        return 2;
    }
    mmu_enable(0);
    bench_run((bench_fn)icache_run, n, len, pages);
    return 0;
}
