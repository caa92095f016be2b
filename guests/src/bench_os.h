/* Shared by the OS-like workload guests (bench_syscalls.c, bench_exceptions.c): a kernel at
 * EL1 with the MMU on and a user program at EL0 in its own pages.
 *
 * mmu_enable(0) maps the guest itself (identity, 1 GiB blocks, EL1 only).  os_user_init()
 * adds, under level-1 entry 65 (VA 65 GiB = USER_VA):
 *   USER_VA + 0          the user text (the .text.user section between user_text_start and
 *                        user_text_end), AP = 0b11 (read-only at EL0 and EL1), PXN: EL0 runs
 *                        it, EL1 never does
 *   USER_VA + 1 MiB      USER_DATA_PAGES pages of user data and stack, AP = 0b01 (read/write
 *                        at EL0 and EL1), PXN and UXN
 *   USER_VA + 2 MiB      a 2 MiB window of level-3 entries, all invalid, for demand paging
 *                        (os_window_pte)
 * The user program is position-independent assembly, entered with el0_call(USER_VA + offset,
 * arg, stack top) and returning through the runtime's SVC #0xFFFF trampoline (kernel text:
 * EL0 may execute it, UXN = 0, but not read it). */
#ifndef BENCH_OS_H
#define BENCH_OS_H
#include "bench_common.h"

#define USER_VA (65UL << 30)
#define USER_DATA_VA (USER_VA + (1UL << 20))
#define USER_WINDOW_VA (USER_VA + (2UL << 20))
#define USER_DATA_PAGES 4
#define PTE_PAGE 3UL
#define PTE_ATTR_NORMAL (1UL << 2)       /* AttrIndx 1: mmu_enable's Normal write-back */
#define PTE_AP_RW_ALL (1UL << 6)         /* AP = 0b01 */
#define PTE_AP_RO_ALL (3UL << 6)         /* AP = 0b11 */
#define PTE_SH_INNER (3UL << 8)
#define PTE_AF (1UL << 10)
#define PTE_PXN (1UL << 53)
#define PTE_UXN (1UL << 54)
#define PTE_USER_DATA (PTE_PAGE | PTE_ATTR_NORMAL | PTE_AP_RW_ALL | PTE_SH_INNER | PTE_AF | PTE_PXN | PTE_UXN)
#define PTE_USER_TEXT (PTE_PAGE | PTE_ATTR_NORMAL | PTE_AP_RO_ALL | PTE_SH_INNER | PTE_AF | PTE_PXN)

extern char user_text_start[], user_text_end[];
static u64 os_l2[512] ALIGNED(4096);
static u64 os_l3_user[512] ALIGNED(4096);
static u64 os_l3_window[512] ALIGNED(4096);
static u64 os_user_data[USER_DATA_PAGES][512] ALIGNED(4096);

/* The user VA of a user-text symbol. */
static inline __attribute__((unused)) u64 user_va(const void *sym)
{
    return USER_VA + ((u64)sym - (u64)user_text_start);
}

static inline __attribute__((unused)) u64 *os_window_pte(u64 page) { return &os_l3_window[page % 512]; }

static inline __attribute__((unused)) void os_user_init(void)
{
    u64 *l1 = (u64 *)(read_sysreg(ttbr0_el1) & 0xfffffffff000UL);
    u64 text_pages = ((u64)user_text_end - (u64)user_text_start + 4095) / 4096;
    for (u64 i = 0; i < text_pages; i++)
        os_l3_user[i] = ((u64)user_text_start + i * 4096) | PTE_USER_TEXT;
    for (u64 i = 0; i < USER_DATA_PAGES; i++)
        os_l3_user[256 + i] = (u64)os_user_data[i] | PTE_USER_DATA;
    os_l2[0] = (u64)os_l3_user | 3;
    os_l2[1] = (u64)os_l3_window | 3;
    l1[USER_VA >> 30] = (u64)os_l2 | 3;
    __asm__ volatile("dsb ishst\n tlbi vmalle1is\n dsb ish\n isb" ::: "memory");
}

#endif
