/* vpmu guest runtime: UART output, printf, key=value results, semihosting exit, PSCI,
 * exception dispatch, GICv3, PMU helpers, and a tiny device-tree reader. */
#include "vpmu.h"
#include <stdarg.h>

#define UART0 0x09000000UL
#define UARTDR 0x00
#define UARTFR 0x18
#define UARTFR_TXFF (1u << 5)

u64 boot_dtb;
u64 boot_regs[5];
u64 failures;

void putc(int c)
{
    volatile u32 *fr = (volatile u32 *)(UART0 + UARTFR);
    while (*fr & UARTFR_TXFF)
        ;
    *(volatile u32 *)(UART0 + UARTDR) = (u32)c;
}

void puts(const char *s) { while (*s) putc(*s++); }

static void put_u(u64 v, int base, int width, int zero, int left)
{
    char buf[24];
    int n = 0;
    do { u64 d = v % base; buf[n++] = d < 10 ? '0' + d : 'a' + d - 10; v /= base; } while (v);
    int pad = width > n ? width - n : 0;
    if (!left)
        while (n < width) buf[n++] = zero ? '0' : ' ';
    while (n) putc(buf[--n]);
    if (left)
        while (pad--) putc(' ');
}

static void put_s(const char *s, int width, int left)
{
    int n = 0;
    while (s[n]) n++;
    if (!left) for (int i = n; i < width; i++) putc(' ');
    puts(s);
    if (left) for (int i = n; i < width; i++) putc(' ');
}

void printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    for (; *fmt; fmt++) {
        if (*fmt != '%') { putc(*fmt); continue; }
        fmt++;
        int zero = 0, width = 0, lng = 0, left = 0;
        if (*fmt == '-') { left = 1; fmt++; }
        if (*fmt == '0') { zero = 1; fmt++; }
        while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (*fmt++ - '0');
        while (*fmt == 'l') { lng++; fmt++; }
        switch (*fmt) {
        case 'd': case 'i': {
            s64 v = lng ? va_arg(ap, s64) : va_arg(ap, int);
            if (v < 0) { putc('-'); v = -v; }
            put_u((u64)v, 10, width, zero, left);
            break;
        }
        case 'u': put_u(lng ? va_arg(ap, u64) : va_arg(ap, unsigned), 10, width, zero, left); break;
        case 'x': put_u(lng ? va_arg(ap, u64) : va_arg(ap, unsigned), 16, width, zero, left); break;
        case 'p': puts("0x"); put_u((u64)va_arg(ap, void *), 16, width, zero, left); break;
        case 's': { const char *s = va_arg(ap, const char *); put_s(s ? s : "(null)", width, left); break; }
        case 'c': putc(va_arg(ap, int)); break;
        case '%': putc('%'); break;
        default: putc('%'); putc(*fmt); break;
        }
    }
    va_end(ap);
}

void kv_u64(const char *key, u64 v) { puts(key); putc('='); put_u(v, 10, 0, 0, 0); putc('\n'); }
void kv_hex(const char *key, u64 v) { puts(key); puts("=0x"); put_u(v, 16, 0, 0, 0); putc('\n'); }
void kv_str(const char *key, const char *v) { puts(key); putc('='); puts(v); putc('\n'); }

int report(void)
{
    kv_u64("failures", failures);
    return failures ? 1 : 0;
}

static u64 semihost(u64 op, u64 arg)
{
    register u64 x0 __asm__("x0") = op;
    register u64 x1 __asm__("x1") = arg;
    __asm__ volatile("hlt #0xf000" : "+r"(x0) : "r"(x1) : "memory");
    return x0;
}

void exit(int code)
{
    u64 block[2] = { 0x20026, (u64)(unsigned)code };   /* ADP_Stopped_ApplicationExit */
    semihost(0x20, (u64)block);                        /* SYS_EXIT_EXTENDED */
    for (;;)
        ;
}

u64 smccc(u64 fid, u64 a1, u64 a2, u64 a3)
{
    register u64 x0 __asm__("x0") = fid;
    register u64 x1 __asm__("x1") = a1;
    register u64 x2 __asm__("x2") = a2;
    register u64 x3 __asm__("x3") = a3;
    __asm__ volatile("hvc #0" : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3) :: "memory");
    return x0;
}

void psci_system_off(void)
{
    smccc(0x84000008, 0, 0, 0);
    for (;;)
        ;
}

void *memset(void *d, int c, unsigned long n) { u8 *p = d; while (n--) *p++ = (u8)c; return d; }
void *memcpy(void *d, const void *s, unsigned long n) { u8 *p = d; const u8 *q = s; while (n--) *p++ = *q++; return d; }
int strcmp(const char *a, const char *b) { while (*a && *a == *b) { a++; b++; } return (u8)*a - (u8)*b; }

/* ---- exceptions ------------------------------------------------------------------------ */
static void default_sync(struct exc_frame *f, int vec)
{
    printf("unexpected exception: vector=%d esr=0x%lx elr=0x%lx far=0x%lx\n", vec, f->esr, f->elr, f->far);
    exit(99);
}

static void default_irq(struct exc_frame *f, int vec)
{
    printf("unexpected interrupt: vector=%d elr=0x%lx\n", vec, f->elr);
    exit(98);
}

static exc_handler_t sync_handler = default_sync, irq_handler = default_irq;
void set_sync_handler(exc_handler_t h) { sync_handler = h ? h : default_sync; }
void set_irq_handler(exc_handler_t h) { irq_handler = h ? h : default_irq; }

extern void el0_call_return(u64 value) __attribute__((noreturn));

void exc_dispatch(struct exc_frame *f, int vec)
{
    int kind = vec & 3;
    /* SVC #0xffff from EL0: the end of an el0_call */
    if (kind == 0 && vec >= 8 && ESR_EC(f->esr) == 0x15 && (f->esr & 0xffff) == 0xffff)
        el0_call_return(f->x[0]);
    if (kind == 1)
        irq_handler(f, vec);
    else
        sync_handler(f, vec);
}

/* ---- GICv3 -------------------------------------------------------------------------------- */
#define GICD_CTLR 0x0000
#define GICR_WAKER 0x0014
#define GICR_IGROUPR0 0x0080
#define GICR_ISENABLER0 0x0100
#define GICR_ICENABLER0 0x0180
#define GICR_IPRIORITYR 0x0400
#define GICD_IGROUPR 0x0080
#define GICD_ISENABLER 0x0100
#define GICD_ICENABLER 0x0180
#define GICD_IPRIORITYR 0x0400
#define GICD_IROUTER 0x6000
#define W32(a) (*(volatile u32 *)(a))
#define W8(a) (*(volatile u8 *)(a))
#define W64(a) (*(volatile u64 *)(a))

void gic_init(void)
{
    W32(GICR_BASE + GICR_WAKER) &= ~2u;                    /* ProcessorSleep = 0 */
    while (W32(GICR_BASE + GICR_WAKER) & 4u)               /* ChildrenAsleep */
        ;
    W32(GICD_BASE + GICD_CTLR) = (1u << 4) | (1u << 1);    /* ARE, EnableGrp1 */
    write_sysreg(S3_0_C12_C12_5, read_sysreg(S3_0_C12_C12_5) | 1);   /* ICC_SRE_EL1.SRE */
    isb();
    write_sysreg(S3_0_C4_C6_0, 0xf0);                      /* ICC_PMR_EL1 */
    write_sysreg(S3_0_C12_C12_3, 0);                       /* ICC_BPR1_EL1 */
    write_sysreg(S3_0_C12_C12_7, 1);                       /* ICC_IGRPEN1_EL1 */
    isb();
}

void gic_enable_irq(u32 intid, u8 prio)
{
    if (intid < 32) {
        W32(GICR_SGI_BASE + GICR_IGROUPR0) |= 1u << intid;
        W8(GICR_SGI_BASE + GICR_IPRIORITYR + intid) = prio;
        W32(GICR_SGI_BASE + GICR_ISENABLER0) = 1u << intid;
    } else {
        W32(GICD_BASE + GICD_IGROUPR + 4 * (intid / 32)) |= 1u << (intid % 32);
        W8(GICD_BASE + GICD_IPRIORITYR + intid) = prio;
        W64(GICD_BASE + GICD_IROUTER + 8 * intid) = 0;
        W32(GICD_BASE + GICD_ISENABLER + 4 * (intid / 32)) = 1u << (intid % 32);
    }
    dsb();
}

void gic_disable_irq(u32 intid)
{
    if (intid < 32)
        W32(GICR_SGI_BASE + GICR_ICENABLER0) = 1u << intid;
    else
        W32(GICD_BASE + GICD_ICENABLER + 4 * (intid / 32)) = 1u << (intid % 32);
    dsb();
}

/* ---- PMU ----------------------------------------------------------------------------------- */
void pmu_reset(void)
{
    write_sysreg(pmcr_el0, PMCR_LC | PMCR_C | PMCR_P);
    write_sysreg(pmcntenclr_el0, ~0UL);
    write_sysreg(pmintenclr_el1, ~0UL);
    write_sysreg(pmovsclr_el0, ~0UL);
    isb();
}

int pmu_event_supported(u64 ev)
{
    u64 p0 = read_sysreg(pmceid0_el0), p1 = read_sysreg(pmceid1_el0);
    if (ev < 32) return (p0 >> ev) & 1;
    if (ev < 64) return (p1 >> (ev - 32)) & 1;
    if (ev >= 0x4000 && ev < 0x4020) return (p0 >> (32 + ev - 0x4000)) & 1;
    if (ev >= 0x4020 && ev < 0x4040) return (p1 >> (32 + ev - 0x4020)) & 1;
    return 0;
}

/* ---- MMU ----------------------------------------------------------------------------------- */
static u64 l1_table[512] ALIGNED(4096);

void mmu_enable(u64 alias_va)
{
    /* MAIR: attr0 = Device-nGnRnE (0x00), attr1 = Normal WB RW-allocate (0xff) */
    write_sysreg(mair_el1, 0xff00UL);
    for (int i = 0; i < 512; i++)
        l1_table[i] = 0;
    /* level-1 block descriptors: bits[1:0] = 01, AttrIndx [4:2], AF bit 10, SH [9:8] */
    l1_table[0] = 0x0UL | (0 << 2) | (1 << 10) | 1;                              /* devices */
    for (u64 g = 1; g < 4; g++)
        l1_table[g] = (g << 30) | (1 << 2) | (3 << 8) | (1 << 10) | 1;           /* RAM */
    if (alias_va && (alias_va & ((1UL << 30) - 1)) == 0 && (alias_va >> 30) < 512)
        l1_table[alias_va >> 30] = 0x40000000UL | (1 << 2) | (3 << 8) | (1 << 10) | 1;
    dsb();
    /* TCR: T0SZ = 25 (39-bit), IRGN0/ORGN0 WB, SH0 inner, TG0 4K, EPD1 (no TTBR1 walks), IPS 40-bit */
    write_sysreg(tcr_el1, 25UL | (1UL << 8) | (1UL << 10) | (3UL << 12) | (1UL << 23) | (2UL << 32));
    write_sysreg(ttbr0_el1, (u64)l1_table);
    isb();
    __asm__ volatile("tlbi vmalle1\n dsb sy\n isb" ::: "memory");
    u64 sctlr = read_sysreg(sctlr_el1);
    write_sysreg(sctlr_el1, sctlr | 1 | (1 << 2) | (1 << 12));                  /* M, C, I */
    isb();
}

void mmu_disable(void)
{
    write_sysreg(sctlr_el1, read_sysreg(sctlr_el1) & ~1UL);
    isb();
}

/* ---- flattened device tree ------------------------------------------------------------------- */
#define FDT_MAGIC 0xd00dfeed
#define FDT_BEGIN_NODE 1
#define FDT_END_NODE 2
#define FDT_PROP 3
#define FDT_NOP 4
#define FDT_END 9

int fdt_valid(u64 dtb) { return dtb && be32((void *)dtb) == FDT_MAGIC; }

static const char *fdt_strings(u64 dtb) { return (const char *)(dtb + be32((u8 *)dtb + 12)); }
static const u8 *fdt_struct(u64 dtb) { return (const u8 *)(dtb + be32((u8 *)dtb + 8)); }

static int fdt_next_prop(u64 dtb, int off, int *end)
{
    /* off points at a token inside a node; skip to the next FDT_PROP of the same node */
    const u8 *s = fdt_struct(dtb);
    for (;;) {
        u32 tok = be32(s + off);
        if (tok == FDT_PROP) return off;
        if (tok == FDT_NOP) { off += 4; continue; }
        *end = 1;
        return -1;
    }
}

const void *fdt_getprop(u64 dtb, int node, const char *name, u32 *len)
{
    const u8 *s = fdt_struct(dtb);
    const char *strs = fdt_strings(dtb);
    int off = node + 4;
    while (s[off]) off++;
    off = (off + 4) & ~3;                               /* past the NUL-terminated node name */
    int end = 0;
    while ((off = fdt_next_prop(dtb, off, &end)) >= 0) {
        u32 plen = be32(s + off + 4), nameoff = be32(s + off + 8);
        if (strcmp(strs + nameoff, name) == 0) {
            if (len) *len = plen;
            return s + off + 12;
        }
        off += 12 + ((plen + 3) & ~3u);
    }
    return 0;
}

static int list_contains(const char *list, u32 len, const char *want)
{
    u32 i = 0;
    while (i < len) {
        if (strcmp(list + i, want) == 0) return 1;
        while (i < len && list[i]) i++;
        i++;
    }
    return 0;
}

int fdt_find_compatible(u64 dtb, const char *compat)
{
    if (!fdt_valid(dtb)) return -1;
    const u8 *s = fdt_struct(dtb);
    int off = 0;
    for (;;) {
        u32 tok = be32(s + off);
        if (tok == FDT_END) return -1;
        if (tok == FDT_BEGIN_NODE) {
            u32 len;
            const char *c = fdt_getprop(dtb, off, "compatible", &len);
            if (c && list_contains(c, len, compat)) return off;
            off += 4;
            while (s[off]) off++;
            off = (off + 4) & ~3;
        } else if (tok == FDT_PROP) {
            off += 12 + ((be32(s + off + 4) + 3) & ~3u);
        } else {
            off += 4;
        }
    }
}
