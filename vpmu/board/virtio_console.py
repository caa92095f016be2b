"""QEMU virt's virtio-mmio transports, with a legacy virtio console (``--virtio-console``).

What ``-device virtio-serial-device -device virtconsole,chardev=ID`` gives a guest on QEMU's
virt board, for kvm-unit-tests' chr-testdev exit path (lib/virtio-mmio.c, lib/chr-testdev.c)
and for any legacy virtio-mmio console driver:

- 32 transports of 0x200 bytes from 0x0a000000 (:data:`vpmu.dtb.VIRTIO_MMIO_BASE`), transport
  i on SPI 16 + i; the console is plugged into the last one (virt plugs the first
  ``-device`` into the highest transport): 0x0a003e00, SPI 47 (INTID 79).  The empty ones
  read MagicValue, Version and VendorID, everything else as 0, and ignore writes.
- The transport is the legacy (version 1) register layout (virtio 1.2, 4.2.4 "Legacy
  interface"), which is QEMU's default (``force-legacy``) and what kvm-unit-tests drives
  (QueuePFN): the register semantics below are QEMU's (hw/virtio/virtio-mmio.c): 32-bit
  accesses only (other sizes read 0 and are ignored) below the configuration space at
  0x100; QueueNumMax reads 1024 (VIRTQUEUE_MAX_SIZE) for a queue that exists; QueueNum
  accepts 1..1024 (the queue starts with virtio-serial's 128); QueuePFN is shifted by
  log2(GuestPageSize), 0 (before GuestPageSize is written) meaning byte addresses; writing 0
  to QueuePFN or Status resets the device.
- The device is a virtio console (device ID 3) without features: no MULTIPORT, so the guest
  sees port 0 only, with its receiveq (queue 0) and transmitq (queue 1).  QEMU also offers
  MULTIPORT, EMERG_WRITE, EVENT_IDX, INDIRECT_DESC and NOTIFY_ON_EMPTY; a driver that does
  not negotiate them (kvm-unit-tests negotiates nothing) cannot tell the difference.  The
  configuration space is virtio_console_config (cols, rows, max_nr_ports = 1, emerg_wr),
  12 bytes; reads past it are all ones as QEMU's.
- A QueueNotify of the transmitq consumes every available chain at once, inside the write,
  as QEMU does: the device-readable buffers go to the port's character device in order (the
  testdev ends the run right there, so nothing the guest does after the notify is seen), a
  used element ``{head, 0}`` is added (QEMU's virtio-serial reports length 0), and then,
  unless the driver set VRING_AVAIL_F_NO_INTERRUPT, InterruptStatus bit 0 is set and the SPI
  raised (its level follows InterruptStatus != 0) - after every such flush, as QEMU's
  virtio-serial, even one that used nothing or stopped at a malformed chain.  Queues are processed whatever the
  Status register says: kvm-unit-tests never writes it, and QEMU does the same.
  The receiveq never gets data (no character device here produces input).

Vring layout (legacy, virtio 1.2, 2.7.2): descriptors at the queue address (16 bytes each),
the available ring right after them, the used ring at the next multiple of QueueAlign after
the available ring's ``used_event`` field.  The guest's rings and buffers are read and
written through :class:`~vpmu.board.memory.GuestMemory` as guest-physical addresses.  A
malformed queue (a ring or buffer outside RAM - QEMU would read a buffer in unassigned space
as zeros through its bounce buffer -, a head or next index out of range, a chain
longer than the queue, an indirect descriptor, a readable buffer after a writable one, the
available index moved by more than the queue size) is not processed: the device stops
processing, as QEMU's ``virtio_error`` marks it broken, until the driver resets it; the
reason goes to the trace as a ``virtio`` record.  Every loop is bounded by the queue size.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator, Optional

from ..dtb import VIRTIO_MMIO_BASE, VIRTIO_MMIO_COUNT, VIRTIO_MMIO_FIRST_SPI, VIRTIO_MMIO_SIZE
from .env import GuestFault

if TYPE_CHECKING:
    from .memory import GuestMemory

# --- transport registers (legacy layout) ----------------------------------------------------
REG_MAGIC_VALUE = 0x000
REG_VERSION = 0x004
REG_DEVICE_ID = 0x008
REG_VENDOR_ID = 0x00C
REG_HOST_FEATURES = 0x010
REG_HOST_FEATURES_SEL = 0x014
REG_GUEST_FEATURES = 0x020
REG_GUEST_FEATURES_SEL = 0x024
REG_GUEST_PAGE_SIZE = 0x028
REG_QUEUE_SEL = 0x030
REG_QUEUE_NUM_MAX = 0x034
REG_QUEUE_NUM = 0x038
REG_QUEUE_ALIGN = 0x03C
REG_QUEUE_PFN = 0x040
REG_QUEUE_NOTIFY = 0x050
REG_INTERRUPT_STATUS = 0x060
REG_INTERRUPT_ACK = 0x064
REG_STATUS = 0x070
REG_CONFIG = 0x100                      # the device's configuration space starts here
REG_SIZE = 4                            # every register below REG_CONFIG is 32 bits

MAGIC = 0x7472_6976                     # "virt"
VERSION_LEGACY = 1
VENDOR_QEMU = 0x554D_4551               # "QEMU"
PAGE_SHIFT_MAX = 31                     # a larger ctz (GuestPageSize 0) means shift 0

VIRTIO_QUEUE_MAX = 1024                 # QueueSel/QueueNotify values a device may have
VIRTQUEUE_MAX_SIZE = 1024               # what QueueNumMax reads for a queue that exists
DEFAULT_ALIGN = 4096                    # VIRTIO_PCI_VRING_ALIGN: QueueAlign until written
ISR_USED_BUFFER = 0x1                   # InterruptStatus: the device used a buffer

# --- vring layout -----------------------------------------------------------------------------
DESC_SIZE = 16                          # le64 addr, le32 len, le16 flags, le16 next
DESC_FMT = "<QIHH"
DESC_F_NEXT, DESC_F_WRITE, DESC_F_INDIRECT = 0x1, 0x2, 0x4
AVAIL_FLAGS, AVAIL_IDX, AVAIL_RING = 0, 2, 4       # le16 flags, le16 idx, le16 ring[num], le16 used_event
AVAIL_F_NO_INTERRUPT = 0x1
USED_IDX, USED_RING = 2, 4                         # le16 flags, le16 idx, {le32 id, le32 len}[num], le16 avail_event
USED_ELEM_SIZE = 8
IDX_MASK = 0xFFFF                       # ring indices are free-running 16-bit counters
READ_CHUNK = 1 << 16                    # buffers reach the character device in pieces of this size

# --- the console device ---------------------------------------------------------------------
VIRTIO_ID_CONSOLE = 3
CONSOLE_QUEUE_SIZE = 128                # virtio-serial's port queues (virtio_add_queue(vdev, 128, ...))
RECEIVEQ, TRANSMITQ = 0, 1              # port 0's queues (no MULTIPORT: no control queues)
CONSOLE_MAX_NR_PORTS = 1
CONSOLE_CONFIG = struct.pack("<HHII", 0, 0, CONSOLE_MAX_NR_PORTS, 0)   # cols, rows, max_nr_ports, emerg_wr
CONSOLE_TRANSPORT = VIRTIO_MMIO_COUNT - 1   # the highest transport, where virt plugs the first -device


class MalformedQueue(Exception):
    """The driver's ring cannot be processed; str() is the note for the trace.  ``interrupt``:
    the device still signals the queue (QEMU's virtio-serial notifies after every flush)."""
    interrupt = False


def _align_up(x: int, align: int) -> int:
    return (x + align - 1) // align * align


@dataclass
class Virtqueue:
    """One queue's legacy configuration and the device's position in its rings."""
    default_num: int
    num: int = 0
    align: int = DEFAULT_ALIGN
    desc: int = 0                       # guest-physical address of the descriptor table; 0 = not set up
    last_avail: int = 0                 # the next available ring entry the device will take
    used_idx: int = 0                   # the used ring's idx as the device last wrote it

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.num, self.align, self.desc, self.last_avail, self.used_idx = \
            self.default_num, DEFAULT_ALIGN, 0, 0, 0

    @property
    def avail(self) -> int:
        return self.desc + DESC_SIZE * self.num

    @property
    def used(self) -> int:
        return _align_up(self.avail + AVAIL_RING + 2 * self.num + 2, self.align)

    @property
    def end(self) -> int:
        return self.used + USED_RING + USED_ELEM_SIZE * self.num + 2


class _Rings:
    """The guest's rings of one queue, read and written as guest-physical memory."""

    def __init__(self, vq: Virtqueue, mem: "GuestMemory"):
        if not mem.is_ram(vq.desc, vq.end - vq.desc):
            raise MalformedQueue(f"the rings [{vq.desc:#x}, {vq.end:#x}) are not in RAM")
        self.vq, self.mem = vq, mem

    def u16(self, addr: int) -> int:
        return int(struct.unpack("<H", self.mem.read_phys(addr, 2))[0])

    def available(self) -> int:
        """How many chains the driver made available since the device last looked."""
        vq = self.vq
        n = (self.u16(vq.avail + AVAIL_IDX) - vq.last_avail) & IDX_MASK
        if n > vq.num:
            raise MalformedQueue(f"the available index moved by {n} entries, more than the queue's {vq.num}")
        return n

    def pop(self) -> tuple[int, list[tuple[int, int]]]:
        """Take the next available chain: its head and its device-readable buffers
        (address, length), checked whole before anything is used (QEMU's virtqueue_pop)."""
        vq = self.vq
        head = self.u16(vq.avail + AVAIL_RING + 2 * (vq.last_avail % vq.num))
        if head >= vq.num:
            raise MalformedQueue(f"available ring entry {vq.last_avail} names descriptor {head}, "
                                 f"outside the queue's {vq.num}")
        out: list[tuple[int, int]] = []
        i, writable_seen = head, False
        for _ in range(vq.num):
            addr, length, flags, nxt = struct.unpack(DESC_FMT, self.mem.read_phys(vq.desc + DESC_SIZE * i,
                                                                                  DESC_SIZE))
            if flags & DESC_F_INDIRECT:
                raise MalformedQueue(f"descriptor {i} is indirect (VIRTIO_RING_F_INDIRECT_DESC is not offered)")
            if length and not self.mem.is_ram(addr, length):
                raise MalformedQueue(f"descriptor {i}: the buffer [{addr:#x}, {addr + length:#x}) is not in RAM")
            if flags & DESC_F_WRITE:
                writable_seen = True
            elif writable_seen:
                raise MalformedQueue(f"descriptor {i} is device-readable after a device-writable one")
            else:
                out.append((addr, length))
            if not flags & DESC_F_NEXT:
                vq.last_avail = (vq.last_avail + 1) & IDX_MASK
                return head, out
            if nxt >= vq.num:
                raise MalformedQueue(f"descriptor {i} chains to {nxt}, outside the queue's {vq.num}")
            i = nxt
        raise MalformedQueue(f"the chain from descriptor {head} is longer than the queue ({vq.num}): a loop")

    def push_used(self, head: int, length: int) -> None:
        vq = self.vq
        elem = vq.used + USED_RING + USED_ELEM_SIZE * (vq.used_idx % vq.num)
        self.mem.write_phys(elem, struct.pack("<II", head, length))
        vq.used_idx = (vq.used_idx + 1) & IDX_MASK
        self.mem.write_phys(vq.used + USED_IDX, struct.pack("<H", vq.used_idx))

    def interrupt_wanted(self) -> bool:
        return not self.u16(self.vq.avail + AVAIL_FLAGS) & AVAIL_F_NO_INTERRUPT

    def read(self, addr: int, length: int) -> Iterator[bytes]:
        for off in range(0, length, READ_CHUNK):
            yield self.mem.read_phys(addr + off, min(READ_CHUNK, length - off))


class VirtioConsole:
    """The console device: port 0's queues and what the driver's notifications do."""
    device_id = VIRTIO_ID_CONSOLE
    host_features = 0
    config = CONSOLE_CONFIG

    def __init__(self, backend: Callable[[bytes], None]):
        self.backend = backend            # port 0's character device (vpmu.board.chardev)
        self.queues = {RECEIVEQ: Virtqueue(CONSOLE_QUEUE_SIZE), TRANSMITQ: Virtqueue(CONSOLE_QUEUE_SIZE)}

    def notify(self, index: int, mem: "GuestMemory") -> bool:
        """The driver notified queue ``index``; returns True if the queue is to be signalled.
        The transmitq's buffers go to the character device (which may end the run); the
        receiveq has nothing to deliver.  Raises MalformedQueue (or GuestFault).

        Like QEMU's virtio-serial (do_flush_queued_data -> virtio_notify), a flush of the
        transmitq signals it afterwards whether or not a buffer was used, also when a malformed
        chain stopped it, unless the driver set VRING_AVAIL_F_NO_INTERRUPT."""
        if index != TRANSMITQ:
            return False
        rings = _Rings(self.queues[index], mem)
        try:
            for _ in range(rings.available()):
                head, buffers = rings.pop()
                for addr, length in buffers:
                    for chunk in rings.read(addr, length):
                        self.backend(chunk)
                rings.push_used(head, 0)
        except MalformedQueue as e:
            e.interrupt = rings.interrupt_wanted()
            raise
        return rings.interrupt_wanted()


@dataclass
class LegacyTransport:
    """One virtio-mmio transport (legacy registers) with a device plugged into it."""
    device: VirtioConsole
    mem: "GuestMemory"
    set_irq: Callable[[bool], None]
    note: Callable[[int, str], None]                  # (queue, note) -> the trace
    host_features_sel: int = 0
    guest_features_sel: int = 0
    guest_page_shift: int = 0
    guest_features: int = 0
    queue_sel: int = 0
    status: int = 0
    isr: int = 0
    broken: Optional[str] = None                      # why processing stopped (until a reset)

    def queue(self) -> Optional[Virtqueue]:
        return self.device.queues.get(self.queue_sel)

    # -- registers ----------------------------------------------------------------------------
    def read(self, off: int, size: int) -> int:
        if off >= REG_CONFIG:
            return _config_read(self.device.config, off - REG_CONFIG, size)
        if size != REG_SIZE:
            return 0
        vq = self.queue()
        if off == REG_MAGIC_VALUE:
            return MAGIC
        if off == REG_VERSION:
            return VERSION_LEGACY
        if off == REG_DEVICE_ID:
            return self.device.device_id
        if off == REG_VENDOR_ID:
            return VENDOR_QEMU
        if off == REG_HOST_FEATURES:
            return 0 if self.host_features_sel else self.device.host_features
        if off == REG_QUEUE_NUM_MAX:
            return VIRTQUEUE_MAX_SIZE if vq is not None else 0
        if off == REG_QUEUE_PFN:
            return (vq.desc >> self.guest_page_shift) & 0xFFFF_FFFF if vq is not None else 0
        if off == REG_INTERRUPT_STATUS:
            return self.isr
        if off == REG_STATUS:
            return self.status
        return 0                                      # write-only and unassigned registers

    def write(self, off: int, size: int, value: int) -> None:
        if off >= REG_CONFIG or size != REG_SIZE:
            return                                    # no writable configuration field without features
        value &= 0xFFFF_FFFF
        vq = self.queue()
        if off == REG_HOST_FEATURES_SEL:
            self.host_features_sel = int(value != 0)
        elif off == REG_GUEST_FEATURES:
            if not self.guest_features_sel:
                self.guest_features = value & self.device.host_features
        elif off == REG_GUEST_FEATURES_SEL:
            self.guest_features_sel = int(value != 0)
        elif off == REG_GUEST_PAGE_SIZE:
            shift = (value & -value).bit_length() - 1 if value else PAGE_SHIFT_MAX + 1
            self.guest_page_shift = shift if shift <= PAGE_SHIFT_MAX else 0
        elif off == REG_QUEUE_SEL:
            if value < VIRTIO_QUEUE_MAX:
                self.queue_sel = value
        elif off == REG_QUEUE_NUM:
            if vq is not None and 0 < value <= VIRTQUEUE_MAX_SIZE:
                vq.num = value
        elif off == REG_QUEUE_ALIGN:
            if vq is not None and value:
                vq.align = value
        elif off == REG_QUEUE_PFN:
            if value == 0:
                self.reset()
            elif vq is not None:
                vq.desc = value << self.guest_page_shift
        elif off == REG_QUEUE_NOTIFY:
            if value < VIRTIO_QUEUE_MAX:
                self._notify(value)
        elif off == REG_INTERRUPT_ACK:
            self._set_isr(self.isr & ~value)
        elif off == REG_STATUS:
            self.status = value & 0xFF
            if self.status == 0:
                self.reset()

    # -- device ---------------------------------------------------------------------------------
    def reset(self) -> None:
        """virtio_reset: queues, status, features, interrupt; the transport's selectors and
        page size stay."""
        for vq in self.device.queues.values():
            vq.reset()
        self.status, self.guest_features, self.queue_sel, self.broken = 0, 0, 0, None
        self._set_isr(0)

    def _set_isr(self, isr: int) -> None:
        self.isr = isr
        self.set_irq(isr != 0)

    def _notify(self, index: int) -> None:
        vq = self.device.queues.get(index)
        if vq is None:
            return
        if self.broken is not None:
            self.note(index, f"notify ignored: the device needs a reset ({self.broken})")
            return
        if vq.desc == 0:
            self.note(index, "notify ignored: the queue is not set up (QueuePFN is 0)")
            return
        try:
            if self.device.notify(index, self.mem):
                self._set_isr(self.isr | ISR_USED_BUFFER)
        except (MalformedQueue, GuestFault) as e:
            self.broken = str(e)
            self.note(index, f"malformed queue, device stopped until reset: {e}")
            if getattr(e, "interrupt", False):
                self._set_isr(self.isr | ISR_USED_BUFFER)


def _config_read(config: bytes, off: int, size: int) -> int:
    """A little-endian read of the configuration space; a read reaching past its end reads
    all ones (QEMU's virtio_config_read*)."""
    if off + size > len(config):
        return (1 << (8 * size)) - 1
    return int.from_bytes(config[off:off + size], "little")


class VirtioMmio:
    """The 32 transports as one MMIO region; the console sits in :data:`CONSOLE_TRANSPORT`."""
    base = VIRTIO_MMIO_BASE
    size = VIRTIO_MMIO_COUNT * VIRTIO_MMIO_SIZE

    def __init__(self, mem: "GuestMemory", gic, backend: Callable[[bytes], None],
                 note: Callable[[int, int, str], None]):
        """``note(transport, queue, text)`` records a malformed or ignored request (the trace)."""
        intid = 32 + VIRTIO_MMIO_FIRST_SPI + CONSOLE_TRANSPORT
        self.console = LegacyTransport(VirtioConsole(backend), mem,
                                       set_irq=lambda level: gic.set_level(intid, level),
                                       note=lambda q, text: note(CONSOLE_TRANSPORT, q, text))
        self.transports: dict[int, LegacyTransport] = {CONSOLE_TRANSPORT: self.console}

    def read(self, off: int, size: int) -> int:
        t = self.transports.get(off // VIRTIO_MMIO_SIZE)
        reg = off % VIRTIO_MMIO_SIZE
        if t is None:                             # an empty transport (QEMU: no backend plugged)
            value = {REG_MAGIC_VALUE: MAGIC, REG_VERSION: VERSION_LEGACY, REG_VENDOR_ID: VENDOR_QEMU}.get(reg, 0)
            return value & ((1 << (8 * size)) - 1)
        return t.read(reg, size)

    def write(self, off: int, size: int, value: int) -> None:
        t = self.transports.get(off // VIRTIO_MMIO_SIZE)
        if t is not None:
            t.write(off % VIRTIO_MMIO_SIZE, size, value)
