/* A guest whose vector table cannot handle an exception: the exception entry itself
 * faults at the vector, forever.  vpmu stops with status 102 and a one-line reason naming
 * the vector; QEMU spins forever.
 *   vbar=unmapped (default)  VBAR_EL1 = 0x0F00_0000 (nothing there): instruction abort at the vector
 *   vbar=udf                 VBAR_EL1 = a table of UDF #0 words: UNDEFINED at the vector
 *   trigger=brk (default) | svc | udf | dabt   what raises the first exception */
#include "board_common.h"

static u32 udf_table[512] ALIGNED(2048);      /* zero words = UDF #0 */

int main(void)
{
    u64 vbar = 0x0F000000UL;
    if (board_arg_is("vbar", "udf"))
        vbar = (u64)udf_table;
    puts("board_fault_loop: breaking the vector table\n");
    write_sysreg(vbar_el1, vbar);
    isb();
    if (board_arg_is("trigger", "svc"))
        __asm__ volatile("svc #1" ::: "memory");
    else if (board_arg_is("trigger", "udf"))
        __asm__ volatile(".inst 0x00000000" ::: "memory");
    else if (board_arg_is("trigger", "dabt"))
        __asm__ volatile("mov x1, #0x0f000000\n ldr x0, [x1]" ::: "x0", "x1", "memory");
    else
        __asm__ volatile("brk #1" ::: "memory");
    puts("board_fault_loop: survived\n");
    return 0;
}
