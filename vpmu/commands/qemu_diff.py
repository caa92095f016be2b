"""``vpmu qemu-diff``: a guest under vpmu and under QEMU's virt board (see vpmu.qemudiff)."""
from __future__ import annotations

import os
import sys

from .. import qemudiff
from ..errors import VpmuError
from ..qemudiff import compare, find_qemu, run_qemu, run_vpmu


MAX_TIMEOUT = 24 * 3600.0


def cmd_qemu_diff(args) -> int:
    if not 0 < args.timeout <= MAX_TIMEOUT:          # also rejects nan (every comparison is false)
        raise VpmuError(f"--timeout must be more than 0 and at most {MAX_TIMEOUT:.0f} seconds (got {args.timeout})", 2)
    qemu = find_qemu(args.qemu)
    if qemu is None:
        sys.stderr.write("vpmu qemu-diff: qemu-system-aarch64 not found (install QEMU or pass --qemu PATH)\n")
        return 2
    if not os.path.exists(args.guest):
        raise VpmuError(f"{args.guest}: no such file", 2)
    opts = {"pmu_version": args.pmu_version}
    a = run_vpmu(args.guest, opts)
    b = run_qemu(qemu, args.guest, args.timeout)
    diff = compare(a, b, set(args.ignore or []))
    if not diff:
        print(f"identical: {len(a.lines)} lines, exit status {a.status}"
              + (f" (ignoring {', '.join(sorted(args.ignore))})" if args.ignore else ""))
        return 0
    print("\n".join(diff))
    return 1


def register(sub) -> None:
    p = sub.add_parser("qemu-diff", help="run a guest under vpmu and under QEMU virt; compare outputs",
                       description=qemudiff.__doc__)
    p.add_argument("guest")
    p.add_argument("--qemu", default=None, help="qemu-system-aarch64 binary (default: from PATH)")
    p.add_argument("--pmu-version", default="3.0", help="vpmu's PMU version (default 3.0 = QEMU cortex-a57)")
    p.add_argument("--ignore", action="append", metavar="KEY", help="ignore KEY=... lines (repeatable)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds QEMU may run, at most a day (default 60)")
    p.set_defaults(func=cmd_qemu_diff)
