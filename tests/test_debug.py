"""Self-hosted debug (vpmu/board/debug.py, docs/debug.md): hardware watchpoints, software step,
the OS lock, through real guests that check every ESR/ELR/FAR/SPSR themselves
(guests/src/debug_wp.c, guests/src/debug_ss.c), plus the two decoders the watchpoints rest
on: the data footprint of an A64 instruction and the byte range of a DBGWCR/DBGWVR pair.

With ``VPMU_KUT_BUILD`` set to a kvm-unit-tests build directory (arm64, ``--target-cpu=
cortex-a57``), its own ``arm/debug.flat`` runs the three single-CPU entries of
``arm/unittests.cfg`` (debug-bp, debug-wp, debug-sstep) and must PASS them as QEMU 7.2 does.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from vpmu.board.debug import watched_range
from vpmu.board.ldst import Footprint, footprint
from vpmu.testing import assert_kv, records

ESR_EC = 26

# ------------------------------------------------------------------------------ the guests


def test_watchpoint_guest(vpmu_run):
    r = vpmu_run("debug_wp")
    assert r.exit_status == 0, r.output
    assert_kv(r, failures=0, wrps=4, brps=6, dczva_block=64, el0_retired_plain=6, el0_retired_watched=6)
    kv = r.kv()
    assert int(kv["wp_cases"]) > 1000
    hits = records(r, "exception", kind="watchpoint")
    assert len(hits) == int(kv["wp_hits"]) > 500
    assert {h["esr"] >> ESR_EC for h in hits} == {0x34, 0x35}
    assert all(h["esr"] & 0x3F == 0x22 for h in hits)                 # DFSC: debug exception
    assert {h["from_el"] for h in hits if h["esr"] >> ESR_EC == 0x34} == {0}
    assert {h["from_el"] for h in hits if h["esr"] >> ESR_EC == 0x35} == {1}
    # the page the data abort handler maps (no TLBI): the abort, then the watchpoint
    aborts = records(r, "exception", kind="data_abort")
    assert len(aborts) == 1 and aborts[0]["far"] == 0x80000010
    after = [h for h in hits if h["icount"] > aborts[0]["icount"]][0]
    assert after["elr"] == aborts[0]["elr"] and after["far"] == 0x80000010


def test_watchpoints_with_the_cache_model(vpmu_run):
    """The data-side cache hook and the watchpoint hooks together (the cache hook stays last)."""
    r = vpmu_run("debug_wp", cache="line=64,l1d-size=4K,l1d-ways=2")
    assert_kv(r, failures=0)


def test_software_step_guest(vpmu_run):
    r = vpmu_run("debug_ss")
    assert r.exit_status == 0, r.output
    assert_kv(r, failures=0, ss_cases=9, el0_retired_stepped=6, el0_retired_plain=6, psci_version="0x10001")
    steps = records(r, "exception", kind="software_step")
    assert len(steps) == 7 + 5 + 3 + 3 + 6           # el1, hvc, abort, oslock, el0 (guest's tables)
    assert {s["esr"] >> ESR_EC for s in steps} == {0x32, 0x33}
    assert len(records(r, "exception", kind="breakpoint")) == 1


def test_no_debug_exception_without_unlocking(vpmu_run):
    """After reset the OS lock is set: the guests check that nothing fires until they clear it
    (OSLSR_EL1 reads 0b1010 first, then 0b1000)."""
    r = vpmu_run("debug_wp")
    assert "OSLSR_EL1" not in r.output and "FAIL" not in r.output


# ------------------------------------------------------------------------------ decoders

X = {n: 0x1000 + 0x100 * n for n in range(31)}
SP, PC = 0x8000, 0x4000
NEG16 = (1 << 64) - 16


def fp(word, pc=PC, **regs):
    x = dict(X)
    for k, v in regs.items():
        x[int(k[1:])] = v
    return footprint(word, lambda n: x[n], SP, pc, 64)


# (word, expected Footprint or None, register overrides); words from clang's assembler
FOOTPRINTS = [
    (0x39400020, Footprint(0x1100, 1, False), {}),                    # ldrb w0, [x1]
    (0x79400420, Footprint(0x1102, 2, False), {}),                    # ldrh w0, [x1, #2]
    (0xB9400820, Footprint(0x1108, 4, False), {}),                    # ldr w0, [x1, #8]
    (0xF9400820, Footprint(0x1110, 8, False), {}),                    # ldr x0, [x1, #16]
    (0x390007E0, Footprint(0x8001, 1, True), {}),                     # strb w0, [sp, #1]
    (0x3D800820, Footprint(0x1120, 16, True), {}),                    # str q0, [x1, #32]
    (0xFC5F8C20, Footprint(0x10F8, 8, False), {}),                    # ldr d0, [x1, #-8]!
    (0xBC404420, Footprint(0x1100, 4, False), {}),                    # ldr s0, [x1], #4
    (0xF85FD020, Footprint(0x10FD, 8, False), {}),                    # ldur x0, [x1, #-3]
    (0xF8405820, Footprint(0x1105, 8, False, True), {}),              # ldtr x0, [x1, #5]
    (0x381FF820, Footprint(0x10FF, 1, True, True), {}),               # sttrb w0, [x1, #-1]
    (0xB9800420, Footprint(0x1104, 4, False), {}),                    # ldrsw x0, [x1, #4]
    (0x39C00420, Footprint(0x1101, 1, False), {}),                    # ldrsb w0, [x1, #1]
    (0xF8627820, Footprint(0x1100 + 8 * 0x1200, 8, False), {}),      # ldr x0, [x1, x2, lsl #3]
    (0xB862D820, Footprint(0x1100 - 64, 4, False), {"x2": NEG16}),   # ldr w0, [x1, w2, sxtw #2]
    (0x78224820, Footprint(0x1100 + 0xFFFFFFF0, 2, True), {"x2": NEG16}),   # strh w0, [x1, w2, uxtw]
    (0xF8626820, Footprint(0x10F0, 8, False), {"x2": NEG16}),        # ldr x0, [x1, x2]
    (0x58000080, Footprint(PC + 16, 8, False), {}),                   # ldr x0, .+16
    (0x9CFFFFC0, Footprint(PC - 8, 16, False), {}),                   # ldr q0, .-8
    (0x98000020, Footprint(PC + 4, 4, False), {}),                    # ldrsw x0, .+4
    (0xF9800020, None, {}),                                           # prfm pldl1keep, [x1]
    (0xD8000040, None, {}),                                           # prfm pldl1keep, .+8
    (0xA9410C20, Footprint(0x1110, 16, False), {}),                   # ldp x0, x3, [x1, #16]
    (0x29BF0C20, Footprint(0x10F8, 8, True), {}),                     # stp w0, w3, [x1, #-8]!
    (0xACC107E0, Footprint(0x8000, 32, False), {}),                   # ldp q0, q1, [sp], #32
    (0x6C408420, Footprint(0x1108, 16, False), {}),                   # ldnp d0, d1, [x1, #8]
    (0x69400C20, Footprint(0x1100, 8, False), {}),                    # ldpsw x0, x3, [x1]
    (0xC85F7C20, Footprint(0x1100, 8, False), {}),                    # ldxr x0, [x1]
    (0x88047C20, Footprint(0x1100, 4, True), {}),                     # stxr w4, w0, [x1]
    (0xC87F8C20, Footprint(0x1100, 16, False), {}),                   # ldaxp x0, x3, [x1]
    (0x88248C20, Footprint(0x1100, 8, True), {}),                     # stlxp w4, w0, w3, [x1]
    (0x88DFFC20, Footprint(0x1100, 4, False), {}),                    # ldar w0, [x1]
    (0x089FFFE0, Footprint(0x8000, 1, True), {}),                     # stlrb w0, [sp]
    (0x4C407020, Footprint(0x1100, 16, False), {}),                   # ld1 {v0.16b}, [x1]
    (0x0CDFA020, Footprint(0x1100, 16, False), {}),                   # ld1 {v0.8b, v1.8b}, [x1], #16
    (0x4C000820, Footprint(0x1100, 64, True), {}),                    # st4 {v0.4s-v3.4s}, [x1]
    (0x4C822C20, Footprint(0x1100, 64, True), {}),                    # st1 {v0.2d-v3.2d}, [x1], x2
    (0x0C404020, Footprint(0x1100, 24, False), {}),                   # ld3 {v0.8b-v2.8b}, [x1]
    (0x0D400C20, Footprint(0x1100, 1, False), {}),                    # ld1 {v0.b}[3], [x1]
    (0x0D204820, Footprint(0x1100, 4, True), {}),                     # st2 {v0.h, v1.h}[1], [x1]
    (0x0DFFB020, Footprint(0x1100, 16, False), {}),                   # ld4 {v0.s-v3.s}[1], [x1], #16
    (0x4D008420, Footprint(0x1100, 8, True), {}),                     # st1 {v0.d}[1], [x1]
    (0x4D40C820, Footprint(0x1100, 4, False), {}),                    # ld1r {v0.4s}, [x1]
    (0x4D60EC20, Footprint(0x1100, 32, False), {}),                   # ld4r {v0.2d-v3.2d}, [x1]
    (0xD50B7421, Footprint(0x1100, 64, True), {"x1": 0x1123}),       # dc zva, x1
    (0xD50B7E21, None, {}),                                           # dc civac, x1
    (0x8B020020, None, {}),                                           # add x0, x1, x2
    (0xF8500020, Footprint(0x1000, 8, False), {}),                    # ldur x0, [x1, #-256]
    (0xC8DFFC20, Footprint(0x1100, 8, False), {}),                    # ldar x0, [x1]
    (0xC8A07C20, None, {}),                                           # cas x0, x0, [x1] (Armv8.1)
    (0xF8208020, None, {}),                                           # swp x0, x0, [x1] (Armv8.1)
]


@pytest.mark.parametrize("word, want, regs", FOOTPRINTS, ids=[f"{w:08x}" for w, _, _ in FOOTPRINTS])
def test_footprint(word, want, regs):
    assert fp(word, **regs) == want


def test_footprint_wraps_at_64_bits():
    assert fp(0xF85FD020, x1=1) == Footprint((1 << 64) - 2, 8, False)      # ldur x0, [x1, #-3]


WCR_E, LSC_BOTH = 1, 3 << 3


@pytest.mark.parametrize("wcr, wvr, want", [
    (WCR_E | LSC_BOTH | 0xFF << 5, 0x1000, (0x1000, 0x1008)),
    (WCR_E | LSC_BOTH | 0x0C << 5, 0x1000, (0x1002, 0x1004)),
    (WCR_E | LSC_BOTH | 0x80 << 5, 0x1000, (0x1007, 0x1008)),
    (WCR_E | LSC_BOTH | 0x36 << 5, 0x1000, (0x1001, 0x1003)),     # not one run: the first
    (WCR_E | LSC_BOTH | 0xF2 << 5, 0x1004, (0x1005, 0x1006)),     # DBGWVR[2]: BAS[7:4] ignored
    (WCR_E | LSC_BOTH | 0xF0 << 5, 0x1004, None),
    (WCR_E | LSC_BOTH | 12 << 24 | 0xFF << 5, 0x12345, (0x12000, 0x13000)),
    (WCR_E | LSC_BOTH | 31 << 24, 0x4123_4567, (0, 1 << 31)),
    (WCR_E | LSC_BOTH | 1 << 24 | 0xFF << 5, 0x1000, None),       # reserved MASK values
    (WCR_E | LSC_BOTH | 2 << 24 | 0xFF << 5, 0x1000, None),
    (WCR_E | 0xFF << 5, 0x1000, None),                            # LSC 0b00
    (LSC_BOTH | 0xFF << 5, 0x1000, None),                         # E = 0
    (WCR_E | LSC_BOTH, 0x1000, None),                             # BAS 0
])
def test_watched_range(wcr, wvr, want):
    assert watched_range(wcr, wvr) == want


# ------------------------------------------------------------------------------ kvm-unit-tests

KUT = os.environ.get("VPMU_KUT_BUILD")


@pytest.mark.skipif(not KUT, reason="set VPMU_KUT_BUILD to a kvm-unit-tests arm64 build directory")
@pytest.mark.parametrize("entry, test_args, passes", [("debug-bp", "bp", 6), ("debug-wp", "wp", 8),
                                                       ("debug-sstep", "ss", 1)])
def test_kvm_unit_tests_debug(vpmu_run, entry, test_args, passes):
    flat = Path(KUT) / "arm" / "debug.flat"
    r = vpmu_run(str(flat), append=test_args)
    assert re.search(rf"^SUMMARY: {passes} tests$", r.output, re.M), r.output
    assert len(re.findall(r"^PASS: ", r.output, re.M)) == passes
    assert "FAIL" not in r.output
