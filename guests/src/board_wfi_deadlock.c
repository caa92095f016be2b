/* WFI that can never wake.  vpmu stops the run with status 104 and a one-line reason
 * naming the PC; QEMU waits forever (run it there with a timeout).
 *   (default)        nothing armed, no interrupt pending
 *   timer=disabled   the virtual timer is armed but PPI 27 is not enabled in the GIC
 *   timer=imask      the virtual timer is armed with CTL.IMASK set */
#include "board_common.h"

int main(void)
{
    gic_init();
    if (board_arg_is("timer", "disabled") || board_arg_is("timer", "imask")) {
        int imask = board_arg_is("timer", "imask");
        if (imask)
            gic_enable_irq(27, 0x80);
        write_sysreg(cntv_tval_el0, 1000);
        write_sysreg(cntv_ctl_el0, imask ? 3 : 1);
        isb();
        kv_str("armed", imask ? "imask" : "gic-disabled");
    }
    puts("board_wfi_deadlock: wfi\n");
    wfi();
    puts("board_wfi_deadlock: woke up\n");
    return 0;
}
