"""Linux as a test: Debian's unmodified arm64 kernel (../shared/workloads/linux) boots on the
board and its own PMU driver (armv8_pmuv3) and perf_event_open(2) count and sample exactly.

The initramfs is the shared busybox initrd.gz plus a second archive with tools/linux_boot.py's
``/init`` and ``/vpmu_perf`` (guests/linux/vpmu_perf.c: a loop of known length in assembly);
it runs the shared ``/perftest`` (whose expected counts are in the workload's README), then
``vpmu_perf count`` and ``vpmu_perf sample``.  Four boots (each about 4-5 s of CPU, the
kernel reaching /init after about 0.8 s of guest time):

- plain: the console on the PL011, exact counts, exact samples, what the kernel says about the
  board (GIC system registers, KASLR and early entropy from --seed, the RTC's time);
- with a KVM event filter denying INST_RETIRED and BR_RETIRED: Linux's driver reads PMCEID
  (KVM masks it with the filter), so the generic INSTRUCTIONS event cannot be opened (ENOENT)
  and sysfs does not list the denied events; raw events bypass that check, open, and count
  nothing (KVM's filter: the counter does not count) - what the same kernel sees under KVM;
- with the Xen frontend (console=hvc0 earlycon=xenboot): Linux's Xen-on-Arm code finds Xen
  4.23, grant tables v1, the 2-level event channel ABI and the hvc0 console; counts exact;
- the README's command: ``vpmu run --initrd initrd.gz --append "console=ttyAMA0 rdinit=/init"
  Image`` with the shared initrd alone (default 128 MiB), through the command line.

Skipped when the workload or the built perf program is missing.
"""
from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vpmu import api

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("linux_boot", ROOT / "tools" / "linux_boot.py")
assert _spec is not None and _spec.loader is not None
lb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lb)

RTC_BASE = 1_767_225_600                          # 2026-01-01T00:00:00Z
ITERS, PERIOD = 1_000_000, 100_000               # vpmu_perf's defaults
HAVE_WORKLOAD = (lb.WORKLOAD / "Image.xz").exists() and (lb.WORKLOAD / "initrd.gz").exists()


def needs_linux(test):
    """slow, and skipped without the workload or the built perf program"""
    for mark in (pytest.mark.skipif(not lb.PERF_PROGRAM.exists(),
                                    reason=f"{lb.PERF_PROGRAM} not built (guests/build.py)"),
                 pytest.mark.skipif(not HAVE_WORKLOAD, reason=f"no Linux workload in {lb.WORKLOAD}"),
                 pytest.mark.slow):
        test = mark(test)
    return test


def boot(tmp_path, *, xen: bool = False, **options) -> tuple[api.RunResult, str, float]:
    """A boot with our initramfs: the result, its console output (the tty's CRLF as LF) and the
    CPU seconds it took."""
    rd = lb.compose(tmp_path / "initrd.gz")
    t0 = time.process_time()
    r = api.run(str(lb.kernel_image()), initrd=str(rd), append=lb.APPEND_XEN if xen else lb.APPEND,
                memory=lb.MEMORY, rtc_base=RTC_BASE, xen=xen, **options)
    return r, r.output.replace("\r\n", "\n"), time.process_time() - t0


# --- reading the console ------------------------------------------------------------------------

PERFTEST = re.compile(r"^perftest: (\S+)\s+(\d+)\s+(\d+)\s+(-?\d+) (\d+)/(\d+)$")


def perftest(out: str) -> dict[str, tuple[int, int, int]]:
    """The shared perftest's table: event -> (N=0, N=iters, difference)."""
    rows = {}
    for line in out.splitlines():
        m = PERFTEST.match(line.strip())
        if m:
            rows[m.group(1)] = (int(m.group(2)), int(m.group(3)), int(m.group(4)))
    return rows


def vpmu_perf(out: str, what: str) -> list[dict[str, str]]:
    """vpmu_perf's "vpmu_perf: WHAT k=v ..." lines as dicts."""
    rows = []
    for line in out.splitlines():
        if line.startswith(f"vpmu_perf: {what} "):
            rows.append(dict(kv.split("=", 1) for kv in line.split()[2:] if "=" in kv))
    return rows


def counts(out: str) -> dict[str, dict[str, int]]:
    return {r["event"]: {k: int(v) for k, v in r.items() if k != "event"} for r in vpmu_perf(out, "count")}


def events_listed(out: str) -> set[str]:
    line = next(x for x in out.splitlines() if x.startswith("init: events "))
    return set(line.split()[2:])


def assert_in_order(out: str, *needles: str) -> None:
    at = 0
    for n in needles:
        i = out.find(n, at)
        assert i >= 0, f"{n!r} not in the console output (after offset {at})"
        at = i + len(n)


# The shared perftest (the workload's README: N=0 is the 42 EL0 instructions of glibc's prctl
# wrappers; the loop alone: 3,000,001 instructions and cycles, 1,000,000 branches retired,
# 999,998 taken branches, which perf's BRANCH_INSTRUCTIONS is on armv8_pmuv3)
PERFTEST_EXACT = {"INSTRUCTIONS": (42, 3_000_043, 3_000_001), "BRANCH_INSTRUCTIONS": (5, 1_000_003, 999_998),
                  "CPU_CYCLES": (42, 3_000_043, 3_000_001), "raw:0x08_INST_RETIRED": (42, 3_000_043, 3_000_001),
                  "raw:0x21_BR_RETIRED": (7, 1_000_007, 1_000_000)}


def assert_exact_counts(out: str) -> None:
    assert perftest(out) == PERFTEST_EXACT
    c = counts(out)
    # ITERS extra iterations of (add, subs, b.ne): 3 instructions (and cycles), one branch
    # retired and one taken branch each (vpmu_perf.c)
    for ev in ("INSTRUCTIONS", "CPU_CYCLES", "raw_0x08", "raw_0x11"):
        assert c[ev]["diff"] == 3 * ITERS, ev
    for ev in ("BRANCH_INSTRUCTIONS", "raw_0x0c", "raw_0x21"):
        assert c[ev]["diff"] == ITERS, ev
    # the same EL0 instructions around vloop(1) whatever the event counting them
    assert len({c[ev]["base"] for ev in ("INSTRUCTIONS", "CPU_CYCLES", "raw_0x08", "raw_0x11")}) == 1
    assert c["BRANCH_INSTRUCTIONS"]["base"] == c["raw_0x0c"]["base"]


def assert_exact_samples(out: str) -> None:
    [s] = [row for row in vpmu_perf(out, "sample") if "period" in row]
    n, total = int(s["samples"]), int(s["count"])
    assert (int(s["period"]), int(s["iters"])) == (PERIOD, ITERS)
    # vloop(ITERS) is 3 * ITERS + 3 instructions; the rest is the ioctl wrappers' EL0 tail/head
    assert 3 * ITERS + 3 < total < 3 * ITERS + 200
    assert n == total // PERIOD == 30                     # one sample every PERIOD instructions, none lost
    assert int(s["in_loop"]) == n and int(s["lost"]) == 0 and int(s["other"]) == 0
    ips = [int(x) for line in out.splitlines() if line.startswith("vpmu_perf: sample ips")
           for x in line.split()[3:]]
    assert len(ips) == n and set(ips) <= {0, 4, 8}        # every sample IP is a loop instruction
    # no skid: the IP is the instruction after the PERIOD-th; PERIOD % 3 == 1, so each sample is
    # one loop instruction further than the one before
    step = 4 * (PERIOD % 3)
    assert all(b == (a + step) % 12 for a, b in zip(ips, ips[1:])), ips


# --- the boots ----------------------------------------------------------------------------------

@needs_linux
def test_linux_counts_and_samples_exactly(tmp_path):
    r, out, cpu = boot(tmp_path)
    assert r.error is None and r.exit_status == 0 and r.reason == "system_off", r.error
    assert_in_order(out, "Booting Linux on physical CPU 0x0000000000 [0x411fd070]",
                    "random: crng init done",                         # early entropy: /chosen/rng-seed
                    "CPU features: detected: GIC system register CPU interface",
                    "hw perfevents: enabled with armv8_pmuv3 PMU driver, 7 counters available",
                    "rtc-pl031 9010000.pl031: setting system clock to 2026-01-01T00:00:00 UTC (1767225600)",
                    "Run /init as init process", "init: reached /init", "init: done", "reboot: Power down")
    assert "KASLR enabled" in out and "KASLR disabled" not in out     # /chosen/kaslr-seed
    assert re.search(r"^init: date 2026-01-01T00:00:0[01]$", out, re.M)
    assert {"inst_retired", "br_retired", "cpu_cycles", "pc_write_retired"} <= events_listed(out)
    assert_exact_counts(out)
    assert_exact_samples(out)
    print(f"linux boot: {cpu:.1f} s CPU, {r.icount} instructions")


@needs_linux
def test_linux_under_a_kvm_event_filter(tmp_path):
    r, out, cpu = boot(tmp_path, filters=["deny:INST_RETIRED", "deny:BR_RETIRED"])
    assert r.exit_status == 0 and "hw perfevents: enabled with armv8_pmuv3 PMU driver, 7 counters available" in out
    listed = events_listed(out)
    assert not {"inst_retired", "br_retired"} & listed                # PMCEID masked by the filter
    assert {"cpu_cycles", "pc_write_retired", "br_immed_retired"} <= listed
    # perf's INSTRUCTIONS maps to 0x08, not in PMCEID: the driver refuses it
    assert "perftest: open INSTRUCTIONS           failed: No such file or directory (errno 2)" in out
    assert "vpmu_perf: open event=INSTRUCTIONS errno=2 (No such file or directory)" in out
    assert "vpmu_perf: sample open errno=2 (No such file or directory)" in out
    # raw events are not checked against PMCEID: they open, and the filter keeps them at 0
    rows = perftest(out)
    assert rows["raw:0x08_INST_RETIRED"] == rows["raw:0x21_BR_RETIRED"] == (0, 0, 0)
    assert rows["CPU_CYCLES"] == PERFTEST_EXACT["CPU_CYCLES"]
    assert rows["BRANCH_INSTRUCTIONS"] == PERFTEST_EXACT["BRANCH_INSTRUCTIONS"]
    c = counts(out)
    assert "INSTRUCTIONS" not in c
    assert c["raw_0x08"] == c["raw_0x21"] == {"iters": ITERS, "base": 0, "total": 0, "diff": 0}
    assert c["CPU_CYCLES"]["diff"] == 3 * ITERS and c["raw_0x0c"]["diff"] == ITERS
    print(f"linux boot with a filter: {cpu:.1f} s CPU")


@needs_linux
def test_linux_finds_the_xen_frontend(tmp_path):
    r, out, cpu = boot(tmp_path, xen=True)
    assert r.error is None and r.exit_status == 0, r.error
    assert_in_order(out, "earlycon: xenboot0 at I/O port 0x0 (options '')", "Xen 4.23 support found",
                    "printk: console [hvc0] enabled", "xen:grant_table: Grant tables using version 1 layout",
                    "Grant table initialized", "xen:events: Using 2-level ABI", "Xen: initializing cpu0",
                    "Run /init as init process", "init: reached /init")
    assert_exact_counts(out)
    assert_exact_samples(out)
    print(f"linux boot on the Xen frontend: {cpu:.1f} s CPU")


@needs_linux
def test_the_readme_command():
    """No workaround: the shared initrd as it is, the documented command, default RAM."""
    p = subprocess.run([sys.executable, "-m", "vpmu", "run", "--initrd", str(lb.WORKLOAD / "initrd.gz"),
                        "--append", "console=ttyAMA0 rdinit=/init", str(lb.kernel_image())],
                       capture_output=True, timeout=900)
    out = p.stdout.decode("utf-8", "replace").replace("\r\n", "\n")
    assert p.returncode == 0 and p.stderr == b"", p.stderr
    assert_in_order(out, "Memory: ", "/131072K available", "Run /init as init process", "init: --- perftest",
                    "perftest: done", "reboot: Power down")
    assert perftest(out) == PERFTEST_EXACT


# --- the initramfs writer (no kernel needed) -----------------------------------------------------

def test_newc_archive_format():
    data = lb.newc([("init", 0o100755, b"#!/bin/sh\n"), ("a/b", 0o100644, b"xyz")])
    assert len(data) % 4 == 0 and data.startswith(b"070701")
    files, off = [], 0
    while True:
        h = data[off:off + 110]
        f = [int(h[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
        namesize, filesize = f[11], f[6]
        name = data[off + 110:off + 110 + namesize - 1].decode()
        off = (off + 110 + namesize + 3) & ~3
        body = data[off:off + filesize]
        off = (off + filesize + 3) & ~3
        if name == "TRAILER!!!":
            break
        files.append((name, f[1], body))
    assert files == [("init", 0o100755, b"#!/bin/sh\n"), ("a/b", 0o100644, b"xyz")] and off == len(data)


def test_initramfs_is_two_archives():
    import gzip
    combined = lb.initramfs(b"BASE", [("x", 0o100644, b"1")])
    assert combined.startswith(b"BASE") and gzip.decompress(combined[4:]) == lb.newc([("x", 0o100644, b"1")])


@pytest.mark.skipif(subprocess.run(["sh", "-c", "command -v cpio"], capture_output=True).returncode != 0,
                    reason="needs cpio")
def test_cpio_reads_the_archive(tmp_path):
    (tmp_path / "a.cpio").write_bytes(lb.newc([("init", 0o100755, b"hello\n")]))
    p = subprocess.run(["cpio", "-i", "-t", "-v", "-F", str(tmp_path / "a.cpio")], capture_output=True, text=True)
    assert p.returncode == 0 and "init" in p.stdout and "-rwxr-xr-x" in p.stdout
