"""``vpmu qemu ARGS`` and the ``vpmu-system-aarch64`` script: QEMU's command line on vpmu.

The arguments are ``qemu-system-aarch64``'s; :mod:`vpmu.qemufront` reads and runs them.  This
module prints: the help (also QEMU's ``-h``/``--help`` probe), the listings, one-line errors
prefixed with the program's name as QEMU prefixes its own.  Probes never load the emulator.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional

from .. import __version__, errors, qemufront

SCRIPT = "vpmu-system-aarch64"

HELP = f"""\
QEMU emulator version {qemufront.QEMU_DIALECT} (vpmu {__version__}: QEMU-compatible front, not QEMU)
usage: {SCRIPT} [options]   or   vpmu qemu [options]

vpmu's QEMU-compatible front: qemu-system-aarch64's command line for a one-vCPU virt
machine, run on vpmu's board with its exact PMU model, so that harnesses written for QEMU
(kvm-unit-tests' run_tests.sh with QEMU=vpmu-system-aarch64, PMU CI scripts) drive vpmu
unchanged.  Standard output carries only the guest's UART (and semihosting console) bytes.
Details, and kvm-unit-tests' results on both: docs/qemu-compat.md.

Accepted options (QEMU's meaning unless noted):
  -machine|-M virt[,gic-version=3|max][,accel=tcg][,mte=off][,virtualization=off][,secure=off][,its=off]
                        vpmu's board (QEMU's virt subset). Always a GICv3: QEMU's virt without
                        gic-version is a GICv2, which kvm-unit-tests' pmu/debug/timer/cache/selftest
                        tests do not depend on (they follow the device tree); gic-version=2 is refused
  -accel tcg[,thread=single|multi]
  -cpu cortex-a57[,pmu=on|off]   Cortex-A57 with QEMU's cortex-a57 PMU: PMUv3 (--pmu-version 3.0)
  -cpu max[,pmu=on|off]          the same core with the PMU of QEMU 7.2's max CPU: PMUv3p5
                                 (64-bit event counters, PMCR.LP; --pmu-version 3.5); no other
                                 feature of max (SVE, PAuth, MTE...) is modelled
                        (-cpu host is refused, as QEMU refuses it without KVM/HVF; pmu=off is --no-pmu;
                        both models have 6 event counters, as QEMU's)
  -m SIZE               RAM (MiB unless suffixed: 256, 1G); 1M..4G
  -smp 1                one vCPU (more: "Invalid SMP CPUs N. The max CPUs supported by machine 'virt' is 1")
  -kernel FILE          ELF, Linux arm64 Image or flat binary, loaded as QEMU -kernel loads it
  -initrd FILE          at QEMU's address, /chosen/linux,initrd-start/end
  -append STRING        /chosen/bootargs (and the semihosting command line)
  -dtb FILE             the device tree blob, with QEMU's edits
  -nographic            no display; the UART on stdio unless -serial or -nodefaults says otherwise
  -display none
  -serial stdio|mon:stdio|chardev:ID   the UART (PL011) on standard output (the only backend;
                        output only: the guest never receives input)
  -nodefaults           no default devices (vpmu has none; also no default serial)
  -chardev testdev,id=ID | stdio,id=ID[,mux=on|off][,signal=on|off] | null,id=ID
  -device virtio-serial-device[,id=ID]
  -device virtconsole[,chardev=ID][,id=ID][,name=NAME]
                        QEMU virt's 32 virtio-mmio transports, the legacy virtio console on the last
                        (0x0a003e00, SPI 47), its port 0 on the chardev. A testdev chardev is
                        kvm-unit-tests' exit path: the guest writing "Nq" ends the run at once with
                        exit status (N << 1) | 1 (1 = all passed, 3 = failures, 77 = all skipped)
  -icount [shift=]N[,sleep=on|off][,align=off]
                        N = 0..10: every instruction takes 2**N ns of guest time and PMCCNTR counts
                        2**N per instruction, as QEMU's; this is vpmu's cycle model base=2**N
                        (without -icount vpmu counts 1 cycle per instruction, i.e. shift 0, where QEMU
                        follows host time); shift=auto and record/replay are refused
  -semihosting, -semihosting-config [enable=on|off][,target=native|auto][,chardev=ID][,userspace=off]
                        without them HLT #0xF000 is UNDEFINED, as on QEMU. The console output goes to
                        standard output (QEMU without chardev= writes it to standard error)
  -no-reboot            accepted: vpmu ends the run on PSCI SYSTEM_RESET (status 0) in any case
  -name NAME, -nic none, -net none, -monitor none   accepted, no effect
  -h, -help, --help, -version, --version
  OPT help | OPT ?      listings: -machine, -machine virt,help, -cpu, -accel, -device, -device
                        virtconsole,help, -chardev, -display, -serial

Everything else is refused with one line naming the option (e.g. -device pci-testdev: no PCI bus;
-mon, -qmp, -incoming, -S, -gdb: no monitor, migration or gdbstub).

Exit status (what a QEMU harness reads):
  the guest's: testdev (N << 1) | 1, semihosting SYS_EXIT code, PSCI SYSTEM_OFF 0 (as QEMU)
  1    a start-up error, one line on standard error: a refused option (checked before the kernel
       file is opened, so kvm-unit-tests' premature check reports the entry as SKIP with that line),
       "could not load kernel 'FILE'", an initrd or dtb that cannot be read, an image vpmu cannot load
  102, 104  vpmu stopped a guest QEMU would leave running forever: a fault loop, a WFI nothing can
       wake (on QEMU a harness's timeout reports the failure)
  106  a bug in vpmu
  A guest killed by a signal (timeout) dies of it; QEMU prints "terminating on signal N" and exits 0.
"""


def register(sub) -> None:
    # Everything after "qemu" belongs to QEMU's command line: the subparser has no options of its
    # own (its prefix character is one no QEMU option uses), so "-machine" or "--help" reach the front.
    q = sub.add_parser("qemu", prefix_chars="\x01", add_help=False,
                       help=f"QEMU-compatible front: qemu-system-aarch64's options (also installed as {SCRIPT})",
                       description="Run a guest from a qemu-system-aarch64 command line: vpmu qemu --help.")
    q.add_argument("qemu_args", nargs=argparse.REMAINDER, metavar="QEMU-OPTIONS")
    q.set_defaults(func=lambda args: run_front(args.qemu_args, "vpmu qemu"))


def _print(text: str) -> None:
    """Write a probe's answer; a reader that stops early (``| grep -q``) is not an error."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())          # no second error when Python flushes at exit


def run_front(argv: list[str], prog: str) -> int:
    """Parse and run one QEMU command line; returns the exit status."""
    try:
        req = qemufront.parse(argv)
        if isinstance(req, qemufront.Probe):
            if req.what == "help":
                _print(HELP)
            elif req.what == "version":
                _print(HELP.splitlines()[0] + "\n")
            else:
                _print(req.text)
            return 0
        return qemufront.launch(req)
    except errors.VpmuError as e:
        sys.stdout.flush()
        sys.stderr.write(f"{prog}: {e}\n")
        return e.status


def main(argv: Optional[list[str]] = None) -> int:
    """The ``vpmu-system-aarch64`` console script (messages carry the name it was called by)."""
    prog = os.path.basename(sys.argv[0]) or SCRIPT
    try:
        return run_front(sys.argv[1:] if argv is None else argv, prog)
    except KeyboardInterrupt:
        sys.stderr.write(f"{prog}: interrupted\n")
        return 130
    except BrokenPipeError:                    # the reader went away (as vpmu run)
        return 0
    except Exception as e:                     # a bug in vpmu: one line, vpmu's status
        sys.stderr.write(f"{prog}: internal error: {type(e).__name__}: {e}\n")
        return errors.EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
