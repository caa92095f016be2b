"""Build one AArch64 guest: a C or assembly source linked with the guest runtime.

The one builder of the project's guests (``guests/build.py`` calls it) and of users' guests
(``vpmu guest build``).  The toolchain is clang + lld from the pinned ``ziglang`` wheel (a
dependency of vpmu: no root, no system compiler); the exact compiler version is part of
what a guest's counts depend on, so the pin keeps a guest's instructions, and so its counts,
the same on every installation.

A source ``NAME.c`` (or ``NAME.S``) is compiled with the runtime (``runtime/start.S``,
``vectors.S``, ``lib.c``; header ``vpmu.h``) into an ELF linked at RAM + 2 MiB.  Build
options come from the command line or from the source's first line,
``// vpmu-build: flat image noruntime``:

- ``flat``: also write ``NAME.bin``, a raw binary linked at RAM + 0x80000, where QEMU and
  vpmu load anything that is neither ELF nor Image;
- ``image``: also write ``NAME.img``, a Linux arm64 Image (the runtime's ``image_head.S``
  header, text_offset 0) linked at RAM + 2 MiB;
- ``noruntime``: link the source alone (it brings its own ``_start`` and, for an Image, its
  header).

``flat`` and ``image`` need different link addresses, so a guest is one or the other.
Builds are incremental: the outputs are rebuilt when the build command changed or when any
file the last build read is newer than them: the source, every header it included
(clang's dependency list), the runtime and this module.  The dependency lists are kept in
vpmu's cache directory (vpmu.cachedir), not beside the outputs; without them the guest is
simply rebuilt.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import os
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from ..cachedir import cache_base
from ..errors import UsageError, VpmuError

SDK_DIR = Path(__file__).resolve().parent
RUNTIME_DIR = SDK_DIR / "runtime"
RUNTIME_SOURCES = (RUNTIME_DIR / "start.S", RUNTIME_DIR / "vectors.S", RUNTIME_DIR / "lib.c")
IMAGE_HEAD = RUNTIME_DIR / "image_head.S"
LINK_TEMPLATE = RUNTIME_DIR / "link.ld.in"
STARTER = SDK_DIR / "starter.c"

# Where each kind is linked (QEMU virt's RAM starts at 0x4000_0000; see link.ld.in).  An Image
# uses the ELF layout: text_offset 0 puts it at RAM + 2 MiB.
LINK_ORIGINS = {"elf": 0x4020_0000, "flat": 0x4008_0000}
BUILD_OPTIONS = ("flat", "image", "noruntime")
SOURCE_SUFFIXES = (".c", ".S")
OPTION_MARK = "vpmu-build:"

CFLAGS = ("-target", "aarch64-freestanding-none", "-mcpu=cortex_a57", "-O2", "-g0", "-ffreestanding",
          "-fno-builtin", "-mgeneral-regs-only", "-fno-pic", "-fno-stack-protector", "-Wall", "-Werror")

# `vpmu guest build` exit statuses (the builder's errors carry them)
EXIT_BUILD_FAILED = 1        # the compiler or linker rejected the program (its messages come first)
EXIT_NO_TOOLCHAIN = 3        # the ziglang package is missing or does not start


class BuildFailed(VpmuError):
    """The compiler, linker or objcopy failed; ``output`` holds their messages."""
    status = EXIT_BUILD_FAILED

    def __init__(self, msg: str, output: str = ""):
        super().__init__(msg)
        self.output = output


class ToolchainMissing(VpmuError):
    status = EXIT_NO_TOOLCHAIN


@dataclass(frozen=True)
class Outputs:
    """Where a build writes: the ELF always, the flat binary and the Image on request."""
    elf: Path
    flat: Path | None = None
    image: Path | None = None

    def all(self) -> list[Path]:
        return [p for p in (self.elf, self.flat, self.image) if p is not None]


@dataclass(frozen=True)
class Built:
    """A build's outputs, and whether they were (re)built or already up to date."""
    outputs: Outputs
    built: bool


def zig_command() -> list[str]:
    """The command that runs the ziglang wheel's ``zig`` (``zig cc``, ``zig objcopy``)."""
    try:
        importlib.import_module("ziglang")
    except ImportError:
        raise ToolchainMissing("the guest toolchain is missing: the ziglang package is not installed "
                               "(pip install ziglang==0.17.1, the version vpmu pins)") from None
    return [sys.executable, "-m", "ziglang"]


def source_options(src: Path) -> set[str]:
    """The options on the source's first line (``// vpmu-build: flat``); unknown ones are an error."""
    with open(src, "rb") as f:
        first = f.readline().decode("utf-8", "replace")
    if OPTION_MARK not in first:
        return set()
    words = first.split(OPTION_MARK, 1)[1].replace("*/", " ").split()
    bad = [w for w in words if w not in BUILD_OPTIONS]
    if bad:
        raise UsageError(f"{src}: unknown build option {bad[0]!r} on the first line "
                         f"(known: {', '.join(BUILD_OPTIONS)})")
    return set(words)


def check_source(src: Path) -> None:
    if src.suffix not in SOURCE_SUFFIXES:
        raise UsageError(f"{src}: not a guest source (expected a .c or .S file)")
    if not src.is_file():
        raise UsageError(f"{src}: no such file")


def outputs_for(src: Path, options: set[str], elf: Path | None = None) -> Outputs:
    """The outputs of building `src`: ``elf`` (default: the source's name with .elf beside it),
    and beside the ELF the same name with .bin (flat) or .img (image)."""
    if "flat" in options and "image" in options:
        raise UsageError(f"{src}: a guest is either flat (linked at RAM + 0x80000) or an Image "
                         "(RAM + 2 MiB), not both")
    elf = elf if elf is not None else src.with_suffix(".elf")
    if elf.suffix in (".bin", ".img", *SOURCE_SUFFIXES):
        raise UsageError(f"{elf}: the output names the ELF; the flat binary (.bin) or Image (.img) "
                         "is written beside it")
    return Outputs(elf=elf, flat=elf.with_suffix(".bin") if "flat" in options else None,
                   image=elf.with_suffix(".img") if "image" in options else None)


def _link_script(kind: str) -> str:
    return LINK_TEMPLATE.read_text().replace("@ORIGIN@", hex(LINK_ORIGINS[kind]))


def _compile_command(src: Path, options: set[str], elf: Path, script: Path) -> list[str]:
    objs: list[Path] = []
    if "noruntime" not in options:
        objs = ([IMAGE_HEAD] if "image" in options else []) + list(RUNTIME_SOURCES)
    link = ["-nostdlib", "-static", f"-Wl,-T,{script}", "-Wl,--build-id=none"]
    # __FILE__ (in CHECK's messages) without the directory: a guest's bytes, so its addresses and
    # cache behaviour, do not depend on where it or vpmu was installed.
    where = [f"-fmacro-prefix-map={RUNTIME_DIR}/=", f"-fmacro-prefix-map={src.resolve().parent}/="]
    return ["cc", *CFLAGS, *where, "-I", str(RUNTIME_DIR), *map(str, objs), str(src), *link, "-o", str(elf)]


def _deps_record(elf: Path) -> Path:
    """Where the dependency list of the build writing `elf` is kept (keyed by its absolute path)."""
    key = hashlib.sha256(str(elf.resolve()).encode()).hexdigest()[:24]
    return cache_base() / "guest-deps" / f"{key}.json"


def _command_key(src: Path, options: set[str], outs: Outputs) -> str:
    """What the outputs are a function of, besides the files' contents: the command and options."""
    cmd = _compile_command(src.resolve(), options, outs.elf.resolve(), Path("link.ld"))
    return json.dumps([cmd, sorted(options), [str(p.resolve()) for p in outs.all()]])


def up_to_date(src: Path, options: set[str], outs: Outputs) -> bool:
    rec = _deps_record(outs.elf)
    try:
        data = json.loads(rec.read_text())
        if not data or data.get("key") != _command_key(src, options, outs):
            return False
        oldest = min(p.stat().st_mtime for p in outs.all())
        newest = max(Path(p).stat().st_mtime for p in [*data["deps"], src, *RUNTIME_SOURCES, IMAGE_HEAD,
                                                          LINK_TEMPLATE, Path(__file__)])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return newest <= oldest


_DEP_TARGET = "vpmu-guest"      # the rule's target name (-MT), so the parser needs no escaping rules for it


def _parse_depfile(text: str) -> list[str]:
    """The prerequisites of a Make rule as clang writes it (``target: a b \\`` lines, spaces
    in names escaped with a backslash)."""
    body = text.split(f"{_DEP_TARGET}:", 1)[1] if f"{_DEP_TARGET}:" in text else ""
    deps, cur, i = [], "", 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body) and body[i + 1] in " \\#":
            cur += body[i + 1]
            i += 2
            continue
        if c == "\\" and i + 1 < len(body) and body[i + 1] == "\n":
            i += 2
            continue
        if c.isspace():
            if cur:
                deps.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    if cur:
        deps.append(cur)
    return deps


def run_tool(cmd: list[str], what: str) -> None:
    """Run a toolchain command; BuildFailed with ``what`` and its messages if it fails."""
    try:
        r = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
        raise ToolchainMissing(f"the guest toolchain does not start: {e}") from None
    if r.returncode != 0:
        raise BuildFailed(what, (r.stdout + r.stderr).rstrip("\n"))


def build(src: Path | str, elf: Path | str | None = None, options: set[str] | frozenset[str] = frozenset(),
          force: bool = False) -> Built:
    """Build `src` (options: the source's own plus `options`) into `elf` (default: beside it)
    unless the outputs are up to date.  Raises UsageError (bad source, options or output),
    ToolchainMissing, or BuildFailed (with the compiler's messages)."""
    src = Path(src)
    check_source(src)
    opts = source_options(src) | set(options)
    bad = sorted(opts - set(BUILD_OPTIONS))
    if bad:
        raise UsageError(f"unknown build option {bad[0]!r} (known: {', '.join(BUILD_OPTIONS)})")
    outs = outputs_for(src, opts, None if elf is None else Path(elf))
    if not force and up_to_date(src, opts, outs):
        return Built(outs, built=False)
    zig = zig_command()
    kind = "flat" if "flat" in opts else "elf"
    for p in outs.all():
        if not p.parent.is_dir():
            raise UsageError(f"{p}: the output directory does not exist")
    with tempfile.TemporaryDirectory(prefix="vpmu-guest-") as tmp:
        script = Path(tmp) / f"link-{kind}.ld"
        script.write_text(_link_script(kind))
        depfile = Path(tmp) / "deps.d"
        # The headers the source includes (not the runtime's sources: those are listed apart).
        run_tool([*zig, "cc", *CFLAGS, "-I", str(RUNTIME_DIR), "-M", "-MT", _DEP_TARGET, "-MF", str(depfile), str(src)],
             f"{src}: compilation failed")
        run_tool([*zig, *_compile_command(src, opts, outs.elf, script)], f"{src}: compilation failed")
        for out in (outs.flat, outs.image):
            if out is not None:
                run_tool([*zig, "objcopy", "-O", "binary", str(outs.elf), str(out)],
                     f"{out}: objcopy failed")
        deps = [str(Path(d).resolve()) for d in _parse_depfile(depfile.read_text())]
    _save_deps(src, opts, outs, deps)
    return Built(outs, built=True)


def _save_deps(src: Path, opts: set[str], outs: Outputs, deps: list[str]) -> None:
    rec = _deps_record(outs.elf)
    try:
        rec.parent.mkdir(parents=True, exist_ok=True)
        tmp = rec.with_suffix(f".{os.getpid()}-{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps({"elf": str(outs.elf.resolve()), "key": _command_key(src, opts, outs),
                                   "deps": deps}))
        os.replace(tmp, rec)
    except OSError:
        pass                     # no cache: the next build rebuilds, which is correct, only slower

