/* Ways a guest ends its run, chosen on the command line (vpmu run --append ... /
 * qemu -append ...):
 *   exit=N        semihosting SYS_EXIT_EXTENDED {ADP_Stopped_ApplicationExit, N}  -> status N & 0xff
 *   sysexit=N     semihosting SYS_EXIT (AArch64: the same parameter block)        -> status N & 0xff
 *   reason=R      SYS_EXIT_EXTENDED {R, 7}: any reason but ApplicationExit        -> status 1
 *   psci=off      PSCI SYSTEM_OFF over HVC #0                                      -> status 0
 *   psci=reset    PSCI SYSTEM_RESET (vpmu: status 0, reason "reset"; QEMU needs -no-reboot)
 * Without any of them the guest returns 0 from main.  Nothing after the call may run:
 * "after=..." lines would show that the exit did not stop the CPU. */
#include "board_common.h"

static void semi_exit(u64 op, u64 reason, u64 code)
{
    u64 block[2] = { reason, code };
    semi_call(op, (u64)block);
}

int main(void)
{
    u64 n;
    puts("board_exit: start\n");
    if (board_arg_u64("exit", &n)) {
        kv_u64("exit_extended", n);
        semi_exit(SEMI_EXIT_EXTENDED, ADP_STOPPED_APPLICATION_EXIT, n);
        kv_str("after", "exit");
        return 99;
    }
    if (board_arg_u64("sysexit", &n)) {
        kv_u64("sys_exit", n);
        semi_exit(SEMI_EXIT, ADP_STOPPED_APPLICATION_EXIT, n);
        kv_str("after", "sysexit");
        return 99;
    }
    if (board_arg_u64("reason", &n)) {
        kv_hex("exit_reason", n);
        semi_exit(SEMI_EXIT_EXTENDED, n, 7);
        kv_str("after", "reason");
        return 99;
    }
    if (board_arg_is("psci", "off")) {
        kv_str("psci", "off");
        smccc(PSCI_SYSTEM_OFF, 0, 0, 0);
        kv_str("after", "system_off");
        return 99;
    }
    if (board_arg_is("psci", "reset")) {
        kv_str("psci", "reset");
        smccc(PSCI_SYSTEM_RESET, 0, 0, 0);
        kv_str("after", "system_reset");
        return 99;
    }
    puts("board_exit: return from main\n");
    return 0;
}
