#!/usr/bin/env python3
"""Boot the shared Debian arm64 kernel on vpmu, with a time stamp on every console line.

    .venv/bin/python tools/linux_boot.py [--xen] [--filter deny:0x08 ...] [--memory 512M]
                                         [--workload DIR] [--no-perf] [--seed N] [--rtc-base S]

The kernel and the busybox initramfs are ../shared/workloads/linux/ (Image.xz, initrd.gz;
README.md there says how they were made).  The initramfs is composed at run time: the shared
initrd.gz, then a second (gzip'd newc) archive with this project's ``/init`` (below) and
``/vpmu_perf`` (guests/linux/vpmu_perf.c, built by guests/build.py); Linux unpacks
concatenated archives in order, so our ``/init`` replaces the shared one.  The ``/init``
prints the PMU's sysfs events, runs the shared ``/perftest``, ``/vpmu_perf count`` and
``/vpmu_perf sample``, then powers off (PSCI SYSTEM_OFF).

Each console line is printed as it arrives with the wall-clock seconds since vpmu started
(``[  2.31]``); a summary follows: when ``Run /init`` and the power-off were printed, the
exit status, and the CPU time vpmu used (on a busy machine the wall clock says little).
``--xen`` boots with the Xen frontend (console=hvc0 earlycon=xenboot: Linux's own Xen-on-Arm
support finds it).  tests/test_linux.py uses the helpers here.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import lzma
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _find_workload() -> Path:
    """$VPMU_LINUX_WORKLOAD, else ../shared/workloads/linux beside the repository (for a git
    worktree elsewhere: beside its main repository)."""
    if os.environ.get("VPMU_LINUX_WORKLOAD"):
        return Path(os.environ["VPMU_LINUX_WORKLOAD"])
    tops = [ROOT]
    dotgit = ROOT / ".git"
    if dotgit.is_file():                                   # a worktree: "gitdir: <main>/.git/worktrees/x"
        gitdir = Path(dotgit.read_text().split(":", 1)[1].strip())
        common = gitdir / "commondir"
        main_git = (gitdir / common.read_text().strip()).resolve() if common.exists() else gitdir
        tops.append(main_git.parent)
    for top in tops:
        cand = top.parent / "shared" / "workloads" / "linux"
        if (cand / "Image.xz").exists():
            return cand
    return ROOT.parent / "shared" / "workloads" / "linux"


WORKLOAD = _find_workload()
PERF_PROGRAM = ROOT / "guests" / "build" / "linux" / "vpmu_perf"
APPEND = "console=ttyAMA0 rdinit=/init"
APPEND_XEN = "console=hvc0 earlycon=xenboot rdinit=/init"
MEMORY = "512M"                  # as the workload's QEMU reference run (-m 512)

INIT = """#!/bin/busybox sh
# vpmu's initramfs /init (tools/linux_boot.py): the PMU as Linux sees it, then the perf programs
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
echo "init: reached /init, uptime $(cat /proc/uptime)"
echo "init: events $(ls /sys/bus/event_source/devices/armv8_pmuv3/events | tr '\\n' ' ')"
echo "init: date $(date -u +%Y-%m-%dT%H:%M:%S)"
[ -x /perftest ] && /perftest
/vpmu_perf count
/vpmu_perf sample
echo "init: done, uptime $(cat /proc/uptime)"
poweroff -f
"""


# --- the kernel -----------------------------------------------------------------------------------

def cache_dir() -> Path:
    base = os.environ.get("VPMU_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "vpmu")
    return Path(base) / "linux"


def kernel_image(workload: Path = WORKLOAD) -> Path:
    """The uncompressed Image (decompressed once into the cache, named by the .xz's hash)."""
    xz = workload / "Image.xz"
    digest = hashlib.sha256(xz.read_bytes()).hexdigest()[:16]
    out = cache_dir() / f"Image-{digest}"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(lzma.decompress(xz.read_bytes()))
        os.replace(tmp, out)
    return out


# --- the initramfs --------------------------------------------------------------------------------

def newc(files: list[tuple[str, int, bytes]]) -> bytes:
    """A newc ("070701") cpio archive of (name, mode, data) entries, with its trailer.
    Linux's initramfs format (Documentation/driver-api/early-userspace/buffer-format.rst):
    a 110-byte ASCII header, the NUL-terminated name and the data, each padded to 4 bytes."""
    out = bytearray()
    entries = list(files) + [("TRAILER!!!", 0, b"")]
    for ino, (name, mode, data) in enumerate(entries, start=1):
        raw = name.encode() + b"\0"
        fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(raw), 0)
        out += b"070701" + b"".join(b"%08X" % f for f in fields) + raw
        out += bytes(-len(out) % 4)
        out += data
        out += bytes(-len(out) % 4)
    return bytes(out)


def initramfs(base: bytes, files: list[tuple[str, int, bytes]]) -> bytes:
    """``base`` (an archive, compressed or not) followed by a gzip'd newc archive of
    ``files``; the kernel unpacks both, the later one's files replacing the earlier's."""
    return base + gzip.compress(newc(files), mtime=0)


def compose(out: Path, workload: Path = WORKLOAD, program: Path = PERF_PROGRAM, init: str = INIT) -> Path:
    files = [("init", 0o100755, init.encode())]
    if program is not None:
        files.append(("vpmu_perf", 0o100755, program.read_bytes()))
    out.write_bytes(initramfs((workload / "initrd.gz").read_bytes(), files))
    return out


# --- the boot, with time stamps -----------------------------------------------------------------

def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workload", type=Path, default=WORKLOAD, help=f"kernel and initrd directory ({WORKLOAD})")
    ap.add_argument("--xen", action="store_true", help="the Xen frontend, console=hvc0 earlycon=xenboot")
    ap.add_argument("--filter", action="append", default=[], help="a KVM event filter range (vpmu run --filter)")
    ap.add_argument("--memory", default=MEMORY, help=f"RAM (default {MEMORY})")
    ap.add_argument("--append", help="kernel command line (default: the console and rdinit=/init)")
    ap.add_argument("--no-perf", action="store_true", help="the shared initrd.gz alone (its own /init)")
    ap.add_argument("--seed", help="vpmu run --seed")
    ap.add_argument("--rtc-base", help="vpmu run --rtc-base")
    args = ap.parse_args(argv)
    if not (args.workload / "Image.xz").exists():
        print(f"linux_boot: no Image.xz in {args.workload}", file=sys.stderr)
        return 2
    if not args.no_perf and not PERF_PROGRAM.exists():
        print(f"linux_boot: {PERF_PROGRAM} is not built (run guests/build.py)", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    image = kernel_image(args.workload)
    with tempfile.TemporaryDirectory() as tmp:
        rd = args.workload / "initrd.gz" if args.no_perf else compose(Path(tmp) / "initrd.gz", args.workload)
        cmd = [sys.executable, "-m", "vpmu", "run", "--memory", args.memory, "--initrd", str(rd),
               "--append", args.append or (APPEND_XEN if args.xen else APPEND)]
        cmd += ["--xen"] if args.xen else []
        cmd += [x for f in args.filter for x in ("--filter", f)]
        cmd += ["--seed", args.seed] if args.seed else []
        cmd += ["--rtc-base", args.rtc_base] if args.rtc_base else []
        cmd.append(str(image))
        print(f"linux_boot: {' '.join(cmd)}  (kernel ready after {time.perf_counter() - t0:.2f} s)")
        t0 = time.perf_counter()
        marks: dict[str, float] = {}
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as p:
            assert p.stdout is not None
            for raw in p.stdout:
                now = time.perf_counter() - t0
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                for key in ("Run /init", "reboot: Power down"):
                    if key in line and key not in marks:
                        marks[key] = now
                print(f"[{now:7.2f}] {line}", flush=True)
        status = p.returncode
    total = time.perf_counter() - t0
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    summary = ", ".join(f"'{k}' at {v:.2f} s" for k, v in marks.items())
    print(f"linux_boot: exit status {status} after {total:.2f} s wall, {ru.ru_utime + ru.ru_stime:.2f} s CPU "
          f"(vpmu's start-up included){'; ' + summary if summary else ''}")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
