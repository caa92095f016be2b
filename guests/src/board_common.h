/* Helpers shared by the board_* guests (the board's own test guests): raw semihosting
 * calls, the semihosting command line, and small inline-asm accessors.
 *
 * Everything here also works on qemu-system-aarch64 -M virt,gic-version=3 -semihosting.
 * The command line comes from SYS_GET_CMDLINE: QEMU returns "KERNEL-PATH ARGS" (the -kernel
 * file name, then -append), vpmu returns "ARGS" (--append), so guests look for
 * "key=value" tokens anywhere on the line and ignore everything else. */
#ifndef BOARD_COMMON_H
#define BOARD_COMMON_H
#include "vpmu.h"

#define SEMI_WRITEC 0x03
#define SEMI_WRITE0 0x04
#define SEMI_WRITE 0x05
#define SEMI_OPEN 0x01
#define SEMI_EXIT 0x18
#define SEMI_EXIT_EXTENDED 0x20
#define SEMI_GET_CMDLINE 0x15
#define ADP_STOPPED_APPLICATION_EXIT 0x20026
#define ADP_STOPPED_RUNTIME_ERROR 0x20023

#define PSCI_VERSION 0x84000000UL
#define PSCI_CPU_OFF 0x84000002UL
#define PSCI_CPU_ON64 0xC4000003UL
#define PSCI_AFFINITY_INFO64 0xC4000004UL
#define PSCI_MIGRATE_INFO_TYPE 0x84000006UL
#define PSCI_SYSTEM_OFF 0x84000008UL
#define PSCI_SYSTEM_RESET 0x84000009UL
#define PSCI_FEATURES 0x8400000AUL
#define SMCCC_VERSION 0x80000000UL
#define SMCCC_ARCH_FEATURES 0x80000001UL

/* ICC_* by encoding (the assembler does not need GIC support enabled) */
#define ICC_PMR_EL1 S3_0_C4_C6_0
#define ICC_IAR1_EL1 S3_0_C12_C12_0
#define ICC_EOIR1_EL1 S3_0_C12_C12_1
#define ICC_HPPIR1_EL1 S3_0_C12_C12_2
#define ICC_RPR_EL1 S3_0_C12_C11_3
#define ICC_SGI1R_EL1 S3_0_C12_C11_5
#define GICR_ISPENDR0 0x0200
#define GICR_ICPENDR0 0x0280

static inline __attribute__((unused)) u64 semi_call(u64 op, u64 arg)
{
    register u64 x0 __asm__("x0") = op;
    register u64 x1 __asm__("x1") = arg;
    __asm__ volatile("hlt #0xf000" : "+r"(x0) : "r"(x1) : "memory");
    return x0;
}

static inline __attribute__((unused)) u64 read_sp(void)
{
    u64 v;
    __asm__ volatile("mov %0, sp" : "=r"(v));
    return v;
}

static char board_cmdline_buf[512];

/* The semihosting command line ("" if the call fails). */
static inline __attribute__((unused)) const char *board_cmdline(void)
{
    u64 block[2] = { (u64)board_cmdline_buf, sizeof board_cmdline_buf };
    if (semi_call(SEMI_GET_CMDLINE, (u64)block) != 0)
        board_cmdline_buf[0] = 0;
    return board_cmdline_buf;
}

/* Token "key=value" on the command line: returns a pointer to value (up to the next
 * blank) or 0. */
static inline __attribute__((unused)) const char *board_arg(const char *key)
{
    const char *s = board_cmdline();
    while (*s) {
        while (*s == ' ') s++;
        const char *k = key, *t = s;
        while (*k && *t == *k) { k++; t++; }
        if (!*k && *t == '=')
            return t + 1;
        while (*s && *s != ' ') s++;
    }
    return 0;
}

static inline __attribute__((unused)) int board_arg_is(const char *key, const char *value)
{
    const char *v = board_arg(key);
    if (!v) return 0;
    while (*value && *v == *value) { v++; value++; }
    return !*value && (*v == 0 || *v == ' ');
}

/* Numeric "key=N" (decimal or 0x-hex); returns 1 and stores N if present. */
static inline __attribute__((unused)) int board_arg_u64(const char *key, u64 *out)
{
    const char *v = board_arg(key);
    if (!v) return 0;
    u64 n = 0, base = 10;
    if (v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) { base = 16; v += 2; }
    for (; *v && *v != ' '; v++) {
        u64 d;
        if (*v >= '0' && *v <= '9') d = *v - '0';
        else if (base == 16 && *v >= 'a' && *v <= 'f') d = *v - 'a' + 10;
        else if (base == 16 && *v >= 'A' && *v <= 'F') d = *v - 'A' + 10;
        else return 0;
        n = n * base + d;
    }
    *out = n;
    return 1;
}

#endif
