#!/usr/bin/env python3
"""Build vpmu's own AArch64 guests with the package's guest builder (vpmu.guestsdk.builder).

Every ``guests/src/NAME.c`` or ``NAME.S`` becomes ``guests/build/NAME.elf``, built exactly as
``vpmu guest build`` builds a user's guest: linked with the runtime shipped in the package
(``vpmu/guestsdk/runtime``), clang + lld from the pinned ``ziglang`` wheel, options from the
source's first line (``// vpmu-build: flat image noruntime``: ``NAME.bin`` linked at RAM +
0x80000, ``NAME.img`` a Linux Image at RAM + 2 MiB).  Only out-of-date outputs are rebuilt
(the source, the headers it includes, the runtime, the builder).
Every ``guests/linux/NAME.c`` is a static aarch64 Linux program (musl, ``-target
aarch64-linux-musl -static``) built into ``guests/build/linux/NAME``, for the initramfs of
tests/test_linux.py and tools/linux_boot.py (the first build compiles musl once into zig's
cache: a few minutes).
Usage: build.py [--quiet] [--force] [NAME ...]
"""
from __future__ import annotations

import concurrent.futures as cf
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# This checkout's package, whichever vpmu the interpreter has installed.
sys.path.insert(0, str(HERE.parent))

from vpmu.errors import VpmuError          # noqa: E402
from vpmu.guestsdk import builder          # noqa: E402

SRC = HERE / "src"
LINUX_SRC = HERE / "linux"
OUT = HERE / "build"
LINUX_CFLAGS = ["-target", "aarch64-linux-musl", "-mcpu=cortex_a57", "-static", "-O2", "-g0", "-s", "-Wall", "-Werror"]


def build_one(src: Path, force: bool) -> str | None:
    res = builder.build(src, elf=OUT / f"{src.stem}.elf", force=force)
    return src.stem if res.built else None


def build_linux(src: Path, force: bool) -> str | None:
    """A static aarch64 Linux program (guests/linux/NAME.c -> guests/build/linux/NAME)."""
    out = OUT / "linux" / src.stem
    if not force and out.exists() and out.stat().st_mtime >= max(src.stat().st_mtime, Path(__file__).stat().st_mtime):
        return None
    out.parent.mkdir(exist_ok=True)
    builder.run_tool(builder.zig_command() + ["cc", *LINUX_CFLAGS, str(src), "-o", str(out)],
                     f"{src}: compilation failed")
    return f"linux/{src.stem}"


def main(argv: list[str]) -> int:
    quiet = "--quiet" in argv
    force = "--force" in argv
    names = [a for a in argv if not a.startswith("--")]
    OUT.mkdir(exist_ok=True)
    srcs = sorted(p for p in SRC.iterdir() if p.suffix in builder.SOURCE_SUFFIXES)
    linux = sorted(LINUX_SRC.glob("*.c")) if LINUX_SRC.is_dir() else []
    if names:
        srcs = [p for p in srcs if p.stem in names]
        linux = [p for p in linux if p.stem in names]
    failed = 0
    with cf.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as ex:
        futs = {ex.submit(build_one, s, force): s for s in srcs}
        futs.update({ex.submit(build_linux, s, force): s for s in linux})
        for f in cf.as_completed(futs):
            try:
                built = f.result()
                if built and not quiet:
                    print(f"built {built}")
            except VpmuError as e:
                failed += 1
                output = getattr(e, "output", "")
                print(f"guest build failed: {futs[f].name}: {e}" + (f"\n{output}" if output else ""), file=sys.stderr)
    if not quiet:
        print(f"{len(srcs) + len(linux)} guests, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
