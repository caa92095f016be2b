"""``vpmu dtb``: write the device tree a run with the same options would get (see vpmu.dtb)."""
from __future__ import annotations

import argparse
import os
import stat
import sys

from ..config import APPEND_MAX, DEFAULT_PMU_IRQ, MachineConfig
from ..dtb import GIC_NUM_SPIS, BoardSpec, build_dtb, to_dts
from ..sizes import parse_size

EXIT_OK = 0
EXIT_USAGE = 2      # bad option value, unwritable output: one line on stderr


def register(subparsers) -> argparse.ArgumentParser:
    """Add ``vpmu dtb`` to an argparse subparsers object; returns the new subparser.

    ``args.func(args)`` runs it and returns the exit status (0, or 2 after a one-line
    error on stderr).
    """
    p = subparsers.add_parser(
        "dtb", help="write the board's device tree (DTB or DTS)",
        description="Write the device tree a guest run with the same options would get: "
                    "a DTB blob, or DTS source with --dts.")
    p.add_argument("--pmu-irq", metavar="INTID",
                   help=f"PMU overflow interrupt, a PPI 16-31 or SPI 32-{31 + GIC_NUM_SPIS} "
                        f"(decimal or 0x hex; default {DEFAULT_PMU_IRQ})")
    p.add_argument("--memory", metavar="SIZE",
                   help="RAM size, e.g. 128M (default), 1G, 0x8000000 (bytes)")
    p.add_argument("--xen", action="store_true", help="add the Xen /hypervisor node")
    p.add_argument("--append", metavar="STR", help="/chosen/bootargs")
    p.add_argument("--seed", metavar="N", help="/chosen/rng-seed and kaslr-seed from N (default 0, as vpmu run)")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="output file ('-' or absent: standard output)")
    p.add_argument("--dts", action="store_true", help="write DTS source instead of a blob")
    p.add_argument("--dts-out", metavar="FILE", help="also write DTS source to FILE")
    p.set_defaults(func=lambda args: _cmd_dtb(args, p.prog))
    return p


def _cmd_dtb(args: argparse.Namespace, prog: str) -> int:
    def fail(message: str) -> int:
        print(f"{prog}: error: {message}", file=sys.stderr)
        return EXIT_USAGE

    cfg = MachineConfig()
    try:
        if args.memory is not None:
            cfg.memory = parse_size(args.memory)
        if args.pmu_irq is not None:
            try:
                cfg.pmu.irq = int(args.pmu_irq, 0)
            except ValueError:
                return fail(f"--pmu-irq {args.pmu_irq!r} is not a number")
        if args.append is not None and len(args.append) > APPEND_MAX:
            return fail(f"--append is {len(args.append)} characters; /chosen/bootargs takes at most {APPEND_MAX}")
        cfg.append = args.append
        if args.seed is not None:
            try:
                cfg.seed = int(args.seed, 0)
            except ValueError:
                return fail(f"--seed {args.seed!r} is not a number")
        cfg.xen = args.xen
        spec = BoardSpec.from_config(cfg)
        main_is_text = args.dts
        payload = to_dts(spec).encode() if main_is_text else build_dtb(spec)
    except ValueError as e:
        return fail(str(e))

    out = args.output
    try:
        if out in (None, "-"):
            stream = sys.stdout.buffer
            if not main_is_text and stream.isatty():
                return fail("refusing to write a binary DTB to a terminal: use -o FILE or --dts")
            stream.write(payload)
            stream.flush()
        else:
            _write(out, payload)
        if args.dts_out:
            _write(args.dts_out, to_dts(spec).encode())
    except OSError as e:
        return fail(f"cannot write {e.filename or out}: {e.strerror or e}")
    return EXIT_OK


def _write(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` as any Unix tool does: through a symbolic link to its target,
    straight into a device or FIFO.  A regular file (or a new one) is written to a temporary
    file beside it and renamed over it, so a failed run never leaves a truncated tree."""
    try:
        st = os.stat(path)              # follows symbolic links
    except FileNotFoundError:
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode):
        with open(path, "wb") as f:     # /dev/stdout, /dev/full, a FIFO: no rename over it
            f.write(data)
        return
    path = os.path.realpath(path)       # a link to a regular file: replace the target, keep the link
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if e.filename == tmp:
            e.filename = path
        raise
