/* Workload exceptions (`vpmu bench`): an OS kernel's synchronous exceptions from EL0 —
 * demand paging with page reclaim, and BRK / UNDEFINED traps that the kernel skips.
 *
 * The kernel (bench_os.h: MMU on, user text and data in their own pages) runs a user
 * program at EL0 that computes (a 4-instruction inner loop of K / 4 iterations) between
 * exceptions, and then, in turn:
 *   store to the next page of a 2 MiB window (USER_WINDOW_VA, 512 pages, all unmapped at
 *     first) -> data abort (EC 0x24, translation fault) -> the kernel reclaims the frame
 *     the oldest mapped page holds (its PTE cleared; dsb ishst; tlbi vale1is; dsb ish) and
 *     maps the faulting page to it (dsb ishst; isb), then ERETs to the store, which now
 *     completes; the window is backed by POOL frames, so every store faults;
 *   brk #1  -> EC 0x3C, the kernel skips it (ELR + 4)
 *   store to the next page again (another fault)
 *   udf #0  -> EC 0x00, the kernel skips it
 * The user program then reads back what it stored to this round's first page (still
 * mapped: one fault since): a wrong mapping changes `sum`.
 *
 * Command line: n=EXCEPTIONS (a multiple of 4 is run: n / 4 rounds of the four, default
 * 4000), k=INSTRUCTIONS between exceptions (4..1000000, default 200). */
#include "bench_os.h"

#define POOL 16
#define WINDOW_PAGES 512

static u8 frames[POOL][4096] ALIGNED(4096);
static volatile u64 faults, brks, udfs, reclaims, next_frame;
static u64 frame_owner[POOL];              /* window page + 1 mapped to each frame (0: free) */

u64 user_exceptions(u64 params);
__asm__(".section .text.user, \"ax\"\n"
        ".balign 4096\n"
        ".global user_text_start\n"
        "user_text_start:\n"
        ".global user_exceptions\n"
        "user_exceptions:\n"             /* x0 = parameter block: [0] rounds, [1] inner iterations, [2] window */
        "  ldr x19, [x0]\n"
        "  ldr x20, [x0, #8]\n"
        "  ldr x22, [x0, #16]\n"         /* window base */
        "  mov x23, #0\n"                /* next window page */
        "  mov x21, #0\n"
        "1:\n"
        "  mov x9, x20\n"
        "2:\n"
        "  add x21, x21, x9\n"
        "  eor x10, x21, x9, lsl #3\n"
        "  subs x9, x9, #1\n"
        "  b.ne 2b\n"
        "  and x11, x23, #511\n"
        "  add x11, x22, x11, lsl #12\n"
        "  str x21, [x11]\n"                 /* demand fault */
        "  add x23, x23, #1\n"
        "  brk #1\n"
        "  mov x9, x20\n"
        "3:\n"
        "  add x21, x21, x9\n"
        "  eor x10, x21, x9, lsl #3\n"
        "  subs x9, x9, #1\n"
        "  b.ne 3b\n"
        "  and x11, x23, #511\n"
        "  add x11, x22, x11, lsl #12\n"
        "  str x10, [x11]\n"                 /* demand fault */
        "  add x23, x23, #1\n"
        "  .inst 0x00000000\n"               /* udf #0 */
        "  sub x11, x23, #2\n"               /* this round's first page: still mapped */
        "  and x11, x11, #511\n"
        "  add x11, x22, x11, lsl #12\n"
        "  ldr x12, [x11]\n"
        "  eor x21, x21, x12\n"
        "  subs x19, x19, #1\n"
        "  b.ne 1b\n"
        "  mov x0, x21\n"
        "  ret\n"
        ".global user_text_end\n"
        "user_text_end:\n"
        ".text\n");

/* A translation fault in the window: reclaim the next frame (round robin = the oldest
 * mapping) and map the faulting page to it. */
static int demand_page(u64 far)
{
    if (far < USER_WINDOW_VA || far >= USER_WINDOW_VA + WINDOW_PAGES * 4096)
        return 0;
    u64 page = (far - USER_WINDOW_VA) >> 12, f = next_frame++ % POOL;
    if (frame_owner[f]) {
        u64 old = frame_owner[f] - 1;
        *(volatile u64 *)os_window_pte(old) = 0;
        __asm__ volatile("dsb ishst\n tlbi vale1is, %0\n dsb ish"
                         :: "r"((USER_WINDOW_VA + old * 4096) >> 12) : "memory");
        reclaims++;
    }
    frame_owner[f] = page + 1;
    *(volatile u64 *)os_window_pte(page) = (u64)frames[f] | PTE_USER_DATA;
    __asm__ volatile("dsb ishst\n isb" ::: "memory");
    faults++;
    return 1;
}

static void sync_handler(struct exc_frame *f, int vec)
{
    u64 ec = ESR_EC(f->esr);
    if (vec == 8) {
        /* data abort from EL0, DFSC translation fault at level 3 (0b000111) */
        if (ec == 0x24 && (f->esr & 0x3f) == 0x07 && demand_page(f->far))
            return;                                     /* retry the access */
        if (ec == 0x3c) { brks++; f->elr += 4; return; }
        if (ec == 0x00) { udfs++; f->elr += 4; return; }
    }
    printf("unexpected exception: vector=%d esr=0x%lx elr=0x%lx far=0x%lx\n", vec, f->esr, f->elr, f->far);
    exit(99);
}

/* The measured function: run the user program. */
u64 kernel_run(u64 rounds, u64 iters, u64 unused)
{
    (void)unused;
    os_user_data[0][0] = rounds;
    os_user_data[0][1] = iters;
    os_user_data[0][2] = USER_WINDOW_VA;
    return el0_call((u64 (*)(u64))user_va(user_exceptions), USER_DATA_VA, USER_DATA_VA + USER_DATA_PAGES * 4096);
}

int main(void)
{
    u64 n = bench_arg("n", 4000), k = bench_arg("k", 200);
    if (n < 4 || k < 4 || k > 1000000) {
        printf("bench_exceptions: n must be at least 4 and k 4..1000000\n");
        return 2;
    }
    mmu_enable(0);
    os_user_init();
    set_sync_handler(sync_handler);
    bench_run((bench_fn)kernel_run, n / 4, k / 4, 0);
    kv_u64("faults", faults);
    kv_u64("reclaims", reclaims);
    kv_u64("brks", brks);
    kv_u64("udfs", udfs);
    return faults == n / 4 * 2 && brks == n / 4 && udfs == n / 4 ? 0 : 1;
}
