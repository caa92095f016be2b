"""Runner-side failures: one-line reasons and documented exit statuses.

A guest's own exit status (semihosting, PSCI) is passed through unchanged; the statuses
below are the emulator's, chosen away from the small numbers guests usually use.
"""
from __future__ import annotations

EXIT_USAGE = 2            # bad command line (argparse convention)
EXIT_BAD_IMAGE = 101      # unreadable or not a regular file, not an ELF/Image, not AArch64, outside RAM
EXIT_FAULT_LOOP = 102     # recursive exception at the same vector (no usable vector table)
EXIT_INSN_LIMIT = 103     # a run limit reached: --max-insns instructions, --max-output bytes
EXIT_DEADLOCK = 104       # WFI with no interrupt source that could ever wake the CPU
EXIT_KVM = 105            # a KVM device attribute (or first KVM_RUN) failed
EXIT_INTERNAL = 106       # a bug in vpmu (run with --debug for the traceback)

EXIT_STATUSES = {
    EXIT_USAGE: "bad command line or option value",
    EXIT_BAD_IMAGE: "the guest image could not be loaded",
    EXIT_FAULT_LOOP: "the guest faulted recursively (no usable vector table)",
    EXIT_INSN_LIMIT: "a run limit was reached: --max-insns instructions or --max-output bytes of output",
    EXIT_DEADLOCK: "the guest waits (WFI) for an interrupt that can never come",
    EXIT_KVM: "a KVM device attribute or the first KVM_RUN failed",
    EXIT_INTERNAL: "internal error in vpmu",
}


class VpmuError(Exception):
    """A runner-side failure with its exit status; str() is the one-line reason."""
    status = EXIT_INTERNAL

    def __init__(self, msg: str, status: int | None = None):
        super().__init__(msg)
        if status is not None:
            self.status = status


class UsageError(VpmuError):
    """A bad option value (``vpmu run`` flag, ``vpmu.run()`` keyword, ``--vm`` file)."""
    status = EXIT_USAGE


class ImageError(VpmuError):
    status = EXIT_BAD_IMAGE


class GuestStop(VpmuError):
    """The guest cannot continue (fault loop, limit, deadlock); carries the PC."""
