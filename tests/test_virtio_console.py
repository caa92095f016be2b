"""The virtio-mmio console and QEMU's testdev (vpmu/board/virtio_console.py, vpmu/board/chardev.py):
the testdev parser, the legacy transport's registers and rings against a fake guest memory
(malformed queues included), the device tree nodes, and guests/src/virtio_testdev.c - a small
legacy virtio-mmio driver - on vpmu, through the QEMU front, and on QEMU itself when installed."""
from __future__ import annotations

import shutil
import struct
import subprocess

import pytest

from vpmu import dtb as D
from vpmu.board import virtio_console as V
from vpmu.board import chardev as C
from vpmu.board.env import GuestExit, GuestFault
from vpmu.commands import qemu as Q
from vpmu.pytest_plugin import resolve_guest
from vpmu.testing import records

RAM = 0x4000_0000
CONSOLE = V.CONSOLE_TRANSPORT * D.VIRTIO_MMIO_SIZE      # the console's offset in the region
CONSOLE_INTID = 32 + D.VIRTIO_MMIO_FIRST_SPI + V.CONSOLE_TRANSPORT


# ---- the testdev protocol -------------------------------------------------------------------

def quit_status(*writes: bytes) -> int:
    dev = C.TestDev()
    with pytest.raises(GuestExit) as e:
        for w in writes:
            dev.write(w)
    assert e.value.reason == "testdev"
    return e.value.status


@pytest.mark.parametrize("writes,status", [
    ((b"0q",), 1), ((b"1q",), 3), ((b"38q",), 77), ((b"63q",), 127),        # kvm-unit-tests' exit codes
    ((b"3q",), 7), ((b"q",), 1), ((b" \t4 \nq",), 9),
    ((b"1", b"2", b"q"), 25), ((b"x4", b"2q"), 85), ((b"12x3q",), 7),        # 'x' ends the packet "12x"
    ((b"-1q",), 3), ((b"\x00" * 5 + b"5q",), 11), ((b"200q",), (401 & 0xFF)),
])
def test_testdev_packets(writes, status):
    assert quit_status(*writes) == status


def test_testdev_waits_for_the_command_and_ignores_what_follows_q():
    dev = C.TestDev()
    dev.write(b"  7 ")                         # an incomplete packet is kept
    with pytest.raises(GuestExit) as e:
        dev.write(b"q9q")
    assert e.value.status == C.testdev_status(7) == 15


def test_testdev_full_buffer_is_dropped_with_a_note():
    """QEMU loops forever on 32 bytes without a command; vpmu drops them and says so."""
    notes: list[str] = []
    dev = C.TestDev(notes.append)
    dev.write(b"1" * 32)
    assert len(notes) == 1 and "32 bytes" in notes[0]
    with pytest.raises(GuestExit) as e:
        dev.write(b"2q")
    assert e.value.status == 5


def test_other_backends():
    out: list[bytes] = []
    C.open_backend("stdio", out.append)(b"abc")
    C.open_backend("null", out.append)(b"zzz")
    assert out == [b"abc"]
    with pytest.raises(ValueError):
        C.open_backend("socket", out.append)


# ---- the transport, with a fake guest memory --------------------------------------------------

class FakeMem:
    def __init__(self, size: int = 1 << 20):
        self.data = bytearray(size)

    def is_ram(self, pa: int, size: int = 1) -> bool:
        return RAM <= pa and pa + size <= RAM + len(self.data)

    def read_phys(self, pa: int, size: int) -> bytes:
        if not self.is_ram(pa, size):
            raise GuestFault(f"IPA {pa:#x} is not RAM")
        return bytes(self.data[pa - RAM:pa - RAM + size])

    def write_phys(self, pa: int, data: bytes) -> None:
        if not self.is_ram(pa, len(data)):
            raise GuestFault(f"IPA {pa:#x} is not RAM")
        self.data[pa - RAM:pa - RAM + len(data)] = data


class FakeGic:
    def __init__(self):
        self.levels: dict[int, bool] = {}

    def set_level(self, intid: int, level: bool) -> None:
        self.levels[intid] = level


class Bench:
    """The device with a driver that lays its rings out in the fake memory."""
    RING = RAM + 0x10000
    BUFS = RAM + 0x40000

    def __init__(self, backend: str = "capture"):
        self.mem, self.gic, self.out, self.notes = FakeMem(), FakeGic(), [], []
        self.dev = V.VirtioMmio(self.mem, self.gic, self.out.append,
                                note=lambda t, q, text: self.notes.append((t, q, text)))
        self.next_desc, self.next_buf, self.avail = 0, self.BUFS, 0

    def r(self, reg: int, size: int = 4) -> int:
        return self.dev.read(CONSOLE + reg, size)

    def w(self, reg: int, value: int, size: int = 4) -> None:
        self.dev.write(CONSOLE + reg, size, value)

    def setup(self, page: int = 4096) -> None:
        self.w(V.REG_GUEST_PAGE_SIZE, page)
        shift = page.bit_length() - 1
        for q, base in ((V.RECEIVEQ, self.RING), (V.TRANSMITQ, self.RING + 0x2000)):
            self.w(V.REG_QUEUE_SEL, q)
            self.w(V.REG_QUEUE_NUM, 128)
            self.w(V.REG_QUEUE_ALIGN, 4096)
            self.w(V.REG_QUEUE_PFN, base >> shift)
        self.tx = self.RING + 0x2000

    def desc(self, i: int, addr: int, length: int, flags: int = 0, nxt: int = 0) -> None:
        self.mem.write_phys(self.tx + 16 * i, struct.pack("<QIHH", addr, length, flags, nxt))

    def buf(self, data: bytes) -> int:
        a = self.next_buf
        self.mem.write_phys(a, data)
        self.next_buf += (len(data) + 15) & ~15
        return a

    def make_available(self, head: int, flags: int = 0) -> None:
        avail = self.tx + 16 * 128
        self.mem.write_phys(avail + 4 + 2 * (self.avail % 128), struct.pack("<H", head))
        self.avail = (self.avail + 1) & 0xFFFF
        self.mem.write_phys(avail, struct.pack("<HH", flags, self.avail))

    def chain(self, *parts: bytes, writable: int = 0, flags: int = 0) -> int:
        """Readable buffers, then ``writable`` device-writable ones; returns the head."""
        head = self.next_desc
        n = len(parts) + writable
        for k in range(n):
            i = self.next_desc
            self.next_desc += 1
            last = k == n - 1
            if k < len(parts):
                self.desc(i, self.buf(parts[k]), len(parts[k]), 0 if last else V.DESC_F_NEXT, i + 1)
            else:
                self.desc(i, self.buf(bytes(8)), 8, V.DESC_F_WRITE | (0 if last else V.DESC_F_NEXT), i + 1)
        self.make_available(head, flags)
        return head

    def used(self) -> tuple[int, list[tuple[int, int]]]:
        used = self.tx + 0x1000
        idx = struct.unpack("<H", self.mem.read_phys(used + 2, 2))[0]
        elems = [struct.unpack("<II", self.mem.read_phys(used + 4 + 8 * k, 8)) for k in range(min(idx, 128))]
        return idx, elems

    def notify(self, q: int = V.TRANSMITQ) -> None:
        self.w(V.REG_QUEUE_NOTIFY, q)

    @property
    def irq(self) -> bool:
        return self.gic.levels.get(CONSOLE_INTID, False)


def test_empty_transports_read_like_qemus():
    b = Bench()
    for t in (0, 7, 30):
        off = t * D.VIRTIO_MMIO_SIZE
        assert [b.dev.read(off + r, 4) for r in (V.REG_MAGIC_VALUE, V.REG_VERSION, V.REG_DEVICE_ID,
                                                 V.REG_VENDOR_ID, V.REG_QUEUE_NUM_MAX, 0x100)] == \
            [0x74726976, 1, 0, 0x554D4551, 0, 0]
        assert b.dev.read(off, 1) == 0x76                  # QEMU answers before looking at the size
        b.dev.write(off + V.REG_STATUS, 4, 0xF)            # ignored
        assert b.dev.read(off + V.REG_STATUS, 4) == 0


def test_console_registers():
    b = Bench()
    assert [b.r(r) for r in (V.REG_MAGIC_VALUE, V.REG_VERSION, V.REG_DEVICE_ID, V.REG_VENDOR_ID,
                             V.REG_HOST_FEATURES)] == [0x74726976, 1, 3, 0x554D4551, 0]
    for q, numax in ((0, 1024), (1, 1024), (2, 0), (1023, 0)):
        b.w(V.REG_QUEUE_SEL, q)
        assert (b.r(V.REG_QUEUE_NUM_MAX), b.r(V.REG_QUEUE_PFN)) == (numax, 0)
    b.w(V.REG_QUEUE_SEL, 1024)                              # out of range: QueueSel unchanged
    assert b.r(V.REG_QUEUE_NUM_MAX) == 0 and b.dev.console.queue_sel == 1023
    b.w(V.REG_QUEUE_SEL, 1)
    assert b.dev.console.device.queues[1].num == 128        # virtio-serial's queue size until written
    b.w(V.REG_QUEUE_NUM, 0)                                  # QEMU: a queue cannot be made to vanish
    b.w(V.REG_QUEUE_NUM, 1025)
    assert b.dev.console.device.queues[1].num == 128
    b.w(V.REG_QUEUE_NUM, 64)
    assert b.dev.console.device.queues[1].num == 64
    assert b.r(V.REG_VERSION, 2) == 0                        # registers are 32-bit only
    b.w(V.REG_STATUS, 7, size=2)
    assert b.r(V.REG_STATUS) == 0
    b.w(V.REG_STATUS, 0x107)
    assert b.r(V.REG_STATUS) == 0x07
    b.w(V.REG_GUEST_FEATURES, 0xFFFF_FFFF)                   # nothing offered, nothing accepted
    assert b.dev.console.guest_features == 0


def test_config_space():
    b = Bench()
    assert b.r(0x100, 2) == 0 and b.r(0x102, 2) == 0           # cols, rows
    assert b.r(0x104, 4) == 1 and b.r(0x104, 1) == 1           # max_nr_ports
    assert b.r(0x108, 4) == 0                                  # emerg_wr
    assert b.r(0x10A, 4) == 0xFFFF_FFFF and b.r(0x10C, 1) == 0xFF   # past the 12 bytes: all ones


@pytest.mark.parametrize("page,shift", [(4096, 12), (0x10000, 16), (0, 0), (6, 1)])
def test_queue_pfn_uses_the_page_size(page, shift):
    b = Bench()
    b.w(V.REG_GUEST_PAGE_SIZE, page)
    b.w(V.REG_QUEUE_SEL, 1)
    b.w(V.REG_QUEUE_PFN, 0x40010)
    assert b.dev.console.device.queues[1].desc == 0x40010 << shift
    assert b.r(V.REG_QUEUE_PFN) == 0x40010


@pytest.mark.parametrize("how", ["status", "pfn"])
def test_reset(how):
    b = Bench()
    b.setup()
    b.chain(b"x")
    b.notify()
    assert b.r(V.REG_INTERRUPT_STATUS) == 1 and b.irq
    b.w(V.REG_STATUS, 0) if how == "status" else b.w(V.REG_QUEUE_PFN, 0)
    assert (b.r(V.REG_INTERRUPT_STATUS), b.irq) == (0, False)
    for q in (0, 1):
        b.w(V.REG_QUEUE_SEL, q)
        assert b.r(V.REG_QUEUE_PFN) == 0
    assert b.dev.console.queue_sel == 1 and b.dev.console.guest_page_shift == 12   # the transport's stay


def test_transmit_uses_the_chain_and_signals():
    b = Bench()
    b.setup()
    h0 = b.chain(b"hello ", b"virtio", writable=1)           # a writable buffer is not output
    h1 = b.chain(b"!\n")
    b.notify()
    assert b"".join(b.out) == b"hello virtio!\n"
    assert b.used() == (2, [(h0, 0), (h1, 0)])
    assert b.r(V.REG_INTERRUPT_STATUS) == 1 and b.irq
    b.w(V.REG_INTERRUPT_ACK, 1)
    assert (b.r(V.REG_INTERRUPT_STATUS), b.irq) == (0, False)
    b.notify()                                                # nothing new: no output, still signalled (QEMU)
    assert b"".join(b.out) == b"hello virtio!\n" and b.used()[0] == 2 and b.irq
    assert b.notes == []


def test_no_interrupt_flag_is_honoured():
    b = Bench()
    b.setup()
    b.chain(b"quiet", flags=V.AVAIL_F_NO_INTERRUPT)
    b.notify()
    assert b"".join(b.out) == b"quiet" and b.used()[0] == 1
    assert (b.r(V.REG_INTERRUPT_STATUS), b.irq) == (0, False)


def test_indices_wrap_at_16_bits():
    b = Bench()
    b.setup()
    vq = b.dev.console.device.queues[1]
    vq.last_avail = vq.used_idx = 0xFFFE
    b.avail = 0xFFFE
    for text in (b"a", b"b", b"c"):
        b.chain(text)
    b.mem.write_phys(b.tx + 0x1000 + 2, struct.pack("<H", 0xFFFE))
    b.notify()
    assert b"".join(b.out) == b"abc" and (vq.last_avail, vq.used_idx) == (1, 1)


def test_large_buffer_arrives_whole_and_in_order():
    b = Bench()
    b.setup()
    data = bytes(range(256)) * 500                           # 128000 bytes: more than one READ_CHUNK
    b.chain(data)
    b.notify()
    assert b"".join(b.out) == data and len(b.out) > 1


def test_receiveq_and_other_queues_do_nothing():
    b = Bench()
    b.setup()
    b.notify(V.RECEIVEQ)
    b.notify(5)
    b.notify(5000)
    assert (b.out, b.notes, b.irq) == ([], [], False)


def test_notify_before_setup_is_noted():
    b = Bench()
    b.notify()
    assert b.notes == [(V.CONSOLE_TRANSPORT, 1, "notify ignored: the queue is not set up (QueuePFN is 0)")]


def _rings_outside_ram(b: Bench) -> None:
    b.w(V.REG_QUEUE_SEL, 1)
    b.w(V.REG_QUEUE_PFN, 0x0F000)             # 0x0f000000: a hole in virt's map


MALFORMED = {
    "rings outside RAM": (_rings_outside_ram, "are not in RAM", False),
    "buffer outside RAM": (lambda b: (b.desc(0, 0x0F00_0000, 4), b.make_available(0)), "is not in RAM", True),
    "head out of range": (lambda b: b.make_available(128), "names descriptor 128", True),
    "next out of range": (lambda b: (b.desc(0, b.buf(b"a"), 1, V.DESC_F_NEXT, 300), b.make_available(0)),
                          "chains to 300", True),
    "loop": (lambda b: (b.desc(0, b.buf(b"a"), 1, V.DESC_F_NEXT, 1), b.desc(1, b.buf(b"b"), 1, V.DESC_F_NEXT, 0),
                        b.make_available(0)), "a loop", True),
    "indirect": (lambda b: (b.desc(0, b.buf(bytes(16)), 16, V.DESC_F_INDIRECT), b.make_available(0)),
                 "indirect", True),
    "readable after writable": (lambda b: (b.desc(0, b.buf(bytes(4)), 4, V.DESC_F_WRITE | V.DESC_F_NEXT, 1),
                                           b.desc(1, b.buf(b"a"), 1), b.make_available(0)),
                                "device-readable after a device-writable", True),
    "available index jump": (lambda b: b.mem.write_phys(b.tx + 16 * 128 + 2, struct.pack("<H", 129)),
                             "moved by 129 entries", True),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_queue_stops_the_device_until_reset(case):
    make, text, signalled = MALFORMED[case]
    b = Bench()
    b.setup()
    make(b)
    b.notify()
    assert b.out == [] and len(b.notes) == 1
    assert b.notes[0][:2] == (V.CONSOLE_TRANSPORT, 1) and text in b.notes[0][2], b.notes
    assert b.notes[0][2].startswith("malformed queue, device stopped until reset")
    assert b.irq == signalled                 # QEMU's virtio-serial signals after the failed flush too
    b.notify()
    assert b.out == [] and "needs a reset" in b.notes[1][2]
    b.w(V.REG_STATUS, 0)                      # the driver resets and starts over
    b.next_desc, b.avail = 0, 0
    b.mem.data[:] = bytes(len(b.mem.data))
    b.setup()
    b.chain(b"ok")
    b.notify()
    assert b"".join(b.out) == b"ok" and len(b.notes) == 2


def test_testdev_quits_inside_the_notify():
    mem, gic = FakeMem(), FakeGic()
    b = Bench()
    b.dev = V.VirtioMmio(mem, gic, C.TestDev().write, note=lambda *a: None)
    b.mem, b.gic = mem, gic
    b.setup()
    b.chain(b"3", b"q")
    with pytest.raises(GuestExit) as e:
        b.notify()
    assert e.value.status == 7


# ---- the device tree ----------------------------------------------------------------------------

def test_device_tree_nodes():
    dts = D.to_dts(D.BoardSpec(virtio_mmio=True))
    assert dts.count('compatible = "virtio,mmio";') == 32
    last = dts[dts.index("virtio_mmio@a003e00 {"):]
    last = last[:last.index("};")]
    assert "reg = <0x0 0xA003E00 0x0 0x200>;" in last and "interrupts = <0x0 0x2F 0x1>;" in last
    assert "dma-coherent;" in last
    assert dts.index("virtio_mmio@a000000") < dts.index("virtio_mmio@a000200") < dts.index("virtio_mmio@a003e00")
    assert "virtio" not in D.to_dts(D.BoardSpec())
    with pytest.raises(ValueError, match="INTID 79"):
        D.BoardSpec(virtio_mmio=True, pmu_irq=CONSOLE_INTID)


# ---- the guest driver ------------------------------------------------------------------------------

MODES = {"": 7, "after": 7, "split": 85, "edge": 1, "bad": 11, "loop": 13}


@pytest.mark.parametrize("mode", sorted(MODES))
def test_guest_driver_on_vpmu(vpmu_run, mode):
    r = vpmu_run("virtio_testdev", virtio_console="testdev", append=f"mode={mode}", pmu_version="3.0",
                 trace="/dev/null")
    assert (r.exit_status, r.reason) == (MODES[mode], "testdev"), r.output
    assert "FAIL" not in r.output and f"console=0x{D.VIRTIO_MMIO_BASE + CONSOLE:x}" in r.output
    assert "spi_intid=79" in r.output and "queue_num_max=1024" in r.output
    assert "after" not in r.output            # the quit ended the run inside the QueueNotify write
    notes = records(r, "virtio")
    if mode in ("bad", "loop"):
        assert "broken_device_ignored_notify=1" in r.output
        assert [n["note"].split(":")[0] for n in notes] == ["malformed queue, device stopped until reset",
                                                            "notify ignored"]
        assert ("descriptor 200" if mode == "bad" else "a loop") in notes[0]["note"]
    else:
        assert notes == []
    assert records(r, "exit")[0]["reason"] == "testdev"


def test_guest_driver_console_on_stdio(vpmu_run):
    r = vpmu_run("virtio_testdev", virtio_console="stdio", append="mode=stdio")
    assert r.exit_status == 0 and "hello virtio console\nfailures=0\n" in r.output


def test_guest_driver_through_the_front(vpmu_guest_dir, capsys):
    guest = resolve_guest(vpmu_guest_dir, "virtio_testdev")
    argv = ["-nodefaults", "-machine", "virt", "-accel", "tcg", "-cpu", "cortex-a57", "-device",
            "virtio-serial-device", "-device", "virtconsole,chardev=ctd", "-chardev", "testdev,id=ctd",
            "-display", "none", "-serial", "stdio", "-semihosting", "-kernel", guest, "-append", "mode=split"]
    assert Q.run_front(argv, "vpmu-system-aarch64") == 85
    out = capsys.readouterr()
    assert "used_idx=1\n" in out.out and out.err == ""


def test_without_semihosting_hlt_is_undefined(vpmu_run):
    r = vpmu_run("hello", no_semihosting=True, max_insns=100_000, trace="/dev/null", expect_error=True)
    first = records(r, "exception")[0]
    assert (first["kind"], first["esr"]) == ("undef", 0x0200_0000)       # EC 0 (unknown), IL
    assert r.exit_status == 103                                           # the runtime's exit() UNDEFs too


QEMU = shutil.which("qemu-system-aarch64")


@pytest.mark.qemu
@pytest.mark.skipif(QEMU is None, reason="qemu-system-aarch64 is not installed")
@pytest.mark.parametrize("mode", sorted(MODES) + ["stdio"])
def test_guest_driver_same_on_qemu(vpmu_run, vpmu_guest_dir, mode):
    guest = resolve_guest(vpmu_guest_dir, "virtio_testdev")
    chardev = (["-chardev", "stdio,id=ctd,mux=on", "-serial", "chardev:ctd"] if mode == "stdio"
               else ["-chardev", "testdev,id=ctd", "-serial", "stdio"])
    q = subprocess.run([QEMU, "-M", "virt,gic-version=3", "-cpu", "cortex-a57", "-semihosting", "-nodefaults",
                        "-display", "none", "-device", "virtio-serial-device", "-device", "virtconsole,chardev=ctd",
                        *chardev, "-kernel", guest, "-append", f"mode={mode}"],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    r = vpmu_run("virtio_testdev", virtio_console="stdio" if mode == "stdio" else "testdev",
                 append=f"mode={mode}", pmu_version="3.0")
    assert (r.output, r.exit_status) == (q.stdout, q.returncode)
