/* Workload mmu (`vpmu bench`): an OS / test-suite MMU set-up, one page at a time.
 *
 * With the MMU on (mmu_enable: identity map of the guest in 1 GiB blocks), the guest maps a
 * region of MB MiB at VA 64 GiB with 4 KiB pages, one page-table entry at a time, each write
 * followed by "dsb ishst; tlbi vaae1is, va>>12; dsb ish" and one isb at the end (as
 * kvm-unit-tests' install_page/flush_tlb_page and Linux's set_pte + flush_tlb_kernel_range
 * do), then touches every TOUCH-th page through the new mapping, then unmaps the region
 * (every entry cleared, one "tlbi vmalle1is" as Linux does for a large range).  R rounds;
 * odd rounds map read-only (AP = 0b10) and shift which physical page backs each VA page, so
 * every round's touches check that the TLB maintenance took effect.
 *
 * The region does not depend on the board's RAM size: VA page i is backed by word
 * (i / POOL) % 512 of physical page (i + round) % POOL of a fixed pool of POOL pages, so a
 * touch of any VA page reads or writes a word of its own.  Writes go through the new
 * mapping and are checked through the identity map; `bad` counts mismatches (0 = correct).
 *
 * Command line: mb=MIB (1..1024, default 128), r=ROUNDS (default 1), touch=STRIDE (pages
 * between touches, default 16).  mmu_rounds is a plain function of the guest state after
 * mmu_enable(0) and mmu_setup(), which is how vpmu/workloads.py runs it on plain Unicorn. */
#include "bench_common.h"

#define REGION_VA (64UL << 30)          /* level-1 entry 64 of mmu_enable's table */
#define MAX_MB 1024
#define POOL 64
#define PAGE 4096UL

static u64 l2_table[512] ALIGNED(4096);
static u64 l3_tables[MAX_MB / 2][512] ALIGNED(4096);
static u8 pool[POOL][PAGE] ALIGNED(4096);
u64 mmu_bad;

/* Level-3 page descriptor (Arm ARM D8.3): bits[1:0] = 0b11, AttrIndx[4:2] = 1 (Normal WB,
 * mmu_enable's MAIR), AP[7:6], SH[9:8] = inner shareable, AF[10], PXN[53], UXN[54]. */
static u64 pte(u64 pa, u64 round)
{
    u64 ap = (round & 1) ? (2UL << 6) : 0;          /* read-only : read/write at EL1 */
    return pa | 3 | (1UL << 2) | ap | (3UL << 8) | (1UL << 10) | (1UL << 53) | (1UL << 54);
}

/* Link the level-2 table and the level-3 tables under level-1 entry 64 (all entries of
 * the region invalid). */
void mmu_setup(void)
{
    u64 *l1 = (u64 *)(read_sysreg(ttbr0_el1) & 0xfffffffff000UL);
    for (u64 i = 0; i < MAX_MB / 2; i++)
        l2_table[i] = (u64)l3_tables[i] | 3;
    l1[REGION_VA >> 30] = (u64)l2_table | 3;
    __asm__ volatile("dsb ishst\n tlbi vmalle1is\n dsb ish\n isb" ::: "memory");
}

static inline u64 *l3_entry(u64 i) { return &l3_tables[i / 512][i % 512]; }
static inline u64 backing(u64 i, u64 round) { return (u64)pool[(i + round) % POOL] + 8 * ((i / POOL) % 512); }

/* npages pages, rounds rounds, a touch every `touch` pages; returns a checksum of what
 * the touches read. */
u64 mmu_rounds(u64 npages, u64 rounds, u64 touch)
{
    u64 sum = 0;
    for (u64 r = 0; r < rounds; r++) {
        for (u64 i = 0; i < npages; i++) {
            u64 va = REGION_VA + i * PAGE;
            *(volatile u64 *)l3_entry(i) = pte(backing(i, r) & ~(PAGE - 1), r);
            __asm__ volatile("dsb ishst\n tlbi vaae1is, %0\n dsb ish" :: "r"(va >> 12) : "memory");
        }
        isb();
        for (u64 i = 0; i < npages; i += touch) {
            volatile u64 *v = (volatile u64 *)(REGION_VA + i * PAGE + (backing(i, r) & (PAGE - 1)));
            volatile u64 *p = (volatile u64 *)backing(i, r);
            if (!(r & 1))
                *v = (r << 32) ^ i ^ 0x5a5a;               /* written through the new mapping */
            u64 x = *v;
            if (x != *p)
                mmu_bad++;
            sum = sum * 31 + x;
        }
        for (u64 i = 0; i < npages; i++)
            *(volatile u64 *)l3_entry(i) = 0;
        __asm__ volatile("dsb ishst\n tlbi vmalle1is\n dsb ish\n isb" ::: "memory");
    }
    return sum;
}

int main(void)
{
    u64 mb = bench_arg("mb", 128), rounds = bench_arg("r", 1), touch = bench_arg("touch", 16);
    if (mb < 1 || mb > MAX_MB || touch < 1) {
        printf("bench_mmu: mb must be 1..%d and touch at least 1\n", MAX_MB);
        return 2;
    }
    mmu_enable(0);
    mmu_setup();
    bench_run((bench_fn)mmu_rounds, mb * 256, rounds, touch);
    kv_u64("pages_mapped", mb * 256 * rounds);
    kv_u64("bad", mmu_bad);
    return mmu_bad ? 1 : 0;
}
