"""``vpmu guest new|build``: write a starter guest, build a guest (see vpmu.guestsdk)."""
from __future__ import annotations

import sys
from pathlib import Path

from .. import guestsdk
from ..guestsdk import builder

BUILD_STATUSES = ("Exit status: 0 built (or already up to date), 1 the compiler or linker rejected the program "
                  "(its messages come first), 2 bad command line, source or build option, 3 the guest toolchain "
                  "(the ziglang package) is missing.")
NEW_STATUSES = "Exit status: 0 written, 2 bad name, or the file exists or cannot be written."


def cmd_new(args) -> int:
    path = guestsdk.new_guest(args.name)
    if not args.quiet:
        print(f"wrote {path}; build it with: vpmu guest build {path}")
    return 0


def cmd_build(args) -> int:
    opts = {o for o, on in (("flat", args.flat), ("image", args.image), ("noruntime", args.no_runtime)) if on}
    try:
        res = builder.build(Path(args.source), elf=args.output, options=opts, force=args.force)
    except builder.BuildFailed as e:
        if e.output:                   # the compiler's own messages, then vpmu's one line
            sys.stderr.write(e.output + "\n")
        raise
    if not args.quiet:
        files = ", ".join(str(p) for p in res.outputs.all())
        print(f"built {files}" if res.built else f"{files}: up to date")
    return 0


def register(sub) -> None:
    p = sub.add_parser("guest", help="write a starter guest, build a guest with the shipped runtime",
                       description="Write and build bare-metal AArch64 guests with the runtime shipped in "
                                   "vpmu (start-up code, exception vectors, UART printf, key=value output, "
                                   "PMU/GIC/MMU helpers; header vpmu.h) and the pinned clang/lld of the ziglang "
                                   "package. guest new: " + NEW_STATUSES + " guest build: " + BUILD_STATUSES)
    sp = p.add_subparsers(dest="guest_cmd", metavar="SUBCOMMAND")
    sp.required = True
    n = sp.add_parser("new", help="write NAME.c, a starter guest that counts a loop with two counters",
                      description="Write NAME.c: a guest that counts a loop with two PMU event counters and "
                                  "prints the counts as key=value lines (inst=42, branches=20). An existing file "
                                  "is never overwritten. " + NEW_STATUSES)
    n.add_argument("name", metavar="NAME", help="the guest's name or path (NAME.c is written)")
    n.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    n.set_defaults(func=cmd_new)
    b = sp.add_parser("build", help="build FILE.c or FILE.S into FILE.elf with the shipped runtime",
                      description="Build a guest source (C or assembly) with the runtime into an ELF linked at "
                                  "RAM + 2 MiB (vpmu run FILE.elf runs it), and optionally a flat binary or a "
                                  "Linux Image beside it. The source's first line may hold the options too: "
                                  "// vpmu-build: flat | image | noruntime. Only out-of-date outputs are "
                                  "rebuilt (the source, the headers it includes, the runtime). " + BUILD_STATUSES)
    b.add_argument("source", metavar="FILE", help="the guest source, FILE.c or FILE.S")
    b.add_argument("-o", "--output", metavar="OUT", default=None,
                   help="the ELF to write (default: FILE.elf beside the source)")
    kind = b.add_mutually_exclusive_group()
    kind.add_argument("--flat", action="store_true",
                      help="also write OUT.bin, a flat binary linked at RAM + 0x80000 (as QEMU loads one)")
    kind.add_argument("--image", action="store_true",
                      help="also write OUT.img, a Linux arm64 Image (header from the runtime) loaded at RAM + 2 MiB")
    b.add_argument("--no-runtime", action="store_true",
                   help="link the source alone (it provides _start, vectors, its own output)")
    b.add_argument("-f", "--force", action="store_true", help="rebuild even when up to date")
    b.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    b.set_defaults(func=cmd_build)
