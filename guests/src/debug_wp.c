/* Hardware watchpoints (Arm ARM D2.10): every DBGWCR field the PE implements, checked against
 * the architectural ESR_EL1, ELR_EL1 and FAR_EL1 of each Watchpoint exception, and against
 * memory (a watched store does not happen before the exception).
 *
 * - registers: 4 watchpoints (ID_AA64DFR0_EL1.WRPs = 3), DBGWVR sign extension from bit 48
 *   with bits [1:0] RES0, DBGWCR RES0 bits, the OS lock after reset (OSLSR_EL1 = 0b1010);
 * - every contiguous BAS at a doubleword-aligned DBGWVR against loads and stores of 1, 2, 4, 8
 *   bytes at every aligned offset, BAS with DBGWVR[2] set (BAS[7:4] ignored), a BAS that is
 *   not one run of ones (its first run), MASK 3..31 (BAS ignored, the address aligned down),
 *   the reserved MASK values 1 and 2;
 * - LSC load / store / both / 0b00, PAC (EL1 only, EL0 only, both) from EL1 and EL0, LDTR/STTR
 *   matching as EL0 accesses, SSC, linked context-ID breakpoints (WT, LBN);
 * - every addressing form: pre-/post-index (the base register is not written back), register
 *   offset, literal, pairs (the first half of an STP is not written either), SIMD multiple and
 *   single structures (a 64-byte ST1 reaching the watched bytes with its last access), load-
 *   and store-exclusive (the store matches as a store only), DC ZVA (a 64-byte block);
 * - what enables them: MDSCR_EL1.MDE, KDE and PSTATE.D at EL1 (not at EL0), the OS lock and
 *   the OS double lock;
 * - the lowest matching address when two watchpoints match one access;
 * - with the MMU on: a watched virtual address and another alias of the same memory, an
 *   unaligned access, a range over two pages mapped apart, and translation changes the board
 *   must follow: a remapped page (TLBI), a page mapped by the data abort handler (no TLBI:
 *   the exception return), a switch of TTBR0, and an EL1-only address watched while EL0 runs
 *   (stored to by the handler of an SVC from EL0);
 * - exactness: an EL0 sequence whose store takes a Watchpoint exception retires the same
 *   number of instructions (PMU, EL0 only) as without the watchpoint.
 *
 * Prints "wp_cases=N" and failures=0 when every check holds (also on QEMU 7.2, whose
 * watchpoints make the same choices; QEMU 7.2 ignores the OS lock, see docs/debug.md). */
#include "board_common.h"

#define MDSCR_KDE (1UL << 13)
#define MDSCR_MDE (1UL << 15)
#define WCR_E 1UL
#define PAC_EL1 (1UL << 1)
#define PAC_EL0 (2UL << 1)
#define PAC_ALL (3UL << 1)
#define LSC_LD (1UL << 3)
#define LSC_ST (2UL << 3)
#define LSC_LDST (3UL << 3)
#define BAS(b) ((u64)(b) << 5)
#define SSC(s) ((u64)(s) << 14)
#define LBN(n) ((u64)(n) << 16)
#define WT (1UL << 20)
#define MASK(m) ((u64)(m) << 24)
#define ESR_WP_CUR 0xD6000022UL /* EC 0x35 (current EL), IL, DFSC 0b100010 */
#define ESR_WP_LOW 0xD2000022UL /* EC 0x34 (lower EL) */
#define WNR 0x40UL
#define SPSR_D (1UL << 9)

/* ---- accessors: each unmasks debug exceptions (PSTATE.D) for its one access at x0 only ------- */
#define ACC(name, insn) ".global " #name "\n" #name ":\n  msr daifclr, #8\n.global " #name "_at\n" #name "_at:\n  " \
    insn "\n  msr daifset, #8\n  ret\n"
__asm__(".text\n"
        ACC(st1, "strb w1, [x0]") ACC(st2, "strh w1, [x0]") ACC(st4, "str w1, [x0]") ACC(st8, "str x1, [x0]")
        ACC(ld1, "ldrb w0, [x0]") ACC(ld2, "ldrh w0, [x0]") ACC(ld4, "ldr w0, [x0]") ACC(ld8, "ldr x0, [x0]")
        ACC(stp16, "stp x1, x1, [x0]") ACC(ldp16, "ldp x0, x1, [x0]")
        ACC(ldtr8, "ldtr x0, [x0]") ACC(sttr8, "sttr x1, [x0]")
        ACC(zva, "dc zva, x0")
        ACC(ld_v1, "ld1 {v0.16b}, [x0]")
        ACC(ld_lane, "ld1 {v0.s}[1], [x0]")
        /* pre-index: x3 = base, written back to x3 + 16 only if the store completes */
        ".global st_pre\nst_pre:\n  msr daifclr, #8\n  mov x3, x0\n.global st_pre_at\nst_pre_at:\n"
        "  str x1, [x3, #16]!\n  msr daifset, #8\n  mov x0, x3\n  ret\n"
        ".global ld_post\nld_post:\n  msr daifclr, #8\n  mov x3, x0\n.global ld_post_at\nld_post_at:\n"
        "  ldr x2, [x3], #24\n  msr daifset, #8\n  mov x0, x3\n  ret\n"
        /* register offset: x0 + 8 * x2 with x2 = 3 */
        ".global st_reg\nst_reg:\n  msr daifclr, #8\n  mov x2, #3\n.global st_reg_at\nst_reg_at:\n"
        "  str x1, [x0, x2, lsl #3]\n  msr daifset, #8\n  ret\n"
        /* 64 bytes from x0: four Q registers filled with the low byte of x1 */
        ".global st_v4\nst_v4:\n  dup v0.16b, w1\n  mov v1.16b, v0.16b\n  mov v2.16b, v0.16b\n  mov v3.16b, v0.16b\n"
        "  msr daifclr, #8\n.global st_v4_at\nst_v4_at:\n  st1 {v0.16b, v1.16b, v2.16b, v3.16b}, [x0]\n  msr daifset, #8\n  ret\n"
        /* an exclusive read-modify-write loop: x1 stored at x0 */
        ".global xchg\nxchg:\n  msr daifclr, #8\n1:\n.global xchg_ld_at\nxchg_ld_at:\n  ldxr x2, [x0]\n"
        ".global xchg_st_at\nxchg_st_at:\n  stxr w3, x1, [x0]\n  cbnz w3, 1b\n  msr daifset, #8\n  mov x0, x2\n  ret\n"
        /* a load from the literal pool */
        ".global ld_lit\nld_lit:\n  msr daifclr, #8\n.global ld_lit_at\nld_lit_at:\n  ldr x0, lit_data\n  msr daifset, #8\n  ret\n"
        ".balign 8\n.global lit_data\nlit_data:\n  .quad 0x0123456789abcdef\n"
        /* EL0: no PSTATE.D there */
        ".global el0_st8\nel0_st8:\n.global el0_st8_at\nel0_st8_at:\n  str x1, [x0]\n  ret\n"
        ".global el0_ld8\nel0_ld8:\n.global el0_ld8_at\nel0_ld8_at:\n  ldr x0, [x0]\n  ret\n"
        /* EL0: asks EL1 for the access (svc_action) */
        ".global el0_svc33\nel0_svc33:\n  svc #0x33\n  ret\n"
        /* EL0, for the count: 6 instructions with the trampoline's SVC */
        ".global el0_seq\nel0_seq:\n  mov x1, #0x77\n.global el0_seq_at\nel0_seq_at:\n  str x1, [x0]\n"
        "  add x2, x2, #1\n  add x2, x2, #1\n  ret\n");

typedef u64 (*acc_fn)(u64 addr, u64 val);
#define DECL(n) u64 n(u64, u64); extern char n##_at[];
DECL(st1) DECL(st2) DECL(st4) DECL(st8) DECL(ld1) DECL(ld2) DECL(ld4) DECL(ld8) DECL(stp16) DECL(ldp16)
DECL(ldtr8) DECL(sttr8) DECL(zva) DECL(ld_v1) DECL(ld_lane) DECL(st_pre) DECL(ld_post) DECL(st_reg) DECL(st_v4)
DECL(ld_lit) DECL(el0_st8) DECL(el0_ld8)
u64 xchg(u64, u64), el0_seq(u64), el0_svc33(u64);
extern char xchg_ld_at[], xchg_st_at[], lit_data[], el0_seq_at[];

struct acc { acc_fn fn; const char *at; u64 size; int store; const char *name; };
static const struct acc STORES[] = { { st1, st1_at, 1, 1, "st1" }, { st2, st2_at, 2, 1, "st2" },
                                     { st4, st4_at, 4, 1, "st4" }, { st8, st8_at, 8, 1, "st8" } };
static const struct acc LOADS[] = { { ld1, ld1_at, 1, 0, "ld1" }, { ld2, ld2_at, 2, 0, "ld2" },
                                    { ld4, ld4_at, 4, 0, "ld4" }, { ld8, ld8_at, 8, 0, "ld8" } };

/* ---- the watchpoint registers ---------------------------------------------------------------- */
static void set_wcr(int n, u64 v)
{
    switch (n) {
    case 0: write_sysreg(dbgwcr0_el1, v); break;
    case 1: write_sysreg(dbgwcr1_el1, v); break;
    case 2: write_sysreg(dbgwcr2_el1, v); break;
    default: write_sysreg(dbgwcr3_el1, v); break;
    }
}

static void set_wvr(int n, u64 v)
{
    switch (n) {
    case 0: write_sysreg(dbgwvr0_el1, v); break;
    case 1: write_sysreg(dbgwvr1_el1, v); break;
    case 2: write_sysreg(dbgwvr2_el1, v); break;
    default: write_sysreg(dbgwvr3_el1, v); break;
    }
}

static void wp_off(void)
{
    for (int n = 0; n < 4; n++)
        set_wcr(n, 0);
    isb();
}

static void wp(int n, u64 wcr, u64 wvr)
{
    set_wvr(n, wvr);
    set_wcr(n, wcr);
    isb();
}

static inline void mask_debug(void) { __asm__ volatile("msr daifset, #8" ::: "memory"); }

/* ---- the handler ------------------------------------------------------------------------------- */
static volatile u64 hits, aborts, h_esr, h_elr, h_far, h_vec, h_spsr, h_x3;
static volatile u8 *probe;
static volatile u64 probe_len;
static volatile u8 h_mem[80];
static void (*abort_fix)(void);
static void (*svc_action)(void);

static void handler(struct exc_frame *f, int vec)
{
    u64 ec = ESR_EC(f->esr);
    if (ec == 0x34 || ec == 0x35) {
        hits++;
        h_esr = f->esr;
        h_elr = f->elr;
        h_far = f->far;
        h_vec = vec;
        h_spsr = f->spsr;
        h_x3 = f->x[3];
        for (u64 i = 0; i < probe_len; i++)
            h_mem[i] = probe[i];
        if (vec >= 8)
            wp_off();               /* from EL0: PSTATE.D would not mask it */
        else
            f->spsr |= SPSR_D;      /* the access completes when it runs again */
        return;
    }
    if (ec == 0x15 && (f->esr & 0xffff) == 0x33 && svc_action) {   /* SVC #0x33 from EL0 */
        svc_action();
        return;
    }
    if (ec == 0x25 && abort_fix) {  /* data abort, current EL: the test maps the page */
        aborts++;
        abort_fix();
        abort_fix = 0;
        return;
    }
    printf("unexpected exception: vector=%d esr=0x%lx elr=0x%lx far=0x%lx\n", vec, f->esr, f->elr, f->far);
    exit(99);
}

/* ---- one access and its expected outcome ------------------------------------------------------------ */
static u64 cases;
static u8 buf[3 * 4096] ALIGNED(4096);
static u8 before[80];

#define EXPECT(cond, ...) do { if (!(cond)) { failures++; printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, what); \
    printf(__VA_ARGS__); printf("\n"); } } while (0)

/* Run fn(addr, val); far = 0: no Watchpoint exception expected, else one with this FAR, ESR
 * esr (WnR added for stores) and ELR at. `snap`/`snap_len`: memory that must be unchanged
 * when the exception is taken. */
static u64 access(const char *what, acc_fn fn, const char *at, u64 addr, u64 val, int store, u64 far, u64 esr,
                  u64 snap, u64 snap_len)
{
    u64 h0 = hits;
    probe = (volatile u8 *)snap;
    probe_len = snap_len;
    for (u64 i = 0; i < snap_len; i++)
        before[i] = ((u8 *)snap)[i];
    u64 r = fn(addr, val);
    mask_debug();
    cases++;
    if (!far) {
        EXPECT(hits == h0, "unexpected hit (far=0x%lx esr=0x%lx) for access 0x%lx", h_far, h_esr, addr);
        return r;
    }
    EXPECT(hits == h0 + 1, "%lu hits for access 0x%lx (expected 1)", hits - h0, addr);
    if (hits != h0 + 1)
        return r;
    EXPECT(h_esr == (esr | (store ? WNR : 0)), "esr=0x%lx", h_esr);
    EXPECT(h_elr == (u64)at, "elr=0x%lx (expected 0x%lx)", h_elr, (u64)at);
    EXPECT(h_far == far, "far=0x%lx (expected 0x%lx)", h_far, far);
    for (u64 i = 0; i < snap_len; i++)
        if (h_mem[i] != before[i]) {
            EXPECT(0, "memory at 0x%lx changed before the exception", snap + i);
            break;
        }
    return r;
}

static u64 max64(u64 a, u64 b) { return a > b ? a : b; }

/* ---- registers and the OS lock ----------------------------------------------------------------------- */
static void t_registers(void)
{
    const char *what = "registers";
    u64 dfr0 = read_sysreg(id_aa64dfr0_el1);
    kv_u64("wrps", ((dfr0 >> 20) & 0xf) + 1);
    kv_u64("brps", ((dfr0 >> 12) & 0xf) + 1);
    EXPECT(read_sysreg(oslsr_el1) == 0xa, "OSLSR_EL1 after reset 0x%lx", read_sysreg(oslsr_el1));
    write_sysreg(oslar_el1, 0);
    isb();
    EXPECT(read_sysreg(oslsr_el1) == 0x8, "OSLSR_EL1 unlocked 0x%lx", read_sysreg(oslsr_el1));
    /* bits [1:0] of DBGWVR are RES0; the RESS bits [63:49] and the RES0 fields of DBGWCR keep
     * what was written (the IMPLEMENTATION DEFINED choice QEMU 7.2 makes) */
    set_wvr(0, 0x0001000000000007UL);
    EXPECT(read_sysreg(dbgwvr0_el1) == 0x0001000000000004UL, "DBGWVR0 0x%lx", read_sysreg(dbgwvr0_el1));
    set_wvr(1, 0xFF00FFFFFFFFFFFFUL);
    EXPECT(read_sysreg(dbgwvr1_el1) == 0xFF00FFFFFFFFFFFCUL, "DBGWVR1 0x%lx", read_sysreg(dbgwvr1_el1));
    set_wcr(2, 0xFFFFFFFFFFFFFFFEUL);
    EXPECT(read_sysreg(dbgwcr2_el1) == 0xFFFFFFFFFFFFFFFEUL, "DBGWCR2 0x%lx", read_sysreg(dbgwcr2_el1));
    for (int n = 0; n < 4; n++) {
        set_wcr(n, 0);
        set_wvr(n, 0);
    }
    write_sysreg(osdlr_el1, 1);
    EXPECT(read_sysreg(osdlr_el1) == 1, "OSDLR_EL1");
    write_sysreg(osdlr_el1, 0);
    write_sysreg(mdscr_el1, MDSCR_MDE | MDSCR_KDE);
    isb();
    EXPECT(read_sysreg(mdscr_el1) == (MDSCR_MDE | MDSCR_KDE), "MDSCR_EL1");
}

/* ---- BAS: every contiguous byte selection against every aligned access ------------------------------- */
static void t_bas(void)
{
    const char *what = "bas";
    u64 base = (u64)buf + 0x100;
    for (int s = 0; s < 8; s++)
        for (int l = 1; s + l <= 8; l++) {
            u64 bas = ((1UL << l) - 1) << s;
            wp(0, WCR_E | PAC_EL1 | LSC_LDST | BAS(bas), base);
            for (int k = 0; k < 4; k++)
                for (int st = 0; st < 2; st++) {
                    const struct acc *a = st ? &STORES[k] : &LOADS[k];
                    for (u64 off = 0; off < 8; off += a->size) {
                        int hit = off < (u64)(s + l) && (u64)s < off + a->size;
                        memset((void *)base, 0xEE, 8);
                        u64 r = access(what, a->fn, a->at, base + off, 0x1122334455667788UL, a->store,
                                       hit ? base + max64(off, s) : 0, ESR_WP_CUR, base, 8);
                        if (a->store)
                            EXPECT(((u8 *)base)[off] == 0x88, "%s at +%lu did not complete", a->name, off);
                        else
                            EXPECT((r & 0xff) == 0xEE, "%s at +%lu read 0x%lx", a->name, off, r);
                    }
                }
        }
    /* DBGWVR[2] set: BAS[7:4] ignored, BAS[3:0] select the bytes of the word */
    wp(0, WCR_E | PAC_EL1 | LSC_LDST | BAS(0xF2), base + 4);
    access(what, ld1, ld1_at, base + 4, 0, 0, 0, 0, 0, 0);
    access(what, ld1, ld1_at, base + 5, 0, 0, base + 5, ESR_WP_CUR, 0, 0);
    access(what, ld1, ld1_at, base + 6, 0, 0, 0, 0, 0, 0);
    access(what, ld8, ld8_at, base, 0, 0, base + 5, ESR_WP_CUR, 0, 0);
    /* not one run of ones: the first run (bytes 1-2) */
    wp(0, WCR_E | PAC_EL1 | LSC_LDST | BAS(0x36), base);
    access(what, ld1, ld1_at, base + 2, 0, 0, base + 2, ESR_WP_CUR, 0, 0);
    access(what, ld1, ld1_at, base + 4, 0, 0, 0, 0, 0, 0);
    /* BAS 0: disabled */
    wp(0, WCR_E | PAC_EL1 | LSC_LDST | BAS(0), base);
    access(what, ld8, ld8_at, base, 0, 0, 0, 0, 0, 0);
    wp_off();
}

/* ---- MASK --------------------------------------------------------------------------------------------- */
static void t_mask(void)
{
    const char *what = "mask";
    u64 base = (u64)buf;
    static const int ms[] = { 3, 4, 8, 12 };
    for (unsigned i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        u64 m = ms[i], len = 1UL << m;
        u64 lo = base + (len == 4096 ? 4096 : 0x400);          /* aligned, inside buf with 8 bytes around */
        wp(0, WCR_E | PAC_EL1 | LSC_ST | MASK(m) | BAS(0xFF), lo + 0x5);  /* low bits of WVR ignored */
        access(what, st1, st1_at, lo - 1, 1, 1, 0, 0, 0, 0);
        access(what, st1, st1_at, lo, 1, 1, lo, ESR_WP_CUR, lo, 1);
        access(what, st8, st8_at, lo + len - 8, 1, 1, lo + len - 8, ESR_WP_CUR, lo + len - 8, 8);
        access(what, st1, st1_at, lo + len, 1, 1, 0, 0, 0, 0);
        /* an STP whose second half reaches the range: neither half is written */
        access(what, stp16, stp16_at, lo - 8, 0x5A5A5A5A5A5A5A5AUL, 1, lo, ESR_WP_CUR, lo - 8, 16);
    }
    /* 2 GiB: everything RAM holds (the RAM base, 0x40000000, is 1 GiB-aligned) */
    wp(0, WCR_E | PAC_EL1 | LSC_ST | MASK(31), base);
    access(what, st8, st8_at, base + 0x800, 1, 1, base + 0x800, ESR_WP_CUR, base + 0x800, 8);
    access(what, ld8, ld8_at, base + 0x800, 0, 0, 0, 0, 0, 0);
    wp_off();
    /* the reserved MASK values 1 and 2 disable it */
    wp(0, WCR_E | PAC_EL1 | LSC_LDST | MASK(1) | BAS(0xFF), base);
    access(what, st8, st8_at, base, 1, 1, 0, 0, 0, 0);
    wp(0, WCR_E | PAC_EL1 | LSC_LDST | MASK(2) | BAS(0xFF), base);
    access(what, st8, st8_at, base, 1, 1, 0, 0, 0, 0);
    wp_off();
}

/* ---- LSC, SSC, linked breakpoints, two watchpoints ------------------------------------------------------ */
static void t_fields(void)
{
    const char *what = "lsc";
    u64 a = (u64)buf + 0x200;
    wp(1, WCR_E | PAC_EL1 | LSC_LD | BAS(0xFF), a);
    access(what, ld8, ld8_at, a, 0, 0, a, ESR_WP_CUR, 0, 0);
    access(what, st8, st8_at, a, 7, 1, 0, 0, 0, 0);
    wp(1, WCR_E | PAC_EL1 | LSC_ST | BAS(0xFF), a);
    access(what, ld8, ld8_at, a, 0, 0, 0, 0, 0, 0);
    access(what, st8, st8_at, a, 7, 1, a, ESR_WP_CUR, a, 8);
    wp(1, WCR_E | PAC_EL1 | BAS(0xFF), a);                         /* LSC 0b00: disabled */
    access(what, ld8, ld8_at, a, 0, 0, 0, 0, 0, 0);
    access(what, st8, st8_at, a, 7, 1, 0, 0, 0, 0);
    wp(1, PAC_EL1 | LSC_LDST | BAS(0xFF), a);                      /* E = 0 */
    access(what, st8, st8_at, a, 7, 1, 0, 0, 0, 0);

    what = "ssc";
    wp(1, WCR_E | PAC_EL1 | LSC_LDST | BAS(0xFF) | SSC(2), a);     /* Secure state only */
    access(what, ld8, ld8_at, a, 0, 0, 0, 0, 0, 0);
    wp(1, WCR_E | PAC_EL1 | LSC_LDST | BAS(0xFF) | SSC(1), a);     /* Non-secure only */
    access(what, ld8, ld8_at, a, 0, 0, a, ESR_WP_CUR, 0, 0);
    wp_off();

    /* two match one access: the lower-numbered one gives FAR */
    what = "two";
    wp(0, WCR_E | PAC_EL1 | LSC_LDST | BAS(0xF0), a);
    wp(3, WCR_E | PAC_EL1 | LSC_LDST | BAS(0x0C), a);
    access(what, st8, st8_at, a, 9, 1, a + 4, ESR_WP_CUR, a, 8);
    access(what, st2, st2_at, a + 2, 9, 1, a + 2, ESR_WP_CUR, a, 8);
    wp_off();
    wp(1, WCR_E | PAC_EL1 | LSC_LDST | BAS(0x0C), a);
    wp(2, WCR_E | PAC_EL1 | LSC_LDST | BAS(0xF0), a);
    access(what, st8, st8_at, a, 9, 1, a + 2, ESR_WP_CUR, a, 8);
    wp_off();

    /* linked to context-ID breakpoint 4 (BT 0b0011): only while CONTEXTIDR_EL1 matches */
    what = "linked";
    write_sysreg(dbgbvr4_el1, 0x1234);
    write_sysreg(dbgbcr4_el1, (3UL << 20) | PAC_ALL | 1);
    write_sysreg(contextidr_el1, 0x1234);
    isb();
    wp(0, WCR_E | PAC_EL1 | LSC_LDST | BAS(0xFF) | WT | LBN(4), a);
    access(what, ld8, ld8_at, a, 0, 0, a, ESR_WP_CUR, 0, 0);
    write_sysreg(contextidr_el1, 0x99);
    isb();
    access(what, ld8, ld8_at, a, 0, 0, 0, 0, 0, 0);
    write_sysreg(contextidr_el1, 0x1234);
    wp(0, WCR_E | PAC_EL1 | LSC_LDST | BAS(0xFF) | WT | LBN(1), a);   /* not a context breakpoint */
    access(what, ld8, ld8_at, a, 0, 0, 0, 0, 0, 0);
    write_sysreg(dbgbcr4_el1, 0);
    write_sysreg(contextidr_el1, 0);
    wp_off();
}

/* ---- addressing forms ---------------------------------------------------------------------------------- */
static void t_forms(void)
{
    const char *what = "forms";
    u64 a = (u64)buf + 0x400;
    wp(2, WCR_E | PAC_EL1 | LSC_LDST | BAS(0xFF), a + 16);
    /* pre-index: the exception comes before the write-back */
    access(what, st_pre, st_pre_at, a, 3, 1, a + 16, ESR_WP_CUR, a + 16, 8);
    EXPECT(h_x3 == a, "pre-index base x3=0x%lx at the exception", h_x3);
    /* post-index: the base is the address */
    u64 r = access(what, ld_post, ld_post_at, a + 16, 0, 0, a + 16, ESR_WP_CUR, 0, 0);
    EXPECT(h_x3 == a + 16, "post-index base x3=0x%lx", h_x3);
    EXPECT(r == a + 40, "post-index write-back after the retry 0x%lx", r);
    /* register offset: a + 8 * 3 misses, a - 8 + 8 * 3 hits */
    access(what, st_reg, st_reg_at, a, 3, 1, 0, 0, 0, 0);
    access(what, st_reg, st_reg_at, a - 8, 3, 1, a + 16, ESR_WP_CUR, a + 16, 8);
    /* pairs */
    access(what, ldp16, ldp16_at, a + 8, 0, 0, a + 16, ESR_WP_CUR, 0, 0);
    access(what, stp16, stp16_at, a + 8, 0x6161616161616161UL, 1, a + 16, ESR_WP_CUR, a + 8, 16);
    access(what, stp16, stp16_at, a + 24, 1, 1, 0, 0, 0, 0);
    /* SIMD: a 64-byte ST1 from a - 40 reaches a + 16 with its last register; one LD1 lane */
    access(what, st_v4, st_v4_at, a - 40, 0x42, 1, a + 16, ESR_WP_CUR, a - 40, 64);
    access(what, ld_v1, ld_v1_at, a + 8, 0, 0, a + 16, ESR_WP_CUR, 0, 0);
    access(what, ld_lane, ld_lane_at, a + 20, 0, 0, a + 20, ESR_WP_CUR, 0, 0);
    access(what, ld_lane, ld_lane_at, a + 24, 0, 0, 0, 0, 0, 0);
    /* exclusives: a store-only watchpoint stops the STXR (before it writes), not the LDXR */
    wp(2, WCR_E | PAC_EL1 | LSC_ST | BAS(0xFF), a + 16);
    *(volatile u64 *)(a + 16) = 5;
    r = access(what, xchg, xchg_st_at, a + 16, 6, 1, a + 16, ESR_WP_CUR, a + 16, 8);
    EXPECT(r == 5 && *(volatile u64 *)(a + 16) == 6, "exclusive exchange: old 0x%lx new 0x%lx", r,
           *(volatile u64 *)(a + 16));
    wp(2, WCR_E | PAC_EL1 | LSC_LD | BAS(0xFF), a + 16);
    access(what, xchg, xchg_ld_at, a + 16, 7, 0, a + 16, ESR_WP_CUR, 0, 0);
    /* DC ZVA: one store of the whole (64-byte) block */
    u64 bs = 4UL << (read_sysreg(dczid_el0) & 0xf);
    kv_u64("dczva_block", bs);
    wp(2, WCR_E | PAC_EL1 | LSC_ST | BAS(0x10), a + 16);
    memset((void *)a, 0x33, bs);
    access(what, zva, zva_at, a + 5, 0, 1, a + 20, ESR_WP_CUR, a, 64);
    EXPECT(((u8 *)a)[20] == 0 && ((u8 *)a)[0] == 0 && ((u8 *)a)[63] == 0, "DC ZVA did not complete");
    wp(2, WCR_E | PAC_EL1 | LSC_LD | BAS(0x10), a + 16);
    access(what, zva, zva_at, a + 5, 0, 1, 0, 0, 0, 0);
    /* load literal */
    wp(2, WCR_E | PAC_EL1 | LSC_LD | BAS(0x80), (u64)lit_data);
    r = access(what, ld_lit, ld_lit_at, 0, 0, 0, (u64)lit_data + 7, ESR_WP_CUR, 0, 0);
    EXPECT(r == 0x0123456789abcdefUL, "literal 0x%lx", r);
    wp_off();
}

/* ---- privilege: PAC from EL1 and EL0, LDTR/STTR ------------------------------------------------------------ */
static u64 el0_addr, el0_r;
static u64 el0_store(u64 v) { return el0_st8(el0_addr, v); }
static u64 el0_load(u64 v) { (void)v; return el0_ld8(el0_addr, 0); }

static void at_el0(const char *what, u64 (*fn)(u64), const char *at, u64 addr, int store, u64 far)
{
    u64 h0 = hits;
    el0_addr = addr;
    el0_r = el0_call(fn, 0x4444, (u64)__el0_stack_top);
    cases++;
    if (!far) {
        EXPECT(hits == h0, "unexpected EL0 hit far=0x%lx", h_far);
        return;
    }
    EXPECT(hits == h0 + 1, "EL0: %lu hits", hits - h0);
    EXPECT(h_esr == (ESR_WP_LOW | (store ? WNR : 0)), "EL0 esr=0x%lx", h_esr);
    EXPECT(h_elr == (u64)at && h_far == far && h_vec == 8 && (h_spsr & 0xf) == 0,
           "EL0 elr=0x%lx far=0x%lx vector=%lu spsr=0x%lx", h_elr, h_far, h_vec, h_spsr);
}

static void t_privilege(void)
{
    const char *what = "pac";
    u64 a = (u64)buf + 0x600;
    static const u64 pacs[] = { PAC_EL1, PAC_EL0, PAC_ALL };
    for (int i = 0; i < 3; i++) {
        u64 pac = pacs[i];
        wp(0, WCR_E | pac | LSC_LDST | BAS(0xFF), a);
        access(what, st8, st8_at, a, 1, 1, pac & PAC_EL1 ? a : 0, ESR_WP_CUR, a, 8);
        access(what, ldtr8, ldtr8_at, a, 0, 0, pac & PAC_EL0 ? a : 0, ESR_WP_CUR, 0, 0);
        access(what, sttr8, sttr8_at, a, 2, 1, pac & PAC_EL0 ? a : 0, ESR_WP_CUR, a, 8);
        at_el0(what, el0_store, el0_st8_at, a, 1, pac & PAC_EL0 ? a : 0);
        wp(0, WCR_E | pac | LSC_LDST | BAS(0xFF), a);
        at_el0(what, el0_load, el0_ld8_at, a, 0, pac & PAC_EL0 ? a : 0);
    }
    wp_off();
}

/* ---- what enables them ----------------------------------------------------------------------------------- */
static void t_enables(void)
{
    const char *what = "enables";
    u64 a = (u64)buf + 0x700;
    wp(0, WCR_E | PAC_ALL | LSC_LDST | BAS(0xFF), a);
    /* PSTATE.D set at EL1: masked */
    u64 h0 = hits;
    __asm__ volatile("msr daifset, #8\n str xzr, [%0]" :: "r"(a) : "memory");
    EXPECT(hits == h0, "PSTATE.D did not mask");
    /* KDE = 0: EL1 accesses do not match, EL0 ones still do */
    write_sysreg(mdscr_el1, MDSCR_MDE);
    isb();
    access(what, st8, st8_at, a, 1, 1, 0, 0, 0, 0);
    at_el0(what, el0_store, el0_st8_at, a, 1, a);
    /* MDE = 0: nothing */
    write_sysreg(mdscr_el1, MDSCR_KDE);
    wp(0, WCR_E | PAC_ALL | LSC_LDST | BAS(0xFF), a);
    access(what, st8, st8_at, a, 1, 1, 0, 0, 0, 0);
    at_el0(what, el0_store, el0_st8_at, a, 1, 0);
    write_sysreg(mdscr_el1, MDSCR_MDE | MDSCR_KDE);
    isb();
    access(what, st8, st8_at, a, 1, 1, a, ESR_WP_CUR, a, 8);
    /* the OS lock */
    write_sysreg(oslar_el1, 1);
    isb();
    EXPECT(read_sysreg(oslsr_el1) == 0xa, "OSLSR_EL1 locked");
    access(what, st8, st8_at, a, 1, 1, 0, 0, 0, 0);
    at_el0(what, el0_store, el0_st8_at, a, 1, 0);
    write_sysreg(oslar_el1, 0);
    isb();
    access(what, st8, st8_at, a, 1, 1, a, ESR_WP_CUR, a, 8);
    /* the OS double lock */
    write_sysreg(osdlr_el1, 1);
    isb();
    access(what, st8, st8_at, a, 1, 1, 0, 0, 0, 0);
    write_sysreg(osdlr_el1, 0);
    isb();
    access(what, ld8, ld8_at, a, 1, 0, a, ESR_WP_CUR, 0, 0);
    wp_off();
}

/* ---- MMU on: aliases, pages mapped apart, translation changes --------------------------------------------- */
#define PTE_TABLE 3UL
#define PTE_PAGE 3UL
#define PTE_BLOCK 1UL
#define PTE_NORMAL ((1UL << 2) | (3UL << 8) | (1UL << 10))   /* AttrIndx 1, inner shareable, AF */
#define PTE_DEVICE (1UL << 10)
#define PTE_EL0_RW (1UL << 6)                                 /* AP[2:1] = 0b01 */
#define WIN 0x80000000UL                  /* a 2 MiB window of 4 KiB pages (level 3) */
#define ALIAS 0x4000000000UL              /* RAM again, as a 1 GiB block (256 GiB) */
static u64 l1a[512] ALIGNED(4096), l1b[512] ALIGNED(4096), l2ram[512] ALIGNED(4096);
static u64 l2a[512] ALIGNED(4096), l2b[512] ALIGNED(4096), l3a[512] ALIGNED(4096), l3b[512] ALIGNED(4096);
static u8 pages[5][4096] ALIGNED(4096);

static void tlbi_all(void) { __asm__ volatile("dsb sy\n tlbi vmalle1\n dsb sy\n isb" ::: "memory"); }
static void tlbi_va(u64 va) { __asm__ volatile("dsb sy\n tlbi vae1, %0\n dsb sy\n isb" :: "r"(va >> 12) : "memory"); }
static void map_win_page0_p0(void) { l3a[0] = (u64)pages[0] | PTE_NORMAL | PTE_PAGE; dsb(); isb(); }
static u64 kvar_hits;
static void kvar_store(void)
{
    u64 h0 = hits;
    access("el1-after-el0", st8, st8_at, (u64)buf + 0xA00, 5, 1, (u64)buf + 0xA00, ESR_WP_CUR, (u64)buf + 0xA00, 8);
    kvar_hits += hits - h0;
}

static void t_mmu(void)
{
    const char *what = "mmu";
    for (int i = 0; i < 512; i++) {
        l1a[i] = l1b[i] = l2a[i] = l2b[i] = l3a[i] = l3b[i] = 0;
        l2ram[i] = (0x40000000UL + ((u64)i << 21)) | PTE_NORMAL | PTE_BLOCK;
    }
    l1a[0] = l1b[0] = 0 | PTE_DEVICE | PTE_BLOCK;
    l1a[1] = l1b[1] = (u64)l2ram | PTE_TABLE;
    l1a[2] = (u64)l2a | PTE_TABLE;
    l1b[2] = (u64)l2b | PTE_TABLE;
    l1a[ALIAS >> 30] = l1b[ALIAS >> 30] = 0x40000000UL | PTE_NORMAL | PTE_BLOCK;
    l2a[0] = (u64)l3a | PTE_TABLE;
    l2b[0] = (u64)l3b | PTE_TABLE;
    l3a[0] = (u64)pages[0] | PTE_NORMAL | PTE_PAGE;
    l3a[1] = (u64)pages[2] | PTE_NORMAL | PTE_PAGE;           /* WIN + 4K: not after pages[0] */
    l3a[3] = (u64)pages[4] | PTE_NORMAL | PTE_PAGE | PTE_EL0_RW; /* WIN + 12K: an EL0 stack */
    l3b[3] = l3a[3];
    l3b[0] = (u64)pages[1] | PTE_NORMAL | PTE_PAGE;
    dsb();
    write_sysreg(mair_el1, 0xff00UL);
    write_sysreg(tcr_el1, 25UL | (1UL << 8) | (1UL << 10) | (3UL << 12) | (1UL << 23) | (2UL << 32));
    write_sysreg(ttbr0_el1, (u64)l1a);
    tlbi_all();
    write_sysreg(sctlr_el1, read_sysreg(sctlr_el1) | 1 | (1 << 2) | (1 << 12));
    isb();

    /* one memory, two virtual addresses: only the watched one matches */
    u64 id = (u64)buf + 0x800, al = ALIAS + (id - 0x40000000UL);
    wp(0, WCR_E | PAC_EL1 | LSC_LDST | BAS(0xFF), id);
    access(what, st8, st8_at, id, 1, 1, id, ESR_WP_CUR, id, 8);
    access(what, st8, st8_at, al, 1, 1, 0, 0, 0, 0);
    wp(0, WCR_E | PAC_EL1 | LSC_LDST | BAS(0xFF), al);
    access(what, st8, st8_at, al, 1, 1, al, ESR_WP_CUR, id, 8);
    access(what, st8, st8_at, id, 1, 1, 0, 0, 0, 0);
    /* unaligned (Normal memory): an 8-byte store 3 bytes below the range */
    access(what, st8, st8_at, al - 3, 0x77, 1, al, ESR_WP_CUR, id - 8, 16);

    /* a 8 KiB range over two pages that are not adjacent in memory */
    wp(0, WCR_E | PAC_EL1 | LSC_LDST | MASK(13), WIN);
    access(what, st8, st8_at, WIN + 0x1008, 1, 1, WIN + 0x1008, ESR_WP_CUR, (u64)pages[2] + 8, 8);
    access(what, st8, st8_at, (u64)pages[2] + 8, 1, 1, 0, 0, 0, 0);
    access(what, ld8, ld8_at, WIN + 8, 0, 0, WIN + 8, ESR_WP_CUR, 0, 0);

    /* remapped with TLBI: the watched address now reaches pages[3] */
    wp(0, WCR_E | PAC_EL1 | LSC_LDST | BAS(0xFF), WIN + 0x10);
    access(what, st8, st8_at, WIN + 0x10, 1, 1, WIN + 0x10, ESR_WP_CUR, (u64)pages[0] + 0x10, 8);
    l3a[0] = (u64)pages[3] | PTE_NORMAL | PTE_PAGE;
    tlbi_va(WIN);
    access(what, st8, st8_at, WIN + 0x10, 2, 1, WIN + 0x10, ESR_WP_CUR, (u64)pages[3] + 0x10, 8);
    EXPECT(*(volatile u64 *)((u64)pages[3] + 0x10) == 2, "remapped store went elsewhere");
    access(what, st8, st8_at, (u64)pages[0] + 0x10, 1, 1, 0, 0, 0, 0);
    access(what, st8, st8_at, (u64)pages[3] + 0x10, 1, 1, 0, 0, 0, 0);

    /* unmapped: the data abort handler maps it (no TLBI), the retried store matches */
    l3a[0] = 0;
    tlbi_va(WIN);
    u64 a0 = aborts;
    abort_fix = map_win_page0_p0;
    access(what, st8, st8_at, WIN + 0x10, 3, 1, WIN + 0x10, ESR_WP_CUR, (u64)pages[0] + 0x10, 8);
    EXPECT(aborts == a0 + 1, "%lu data aborts", aborts - a0);
    EXPECT(*(volatile u64 *)((u64)pages[0] + 0x10) == 3, "store after mapping");

    /* another TTBR0: the same watched address, other memory */
    write_sysreg(ttbr0_el1, (u64)l1b);
    tlbi_all();
    access(what, st8, st8_at, WIN + 0x10, 4, 1, WIN + 0x10, ESR_WP_CUR, (u64)pages[1] + 0x10, 8);
    EXPECT(*(volatile u64 *)((u64)pages[1] + 0x10) == 4, "store through TTBR0 b");
    access(what, st8, st8_at, (u64)pages[0] + 0x10, 1, 1, 0, 0, 0, 0);
    write_sysreg(ttbr0_el1, (u64)l1a);
    tlbi_all();
    access(what, ld8, ld8_at, WIN + 0x10, 0, 0, WIN + 0x10, ESR_WP_CUR, 0, 0);
    wp_off();

    /* an EL1-only address watched while EL0 runs (EL0 cannot translate it): an SVC from EL0,
     * taken without the board, then the store at EL1 */
    wp(0, WCR_E | PAC_EL1 | LSC_LDST | BAS(0xFF), (u64)buf + 0xA00);
    svc_action = kvar_store;
    el0_call(el0_svc33, 0, WIN + 0x4000);
    svc_action = 0;
    EXPECT(kvar_hits == 1, "EL1 store after EL0: %lu hits", kvar_hits);
    wp_off();

    write_sysreg(sctlr_el1, read_sysreg(sctlr_el1) & ~1UL);
    isb();
    tlbi_all();
}

/* ---- exactness: the store that takes the exception retires once, after it ----------------------------------- */
static u64 el0_retired(u64 addr)
{
    pmu_reset();
    pmu_write_type(0, EV_INST_RETIRED | PMEVTYPER_P);      /* EL0 only */
    write_sysreg(pmcntenset_el0, 1);
    pmcr_write(PMCR_E);
    el0_call(el0_seq, addr, (u64)__el0_stack_top);
    pmcr_write(0);
    return pmu_read_counter(0);
}

static void t_count(void)
{
    const char *what = "count";
    u64 a = (u64)buf + 0x900;
    u64 plain = el0_retired(a);
    wp(0, WCR_E | PAC_EL0 | LSC_ST | BAS(0xFF), a);
    u64 h0 = hits;
    u64 watched = el0_retired(a);
    EXPECT(hits == h0 + 1 && h_elr == (u64)el0_seq_at, "EL0 sequence: %lu hits, elr=0x%lx", hits - h0, h_elr);
    EXPECT(plain == 6 && watched == 6, "EL0 instructions retired: %lu without, %lu with the watchpoint",
           plain, watched);
    kv_u64("el0_retired_plain", plain);
    kv_u64("el0_retired_watched", watched);
    wp_off();
}

int main(void)
{
    set_sync_handler(handler);
    t_registers();
    t_bas();
    t_mask();
    t_fields();
    t_forms();
    t_privilege();
    t_enables();
    t_mmu();
    t_count();
    kv_u64("wp_cases", cases);
    kv_u64("wp_hits", hits);
    return report();
}
