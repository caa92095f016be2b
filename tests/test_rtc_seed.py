"""The PL031 RTC (``--rtc-base``), the boot seeds in /chosen (``--seed``) and the processor
feature ID registers (GIC = 1, no EL2/EL3), as QEMU's virt presents them.

``guests/src/board_rtc.c`` drives the RTC through its registers and its interrupt (SPI 2,
INTID 34) and reads ID_AA64PFR0_EL1 / ID_PFR1_EL1; its output is QEMU 7.2's for the same
guest (-rtc base=...,clock=vm) except the exact CNTVCT at the match interrupt (QEMU arms
its alarm "now + N s", vpmu at the second boundary where the count becomes the match value).
"""
from __future__ import annotations

import shutil
import struct
import subprocess
import sys

import pytest

from vpmu.board import fdtedit
from vpmu.board.pl031 import Pl031
from vpmu.dtb import BoardSpec, boot_seed_bytes, build_dtb
from vpmu.errors import UsageError
from vpmu.options import RunOptions

QEMU = shutil.which("qemu-system-aarch64")
BASE = 1_767_225_600                       # 2026-01-01T00:00:00Z
S = 1_000_000_000


# --- the device, with a hand-driven clock ---------------------------------------------------------

class Clock:
    def __init__(self):
        self.ns = 0
        self.level = False
        self.alarm = None                     # (deadline, fire)

    def set_alarm(self, deadline, fire):
        self.alarm = None if deadline is None else (deadline, fire)

    def advance_to(self, ns):
        self.ns = ns
        if self.alarm and ns >= self.alarm[0]:
            _, fire = self.alarm
            self.alarm = None
            fire("rtc-alarm")


@pytest.fixture
def rtc():
    c = Clock()
    dev = Pl031(BASE, lambda: c.ns, lambda lv: setattr(c, "level", lv), c.set_alarm)
    return dev, c


def test_count_is_base_plus_guest_seconds(rtc):
    dev, c = rtc
    assert dev.read(0x00, 4) == BASE
    c.ns = 3 * S - 1
    assert dev.read(0x00, 4) == BASE + 2
    c.ns = 3 * S
    assert dev.read(0x00, 4) == BASE + 3
    assert dev.read(0x0C, 4) == 1                                       # RTCCR: always started
    assert [dev.read(0xFE0 + 4 * i, 4) for i in range(8)] == [0x31, 0x10, 0x14, 0x00, 0x0D, 0xF0, 0x05, 0xB1]
    assert dev.read(0x1C, 4) == 0 and dev.read(0x20, 4) == 0            # ICR write-only, unassigned


def test_load_register(rtc):
    dev, c = rtc
    c.ns = int(1.5 * S)
    dev.write(0x08, 4, 7)
    assert dev.read(0x00, 4) == 7 and dev.read(0x08, 4) == 7
    c.ns = 2 * S                                                        # the count keeps its phase
    assert dev.read(0x00, 4) == 8
    dev.write(0x08, 4, 0xFFFF_FFFF)
    c.ns = 3 * S
    assert dev.read(0x00, 4) == 0                                       # 32-bit wrap


def test_match_interrupt_at_the_second_boundary(rtc):
    dev, c = rtc
    c.ns = int(0.25 * S)
    dev.write(0x10, 4, 1)                                               # IMSC
    dev.write(0x04, 4, BASE + 3)
    assert c.alarm[0] == 3 * S                                          # when the count becomes MR
    c.advance_to(3 * S - 1)
    assert not c.level and dev.read(0x14, 4) == 0
    c.advance_to(3 * S)
    assert c.level and dev.read(0x14, 4) == 1 and dev.read(0x18, 4) == 1
    dev.write(0x1C, 4, 1)                                               # ICR
    assert not c.level and dev.read(0x14, 4) == 0


def test_masked_match_and_match_now(rtc):
    dev, c = rtc
    dev.write(0x04, 4, BASE)                                            # equal to the count: at once
    assert dev.read(0x14, 4) == 1 and dev.read(0x18, 4) == 0 and not c.level
    dev.write(0x10, 4, 3)                                               # only bit 0 is kept
    assert dev.read(0x10, 4) == 1 and c.level
    dev.write(0x10, 4, 0)
    assert not c.level


def test_a_match_value_in_the_past_waits_for_the_wrap(rtc):
    dev, c = rtc
    c.ns = 10 * S
    dev.write(0x04, 4, BASE + 9)
    assert c.alarm[0] == (10 + (1 << 32) - 1) * S


# --- through a guest ------------------------------------------------------------------------------

EXPECTED = {"periph_id": "0x141031", "cell_id": "0xb105f00d", "cr": "1", "dr": str(BASE), "irqs": "1",
            "irq_id": "34", "irq_mis": "1", "dr_at_irq": "2", "ris_after_icr": "0", "dr_after_load": "1000",
            "lr": "1000", "ris_match_now": "1", "mis_match_now": "0", "irqs_after": "1", "pfr0_gic": "1",
            "pfr1_gic": "1", "id_aa64pfr0": "0x1000022", "id_pfr1": "0x10010001"}


def test_guest_sees_the_rtc_and_the_gic_id_fields(vpmu_run):
    kv = vpmu_run("board_rtc", rtc_base=BASE).kv()
    assert {k: kv.get(k) for k in EXPECTED} == EXPECTED
    # the match interrupt ends the WFI at guest time 2 s: CNTVCT 125,000,000 (62.5 MHz), read
    # two instructions into the handler (the two ticks are its 16-cycle granule rounding up)
    assert 125_000_000 <= int(kv["irq_cntvct"]) <= 125_000_002


def test_default_rtc_base_is_the_host_clock(vpmu_run):
    import time
    before = int(time.time())
    dr = int(vpmu_run("board_rtc").kv()["dr"])
    assert before <= dr <= int(time.time())


@pytest.mark.qemu
@pytest.mark.skipif(QEMU is None, reason="needs qemu-system-aarch64")
def test_same_as_qemu(vpmu_run, vpmu_guest_dir):
    ours = vpmu_run("board_rtc", rtc_base=BASE).kv()
    q = subprocess.run([QEMU, "-M", "virt,gic-version=3", "-cpu", "cortex-a57", "-icount", "shift=0",
                        "-semihosting", "-nographic", "-nic", "none", "-m", "128M",
                        "-rtc", "base=2026-01-01T00:00:00,clock=vm", "-kernel",
                        str(vpmu_guest_dir / "board_rtc.elf")], capture_output=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    theirs = dict(line.split("=", 1) for line in q.stdout.decode().split() if "=" in line)
    ours.pop("irq_cntvct"), theirs.pop("irq_cntvct")
    assert ours == theirs


@pytest.mark.parametrize("value, message", [(-1, "--rtc-base must be in"), (1 << 32, "--rtc-base must be in"),
                                            ("x", "must be an integer")])
def test_bad_rtc_base(value, message):
    with pytest.raises(UsageError, match=message):
        RunOptions(rtc_base=value)


@pytest.mark.parametrize("value", [-1, 1 << 64])
def test_bad_seed(value):
    with pytest.raises(UsageError, match="--seed must be in"):
        RunOptions(seed=value)


def test_cli_flags(vpmu_guest_dir):
    p = subprocess.run([sys.executable, "-m", "vpmu", "run", "--rtc-base", "0x100000000",
                        str(vpmu_guest_dir / "board_rtc.elf")], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "--rtc-base" in p.stderr
    cfg = RunOptions(rtc_base=5, seed=9).to_machine_config()
    assert (cfg.rtc_base, cfg.seed) == (5, 9)


# --- the seeds --------------------------------------------------------------------------------------

def chosen(blob: bytes) -> fdtedit.Node:
    node = fdtedit.parse(blob).root.child("chosen")
    assert node is not None
    return node


def test_seeds_are_a_function_of_the_seed():
    a, b, c = (chosen(build_dtb(BoardSpec(seed=s))) for s in (0, 0, 1))
    assert len(a.get("rng-seed")) == 32 and len(a.get("kaslr-seed")) == 8       # QEMU's sizes
    assert a.get("rng-seed") == b.get("rng-seed") and a.get("kaslr-seed") == b.get("kaslr-seed")
    assert a.get("rng-seed") != c.get("rng-seed") and a.get("kaslr-seed") != c.get("kaslr-seed")
    assert a.get("rng-seed") == boot_seed_bytes(0, "rng-seed", 32)
    assert struct.unpack(">Q", a.get("kaslr-seed"))[0] != 0                      # 0 would disable KASLR


def test_user_tree_rng_seeds_are_replaced(tmp_path):
    """qemu_fdt_randomize_seeds: every rng-seed of a -dtb tree gets new bytes (same length)."""
    user = build_dtb(BoardSpec(seed=5))
    psci = fdtedit.parse(user).root.child("psci")
    out = fdtedit.qemu_edits(user, ram_base=0x4000_0000, ram_size=128 << 20, bootargs=None, initrd=None,
                             psci=psci, rng_seed=lambda n: boot_seed_bytes(7, "rng-seed", n))
    assert chosen(out).get("rng-seed") == boot_seed_bytes(7, "rng-seed", 32)
    assert chosen(out).get("kaslr-seed") == chosen(user).get("kaslr-seed")       # QEMU leaves it


def test_rtc_node_is_virts():
    t = fdtedit.parse(build_dtb(BoardSpec()))
    node = t.root.child("pl031@9010000")
    assert node.get("compatible") == b"arm,pl031\0arm,primecell\0"
    assert node.get("reg") == struct.pack(">QQ", 0x0901_0000, 0x1000)
    assert node.get("interrupts") == struct.pack(">III", 0, 2, 4)                # SPI 2, level high
    assert node.get("clocks") == struct.pack(">I", 0x8000) and node.get("clock-names") == b"apb_pclk\0"


def test_dtb_command_takes_the_seed(tmp_path):
    out = tmp_path / "t.dtb"
    p = subprocess.run([sys.executable, "-m", "vpmu", "dtb", "--seed", "3", "-o", str(out)], capture_output=True,
                       timeout=60)
    assert p.returncode == 0 and out.read_bytes() == build_dtb(BoardSpec(seed=3))
    p = subprocess.run([sys.executable, "-m", "vpmu", "dtb", "--seed", "-3"], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "64-bit" in p.stderr
