"""kvm-unit-tests' own ``run_tests.sh`` driving vpmu through the QEMU-compatible front
(``QEMU=vpmu-system-aarch64``), entry by entry against QEMU 7.2 TCG (docs/qemu-compat.md,
"kvm-unit-tests").

kvm-unit-tests is not vendored: the test needs a build configured with
``--arch=arm64 --target-cpu=cortex-a57`` (so QEMU gets ``-cpu cortex-a57``, the CPU vpmu
models) in ``$VPMU_KUT_BUILD`` (default ``/work/kut/build-a57``) and is skipped without one.  It
is marked ``slow`` (a few minutes: the timer entry alone runs 1.6e9 guest instructions).

The expected verdicts are QEMU's, measured with QEMU 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18) on
the same build; when ``qemu-system-aarch64`` is installed the test runs the same entries on it
too and checks that QEMU still gives them, so the table cannot drift from what QEMU does.
Where vpmu is more exact than QEMU's TCG PMU (QEMU implements only SW_INCR, CPU_CYCLES and,
with -icount, INST_RETIRED), the entry runs and passes on vpmu where QEMU skips it or fails
it for lack of an event: :data:`MORE_EXACT` lists them with vpmu's result.

Harness settings: ``MAX_SMP=1`` (the single-CPU versions of psci and selftest-smp; vpmu models
one vCPU) and ``TIMEOUT=900s`` for every entry: the timer entry's own 10 s is what QEMU needs
in host time (its busy waits follow the host clock), while on vpmu guest time is the
instruction count and its mdelay() loops take ~35 s of host CPU.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KUT_DIR = Path(os.environ.get("VPMU_KUT_BUILD", "/work/kut/build-a57"))
QEMU = shutil.which("qemu-system-aarch64")



def _a57_build(d: Path) -> bool:
    """A built arm64 tree configured with --target-cpu=cortex-a57 (arm/run passes that -cpu)."""
    try:
        config = (d / "config.mak").read_text()
    except OSError:
        return False
    return (d / "run_tests.sh").is_file() and (d / "arm" / "pmu.flat").is_file() and \
        re.search(r"^TARGET_CPU=cortex-a57$", config, re.M) is not None


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not _a57_build(KUT_DIR),
                       reason=f"no kvm-unit-tests arm64 build configured with --target-cpu=cortex-a57 in "
                              f"{KUT_DIR} (set VPMU_KUT_BUILD; docs/qemu-compat.md says how to build one)"),
]

# QEMU 7.2 TCG, -cpu cortex-a57, MAX_SMP=1: the single-CPU entries of arm/unittests.cfg
QEMU_RESULTS = {
    "pmu-cycle-counter": "PASS (2 tests)",
    "pmu-event-introspection": "FAIL (1 tests, 1 unexpected failures)",
    "pmu-event-counter-config": "PASS (3 tests)",
    "pmu-basic-event-count": "SKIP (2 tests, 2 skipped)",
    "pmu-mem-access": "SKIP (2 tests, 2 skipped)",
    "pmu-mem-access-reliability": "SKIP (2 tests, 2 skipped)",
    "pmu-sw-incr": "PASS (5 tests, 1 skipped)",
    "pmu-chained-counters": "SKIP (1 tests, 1 skipped)",
    "pmu-chained-sw-incr": "SKIP (1 tests, 1 skipped)",
    "pmu-chain-promotion": "SKIP (1 tests, 1 skipped)",
    "pmu-overflow-interrupt": "SKIP (2 tests, 2 skipped)",
    "debug-bp": "PASS (6 tests)",
    "debug-wp": "PASS (8 tests)",
    "debug-sstep": "PASS (1 tests)",
    "selftest-vectors-kernel": "PASS (3 tests)",
    "selftest-vectors-user": "PASS (2 tests)",
    "selftest-smp": "PASS (1 tests)",
    "psci": "SKIP (1 tests, 1 skipped)",
    "timer": "PASS (18 tests)",
    "cache": "PASS (1 tests)",
}

# Entries QEMU skips or fails for lack of an event, and vpmu's result.  introspection and
# basic-event-count give exactly these results on QEMU with -icount 0 too (INST_RETIRED).
MORE_EXACT = {
    "pmu-event-introspection": "PASS (1 tests)",                 # INST_RETIRED (0x08) is implemented
    "pmu-basic-event-count": "PASS (11 tests, 1 skipped)",       # 64-bit variant needs PMUv3p5
    "pmu-mem-access": "PASS (3 tests, 1 skipped)",               # MEM_ACCESS (0x13)
    "pmu-mem-access-reliability": "PASS (2 tests, 1 skipped)",
    "pmu-chained-counters": "PASS (6 tests)",                    # CHAIN (0x1e)
    "pmu-chained-sw-incr": "PASS (2 tests)",
    "pmu-chain-promotion": "PASS (7 tests)",
    "pmu-overflow-interrupt": "PASS (7 tests, 1 skipped)",
}

RESULT = re.compile(r"^(PASS|FAIL|SKIP)\s+(\S+)(?:\s+(.*))?$")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


# QEMU's timer entry measures host time ("latency within 10 ms"): on a loaded host it fails on
# QEMU, so the live QEMU run does not judge it (vpmu's guest time is the instruction count).
HOST_TIMED = {"timer"}


def run_tests(qemu: str, logs: Path, jobs: int) -> dict[str, str]:
    env = dict(os.environ, QEMU=qemu, ACCEL="tcg", MAX_SMP="1", TIMEOUT="900s", unittest_log_dir=str(logs))
    p = subprocess.run(["./run_tests.sh", "-j", str(jobs), *QEMU_RESULTS], cwd=KUT_DIR, env=env,
                       capture_output=True, text=True, timeout=3600)
    results = {}
    for line in ANSI.sub("", p.stdout).splitlines():
        m = RESULT.match(line.strip())
        if m:
            results[m.group(2)] = f"{m.group(1)} {m.group(3) or ''}".strip()
    assert set(results) == set(QEMU_RESULTS), p.stdout + p.stderr
    return results


@pytest.fixture
def front(tmp_path) -> str:
    """A single-file $QEMU for the harness (it word-splits $QEMU): what the installed
    vpmu-system-aarch64 console script does, from this source tree."""
    wrapper = tmp_path / "bin" / "vpmu-system-aarch64"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH="{ROOT}" exec "{sys.executable}" -m vpmu qemu "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


def test_run_tests_sh_results_match_qemu(front, tmp_path):
    vpmu = run_tests(front, tmp_path / "logs-vpmu", jobs=2)
    if QEMU is not None:
        qemu = run_tests(QEMU, tmp_path / "logs-qemu", jobs=1)
        assert {k: v for k, v in qemu.items() if k not in HOST_TIMED} == \
            {k: v for k, v in QEMU_RESULTS.items() if k not in HOST_TIMED}
    expected = {name: MORE_EXACT.get(name, result) for name, result in QEMU_RESULTS.items()}
    wrong = {name: (vpmu[name], want) for name, want in expected.items() if vpmu[name] != want}
    assert not wrong, "entry: (vpmu, expected)\n" + "\n".join(f"{k}: {v}" for k, v in wrong.items())
