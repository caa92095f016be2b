/* vpmu guest runtime: bare-metal AArch64 helpers for QEMU virt-compatible boards.
 * Output: PL011 UART at 0x0900_0000.  Exit: semihosting SYS_EXIT_EXTENDED.
 * Results are printed as "key=value" lines (kv_*), which tests parse. */
#ifndef VPMU_H
#define VPMU_H

typedef unsigned long u64;
typedef unsigned int u32;
typedef unsigned short u16;
typedef unsigned char u8;
typedef long s64;
typedef int s32;

#define NOINLINE __attribute__((noinline))
#define ALIGNED(n) __attribute__((aligned(n)))

#define read_sysreg(r) ({ u64 __v; __asm__ volatile("mrs %0, " #r : "=r"(__v)); __v; })
#define write_sysreg(r, v) do { u64 __v = (u64)(v); __asm__ volatile("msr " #r ", %0" :: "r"(__v)); } while (0)
#define isb() __asm__ volatile("isb" ::: "memory")
#define dsb() __asm__ volatile("dsb sy" ::: "memory")
#define barrier() __asm__ volatile("" ::: "memory")

static inline void irq_enable(void) { __asm__ volatile("msr daifclr, #2" ::: "memory"); }
static inline void irq_disable(void) { __asm__ volatile("msr daifset, #2" ::: "memory"); }
static inline void wfi(void) { __asm__ volatile("wfi" ::: "memory"); }
static inline u64 current_el(void) { return (read_sysreg(CurrentEL) >> 2) & 3; }

/* ---- output ------------------------------------------------------------------------- */
void putc(int c);
void puts(const char *s);                 /* no newline added */
void printf(const char *fmt, ...);        /* %d %i %u %x %lx %lu %ld %s %c %p %%; flags '-' '0', width */
void kv_u64(const char *key, u64 v);      /* "key=<decimal>\n" */
void kv_hex(const char *key, u64 v);      /* "key=0x<hex>\n" */
void kv_str(const char *key, const char *v);
void exit(int code) __attribute__((noreturn));       /* semihosting SYS_EXIT_EXTENDED */
void psci_system_off(void) __attribute__((noreturn));
u64 smccc(u64 fid, u64 a1, u64 a2, u64 a3);          /* HVC #0 */
void *memset(void *d, int c, unsigned long n);
void *memcpy(void *d, const void *s, unsigned long n);
int strcmp(const char *a, const char *b);
extern u64 boot_dtb;                      /* x0 at entry (device tree for Image/flat boots) */
extern u64 boot_regs[5];                  /* x0..x4 at entry */
extern u64 failures;
#define CHECK(cond) do { if (!(cond)) { failures++; printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); } } while (0)
#define CHECK_EQ(a, b) do { u64 __a = (u64)(a), __b = (u64)(b); if (__a != __b) { failures++; \
    printf("FAIL %s:%d: %s == %s (0x%lx != 0x%lx)\n", __FILE__, __LINE__, #a, #b, __a, __b); } } while (0)
int report(void);                         /* prints failures=N, returns 0 iff none */

/* ---- exceptions ---------------------------------------------------------------------- */
struct exc_frame { u64 x[31]; u64 sp_el0; u64 elr; u64 spsr; u64 esr; u64 far; };
/* vector index: 0-3 current EL SP0, 4-7 current EL SPx, 8-11 lower EL AArch64, 12-15 AArch32;
 * within each group: 0 sync, 1 IRQ, 2 FIQ, 3 SError */
typedef void (*exc_handler_t)(struct exc_frame *f, int vec);
void set_sync_handler(exc_handler_t h);   /* default: print and exit(99) */
void set_irq_handler(exc_handler_t h);    /* default: print and exit(98) */
#define ESR_EC(esr) (((esr) >> 26) & 0x3f)
#define ESR_ISS(esr) ((esr) & 0x1ffffff)
u64 el0_call(u64 (*fn)(u64), u64 arg, u64 sp_el0);  /* run fn(arg) at EL0 */
extern char __el0_stack_top[];

/* ---- GICv3 --------------------------------------------------------------------------- */
#define GICD_BASE 0x08000000UL
#define GICR_BASE 0x080A0000UL
#define GICR_SGI_BASE (GICR_BASE + 0x10000)
void gic_init(void);                      /* wake redistributor, enable Group 1, PMR = 0xf0 */
void gic_enable_irq(u32 intid, u8 prio);  /* PPI/SGI via redistributor, SPI via distributor */
void gic_disable_irq(u32 intid);
static inline u32 gic_ack(void) { return (u32)read_sysreg(S3_0_C12_C12_0); }          /* ICC_IAR1_EL1 */
static inline void gic_eoi(u32 intid) { write_sysreg(S3_0_C12_C12_1, intid); isb(); } /* ICC_EOIR1_EL1 */
static inline void gic_send_sgi(u32 intid) { write_sysreg(S3_0_C12_C11_5, ((u64)intid << 24) | 1); isb(); }

/* ---- PMU ----------------------------------------------------------------------------- */
#define PMCR_E (1u << 0)
#define PMCR_P (1u << 1)
#define PMCR_C (1u << 2)
#define PMCR_LC (1u << 6)
#define PMCR_LP (1u << 7)
#define PMEVTYPER_P (1u << 31)
#define PMEVTYPER_U (1u << 30)
#define EV_SW_INCR 0x00
#define EV_L1I_CACHE_REFILL 0x01
#define EV_L1D_CACHE_REFILL 0x03
#define EV_L1D_CACHE 0x04
#define EV_LD_RETIRED 0x06
#define EV_ST_RETIRED 0x07
#define EV_INST_RETIRED 0x08
#define EV_EXC_TAKEN 0x09
#define EV_EXC_RETURN 0x0A
#define EV_CID_WRITE_RETIRED 0x0B
#define EV_PC_WRITE_RETIRED 0x0C
#define EV_BR_IMMED_RETIRED 0x0D
#define EV_BR_RETURN_RETIRED 0x0E
#define EV_UNALIGNED_LDST_RETIRED 0x0F
#define EV_BR_MIS_PRED 0x10
#define EV_CPU_CYCLES 0x11
#define EV_BR_PRED 0x12
#define EV_MEM_ACCESS 0x13
#define EV_L1I_CACHE 0x14
#define EV_L1D_CACHE_WB 0x15
#define EV_INST_SPEC 0x1B
#define EV_TTBR_WRITE_RETIRED 0x1C
#define EV_CHAIN 0x1E
#define EV_BR_RETIRED 0x21
#define EV_BR_MIS_PRED_RETIRED 0x22
#define EV_STALL_FRONTEND 0x23
#define EV_STALL_BACKEND 0x24
#define EV_OP_RETIRED 0x3A
#define EV_OP_SPEC 0x3B
#define EV_STALL 0x3C
#define EV_CNT_CYCLES 0x4004
#define EV_PMU_OVFS 0x400D

static inline u64 pmcr_read(void) { return read_sysreg(pmcr_el0); }
static inline void pmcr_write(u64 v) { write_sysreg(pmcr_el0, v); isb(); }
static inline u64 pmu_n(void) { return (pmcr_read() >> 11) & 0x1f; }
static inline u64 pmuver(void) { return (read_sysreg(id_aa64dfr0_el1) >> 8) & 0xf; }
/* PMEVCNTR<n> / PMEVTYPER<n> through PMSELR (n = 31: cycle counter / PMCCFILTR) */
static inline void pmu_select(u64 n) { write_sysreg(pmselr_el0, n); isb(); }
static inline u64 pmu_read_counter(u64 n) { pmu_select(n); return read_sysreg(pmxevcntr_el0); }
static inline void pmu_write_counter(u64 n, u64 v) { pmu_select(n); write_sysreg(pmxevcntr_el0, v); }
static inline void pmu_write_type(u64 n, u64 v) { pmu_select(n); write_sysreg(pmxevtyper_el0, v); }
static inline u64 pmu_read_type(u64 n) { pmu_select(n); return read_sysreg(pmxevtyper_el0); }
void pmu_reset(void);                     /* E=0, counters and cycle counter 0, all enables/overflows clear */
int pmu_event_supported(u64 event);       /* from PMCEID0/1 */

/* ---- generic timer ------------------------------------------------------------------- */
static inline u64 cntvct(void) { isb(); return read_sysreg(cntvct_el0); }
static inline u64 cntfrq(void) { return read_sysreg(cntfrq_el0); }

/* ---- MMU ----------------------------------------------------------------------------- */
/* Identity map with 4 KiB granule, 39-bit VAs, 1 GiB blocks: [0, 1 GiB) Device-nGnRnE,
 * [1 GiB, 4 GiB) Normal write-back; plus `alias_va` -> RAM base as a 1 GiB Normal block
 * when alias_va is a non-zero multiple of 1 GiB below 512 GiB.  Turns on M, C, I. */
void mmu_enable(u64 alias_va);
void mmu_disable(void);

/* ---- device tree --------------------------------------------------------------------- */
/* Minimal flattened-device-tree reader over the blob at `dtb` (big-endian FDT format). */
int fdt_valid(u64 dtb);
/* Find the first node whose "compatible" list contains `compat`; returns its offset or -1. */
int fdt_find_compatible(u64 dtb, const char *compat);
/* Property `name` of the node at `node`: pointer to its value and length (or 0). */
const void *fdt_getprop(u64 dtb, int node, const char *name, u32 *len);
static inline u32 be32(const void *p) { const u8 *b = p; return ((u32)b[0] << 24) | ((u32)b[1] << 16) | ((u32)b[2] << 8) | b[3]; }
static inline u64 be64(const void *p) { return ((u64)be32(p) << 32) | be32((const u8 *)p + 4); }

#endif
