/* Semihosting console output: SYS_WRITEC, SYS_WRITE0, SYS_WRITE to the handles that
 * SYS_OPEN(":tt") returns ("w" = standard output, "a" = standard error, Arm semihosting
 * spec 6.1 SYS_OPEN), with the return values the spec defines (SYS_WRITE: bytes NOT
 * written).  Handles are used as returned (QEMU allocates them; vpmu has fixed ones). */
#include "board_common.h"

static u64 sys_open(const char *name, u64 mode, u64 len)
{
    u64 block[3] = { (u64)name, mode, len };
    return semi_call(SEMI_OPEN, (u64)block);
}

static u64 sys_write(u64 handle, const char *buf, u64 len)
{
    u64 block[3] = { handle, (u64)buf, len };
    return semi_call(SEMI_WRITE, (u64)block);
}

int main(void)
{
    static const char wc[] = "writec!\n";
    for (const char *p = wc; *p; p++)
        semi_call(SEMI_WRITEC, (u64)p);
    semi_call(SEMI_WRITE0, (u64)"write0: a NUL-terminated string\n");
    semi_call(SEMI_WRITE0, (u64)"");                    /* empty: nothing */
    u64 out = sys_open(":tt", 4, 3);                    /* "w": stdout */
    u64 err = sys_open(":tt", 8, 3);                    /* "a": stderr */
    kv_u64("open_w_ok", out != (u64)-1);
    kv_u64("open_a_ok", err != (u64)-1);
    kv_u64("open_distinct", out != err);
    u64 r1 = sys_write(out, "sys_write to stdout\n", 20);
    u64 r2 = sys_write(err, "sys_write to stderr\n", 20);
    u64 r3 = sys_write(out, "partial!", 0);             /* zero length: nothing, 0 not written */
    u64 r4 = sys_write(out, "abcdef\n", 4);             /* exactly 4 bytes */
    putc('\n');
    kv_u64("write_out_ret", r1);
    kv_u64("write_err_ret", r2);
    kv_u64("write_zero_ret", r3);
    kv_u64("write_part_ret", r4);
    puts("uart: after semihosting\n");
    return 0;
}
