#!/usr/bin/env python3
"""Build the AArch64 guests with the pinned ``ziglang`` wheel (clang + lld), no root needed.

Every ``guests/src/NAME.c`` or ``NAME.S`` is linked with the runtime (``guests/runtime``)
into ``guests/build/NAME.elf``.  A first-line comment ``// vpmu-build: flat image`` also
produces ``NAME.bin`` (raw flat binary) and/or ``NAME.img`` (Linux arm64 Image: the
source provides the 64-byte header, see image_hello.S).  Only out-of-date outputs are
rebuilt.  ``flat`` links at RAM + 0x80000 (where QEMU loads raw binaries), ``image`` at
RAM + 2 MiB (an Image with text_offset 0).  Usage: build.py [--quiet] [--force] [NAME ...]
"""
from __future__ import annotations

import concurrent.futures as cf
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RT = HERE / "runtime"
SRC = HERE / "src"
OUT = HERE / "build"
ZIG = [sys.executable, "-m", "ziglang"]
CFLAGS = ["-target", "aarch64-freestanding-none", "-mcpu=cortex_a57", "-O2", "-g0", "-ffreestanding",
          "-fno-builtin", "-mgeneral-regs-only", "-fno-pic", "-fno-stack-protector", "-Wall", "-Werror",
          "-I", str(RT)]
RUNTIME = [RT / "start.S", RT / "vectors.S", RT / "lib.c"]
LINK_ORIGINS = {"elf": 0x4020_0000, "flat": 0x4008_0000}   # Images use the ELF layout (RAM + 2 MiB)


def _run(cmd: list[str]) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))}\n{r.stdout}{r.stderr}")


def _options(src: Path) -> set[str]:
    first = src.read_text().splitlines()[0] if src.stat().st_size else ""
    if "vpmu-build:" in first:
        return set(first.split("vpmu-build:", 1)[1].split())
    return set()


def build_one(src: Path, force: bool) -> str | None:
    name = src.stem
    elf = OUT / f"{name}.elf"
    opts = _options(src)
    deps = [src, *RUNTIME, RT / "link.ld.in", RT / "vpmu.h", *SRC.glob("*.h"), Path(__file__)]
    newest = max(p.stat().st_mtime for p in deps)
    outs = [elf] + ([OUT / f"{name}.bin"] if "flat" in opts else []) \
        + ([OUT / f"{name}.img"] if "image" in opts else [])
    if not force and all(o.exists() and o.stat().st_mtime >= newest for o in outs):
        return None
    objs = [] if "noruntime" in opts else [str(p) for p in RUNTIME]
    kind = "flat" if "flat" in opts else "elf"
    link = ["-nostdlib", "-static", f"-Wl,-T,{OUT / f'link-{kind}.ld'}", "-Wl,--build-id=none"]
    _run(ZIG + ["cc", *CFLAGS, *objs, str(src), *link, "-o", str(elf)])
    if "flat" in opts:
        _run(ZIG + ["objcopy", "-O", "binary", str(elf), str(OUT / f"{name}.bin")])
    if "image" in opts:
        _run(ZIG + ["objcopy", "-O", "binary", str(elf), str(OUT / f"{name}.img")])
    return name


def main(argv: list[str]) -> int:
    quiet = "--quiet" in argv
    force = "--force" in argv
    names = [a for a in argv if not a.startswith("--")]
    OUT.mkdir(exist_ok=True)
    template = (RT / "link.ld.in").read_text()
    for kind, origin in LINK_ORIGINS.items():
        path = OUT / f"link-{kind}.ld"
        text = template.replace("@ORIGIN@", hex(origin))
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    srcs = sorted(p for p in SRC.iterdir() if p.suffix in (".c", ".S"))
    if names:
        srcs = [p for p in srcs if p.stem in names]
    failed = 0
    with cf.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as ex:
        futs = {ex.submit(build_one, s, force): s for s in srcs}
        for f in cf.as_completed(futs):
            try:
                built = f.result()
                if built and not quiet:
                    print(f"built {built}")
            except RuntimeError as e:
                failed += 1
                print(f"guest build failed: {futs[f].name}\n{e}", file=sys.stderr)
    if not quiet:
        print(f"{len(srcs)} guests, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
