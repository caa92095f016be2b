"""GICv3 subset: distributor, one redistributor, and the system-register CPU interface.

What a guest needs to take PPIs (PMU 23, timers 27/30, Xen upcall 31), SGIs and SPIs
on one CPU, as QEMU's virt GICv3 with security disabled (GICD_CTLR.DS = 1) presents
it.  Interrupts are input lines (``set_level``: level-sensitive, or a rising edge latched
when GICD_ICFGR makes them edge-triggered) or software pending bits; only Group 1 is
delivered (IRQ).  After every state change the machine is told
whether an interrupt is *deliverable if PSTATE.I were clear* (``on_change``), which
the native block hook turns into an exception at the next instruction boundary.

Priority rules (GICv3 architecture, 4.8): an interrupt is signalled when it is enabled,
pending, not active, in an enabled group, its priority is higher (numerically lower)
than ICC_PMR_EL1 and its group priority is higher than the running priority.
"""
from __future__ import annotations

from .memmap import NR_SPIS

NIRQ = 32 + NR_SPIS
SPURIOUS = 1023
INTID_MASK = 0xFFFFFF              # the INTID field of ICC_EOIR1_EL1 / ICC_DIR_EL1 (24 bits)

# GICD register offsets
GICD_CTLR, GICD_TYPER, GICD_IIDR = 0x0000, 0x0004, 0x0008
GICD_IGROUPR, GICD_ISENABLER, GICD_ICENABLER = 0x0080, 0x0100, 0x0180
GICD_ISPENDR, GICD_ICPENDR, GICD_ISACTIVER, GICD_ICACTIVER = 0x0200, 0x0280, 0x0300, 0x0380
GICD_IPRIORITYR, GICD_ICFGR, GICD_IGRPMODR, GICD_IROUTER = 0x0400, 0x0C00, 0x0D00, 0x6000
GICD_PIDR2 = 0xFFE8
# GICR (RD frame at +0, SGI frame at +0x10000)
GICR_CTLR, GICR_IIDR, GICR_TYPER, GICR_WAKER, GICR_PIDR2 = 0x0000, 0x0004, 0x0008, 0x0014, 0xFFE8
SGI = 0x10000

IIDR = 0x0300043B  # ARM implementer, GICv3 product (as QEMU reports)


class Gic:
    def __init__(self, on_change=None):
        self.on_change = on_change or (lambda deliverable: None)
        self.dist_ctlr = 0x40              # DS = 1 (single security state)
        self.enabled = [False] * NIRQ
        self.soft_pend = [False] * NIRQ    # edge / software pending state
        self.level = [False] * NIRQ        # input line of level-sensitive interrupts
        self.active = [False] * NIRQ
        self.group1 = [False] * NIRQ
        self.prio = [0] * NIRQ
        self.edge = [False] * NIRQ
        for i in range(16):
            self.edge[i] = True            # SGIs are edge-triggered
        self.irouter = [0] * NIRQ
        self.waker = 0x6                   # ProcessorSleep | ChildrenAsleep
        self.pmr = 0
        self.igrpen1 = 0
        self.igrpen0 = 0
        self.bpr1 = 3
        self.bpr0 = 2
        self.ctlr = 0                      # ICC_CTLR_EL1 (EOImode = bit 1)
        self.active_prios: list[tuple[int, int]] = []   # (priority, intid) stack
        self.acked: list[int] = []

    # -- state ------------------------------------------------------------------------------------
    def pending(self, i: int) -> bool:
        return self.soft_pend[i] or (not self.edge[i] and self.level[i])

    def running_priority(self) -> int:
        return min((p for p, _ in self.active_prios), default=0xFF)

    def _gprio(self, p: int) -> int:
        return p & (0xFF << (self.bpr1 + 1)) & 0xFF if self.bpr1 < 7 else 0

    def hppi(self) -> tuple[int, int] | None:
        """Highest-priority pending, enabled, inactive Group 1 interrupt (ties: lowest INTID)."""
        if not (self.dist_ctlr & 0x2) or not (self.igrpen1 & 1):
            return None
        best = None
        for i in range(NIRQ):
            if self.enabled[i] and self.group1[i] and not self.active[i] and self.pending(i):
                if best is None or self.prio[i] < best[1]:
                    best = (i, self.prio[i])
        return best

    def deliverable(self) -> int | None:
        """INTID that would be taken now if PSTATE.I were clear, else None."""
        h = self.hppi()
        if h is None:
            return None
        i, p = h
        if p >= self.pmr:
            return None
        if self.active_prios and self._gprio(p) >= self._gprio(self.running_priority()):
            return None
        return i

    def changed(self) -> None:
        self.on_change(self.deliverable())

    def set_level(self, intid: int, level: bool) -> None:
        """An interrupt input changed level.  A level-sensitive interrupt is pending while the
        line is high; an edge-triggered one (GICD_ICFGR) latches its rising edge as a pending
        bit that stays set until acknowledged or cleared (GICv3 architecture, 4.1.1)."""
        if self.level[intid] != level:
            self.level[intid] = level
            if level and self.edge[intid]:
                self.soft_pend[intid] = True
            self.changed()

    def set_pending(self, intid: int) -> None:
        self.soft_pend[intid] = True
        self.changed()

    # -- CPU interface (system registers) ---------------------------------------------------------
    def ack(self) -> int:
        """ICC_IAR1_EL1 read."""
        i = self.deliverable()
        if i is None:
            return SPURIOUS
        self.active[i] = True
        self.soft_pend[i] = False          # level interrupts stay pending while the line is high
        self.active_prios.append((self.prio[i], i))
        self.changed()
        return i

    def eoi(self, intid: int) -> None:
        """ICC_EOIR1_EL1 write: priority drop (and deactivation when EOImode == 0)."""
        intid &= INTID_MASK
        if intid >= NIRQ:
            return
        for k in range(len(self.active_prios) - 1, -1, -1):
            if self.active_prios[k][1] == intid:
                del self.active_prios[k]
                break
        if not (self.ctlr & 2):
            self.active[intid] = False
        self.changed()

    def deactivate(self, intid: int) -> None:
        """ICC_DIR_EL1 write."""
        intid &= INTID_MASK
        if intid < NIRQ:
            self.active[intid] = False
            self.changed()

    def sgi(self, value: int) -> None:
        """ICC_SGI1R_EL1 write: SGI to ourselves if targeted (Aff0 target list bit 0, or IRM)."""
        intid = (value >> 24) & 0xF
        irm = (value >> 40) & 1
        targets = value & 0xFFFF
        aff1, aff2, aff3 = (value >> 16) & 0xFF, (value >> 32) & 0xFF, (value >> 48) & 0xFF
        if irm or (targets & 1 and aff1 == 0 and aff2 == 0 and aff3 == 0):
            if irm:
                return                     # "all but self": nobody else on this board
            self.set_pending(intid)

    def ap1r0(self) -> int:
        v = 0
        for p, _ in self.active_prios:
            v |= 1 << ((p >> (self.bpr1 + 1)) & 31)
        return v

    def sysreg_read(self, name: str) -> int:
        if name == "ICC_IAR1_EL1":
            return self.ack()
        if name in ("ICC_IAR0_EL1", "ICC_HPPIR0_EL1"):
            return SPURIOUS                # no Group 0 interrupts are configured for IRQ
        if name == "ICC_HPPIR1_EL1":
            h = self.hppi()
            return h[0] if h else SPURIOUS
        if name == "ICC_PMR_EL1":
            return self.pmr
        if name == "ICC_RPR_EL1":
            return self.running_priority()
        if name == "ICC_IGRPEN1_EL1":
            return self.igrpen1
        if name == "ICC_IGRPEN0_EL1":
            return self.igrpen0
        if name == "ICC_BPR1_EL1":
            return self.bpr1
        if name == "ICC_BPR0_EL1":
            return self.bpr0
        if name == "ICC_CTLR_EL1":
            # PRIbits = 7 (8 bits), IDbits = 0 (16-bit INTIDs), A3V = 1, EOImode as written
            return (7 << 8) | (1 << 15) | (self.ctlr & 2)
        if name == "ICC_SRE_EL1":
            return 0x7                     # SRE, DFB, DIB RAO
        if name == "ICC_AP1R0_EL1":
            return self.ap1r0()
        return 0

    def sysreg_write(self, name: str, v: int) -> None:
        if name == "ICC_EOIR1_EL1":
            self.eoi(v)
        elif name == "ICC_DIR_EL1":
            self.deactivate(v)
        elif name == "ICC_PMR_EL1":
            self.pmr = v & 0xFF
            self.changed()
        elif name == "ICC_IGRPEN1_EL1":
            self.igrpen1 = v & 1
            self.changed()
        elif name == "ICC_IGRPEN0_EL1":
            self.igrpen0 = v & 1
        elif name == "ICC_BPR1_EL1":
            self.bpr1 = max(v & 7, 0)
            self.changed()
        elif name == "ICC_BPR0_EL1":
            self.bpr0 = v & 7
        elif name == "ICC_CTLR_EL1":
            self.ctlr = v & 2
        elif name in ("ICC_SGI1R_EL1", "ICC_ASGI1R_EL1"):
            self.sgi(v)
        # ICC_SRE_EL1 (RAO/WI), ICC_AP*R, ICC_EOIR0, ICC_SGI0R: ignored

    # -- memory-mapped frames ---------------------------------------------------------------------------
    def _bits_read(self, arr, first: int) -> int:
        return sum(1 << b for b in range(32) if first + b < NIRQ and arr[first + b])

    def dist_read(self, off: int, size: int) -> int:
        if off == GICD_CTLR:
            return self.dist_ctlr
        if off == GICD_TYPER:
            return ((NIRQ // 32) - 1) | (10 << 19)           # ITLinesNumber, IDbits = 10 (1024 INTIDs)
        if off == GICD_IIDR:
            return IIDR
        if off == GICD_PIDR2:
            return 0x3B                                      # ArchRev = 3
        return self._irq_regs_read(off, size, spi_only=True)

    def dist_write(self, off: int, size: int, v: int) -> None:
        if off == GICD_CTLR:
            self.dist_ctlr = (v & 0x13) | 0x40 | 0x10          # ARE is RAO with DS = 1 on this board
            self.changed()
            return
        if GICD_IROUTER <= off < GICD_IROUTER + 8 * NIRQ:
            self.irouter[(off - GICD_IROUTER) // 8] = v
            return
        self._irq_regs_write(off, size, v, spi_only=True)

    def redist_read(self, off: int, size: int) -> int:
        if off < SGI:
            if off == GICR_CTLR:
                return 0
            if off == GICR_IIDR:
                return IIDR
            if off == GICR_TYPER:
                return 1 << 4                                # Last; processor 0, affinity 0
            if off == GICR_TYPER + 4:
                return 0
            if off == GICR_WAKER:
                return self.waker
            if off == GICR_PIDR2:
                return 0x3B
            return 0
        return self._irq_regs_read(off - SGI, size, spi_only=False)

    def redist_write(self, off: int, size: int, v: int) -> None:
        if off < SGI:
            if off == GICR_WAKER:
                sleep = v & 2
                self.waker = sleep | (4 if sleep else 0)     # ChildrenAsleep follows ProcessorSleep
            return
        self._irq_regs_write(off - SGI, size, v, spi_only=False)

    def _irq_range(self, off: int, base: int, per_reg: int, spi_only: bool):
        idx = (off - base) // 4
        first = idx * per_reg
        if spi_only and first < 32:
            return None                   # with ARE, INTIDs 0..31 live in the redistributor
        if not spi_only and first >= 32:
            return None
        return first

    def _irq_regs_read(self, off: int, size: int, spi_only: bool) -> int:
        for base, arr in ((GICD_IGROUPR, self.group1), (GICD_ISENABLER, self.enabled),
                          (GICD_ICENABLER, self.enabled), (GICD_ISACTIVER, self.active),
                          (GICD_ICACTIVER, self.active)):
            if base <= off < base + 0x80:
                first = self._irq_range(off, base, 32, spi_only)
                return 0 if first is None else self._bits_read(arr, first)
        if GICD_ISPENDR <= off < GICD_ICPENDR + 0x80:
            base = GICD_ISPENDR if off < GICD_ICPENDR else GICD_ICPENDR
            first = self._irq_range(off, base, 32, spi_only)
            if first is None:
                return 0
            return sum(1 << b for b in range(32) if first + b < NIRQ and self.pending(first + b))
        if GICD_IPRIORITYR <= off < GICD_IPRIORITYR + NIRQ:
            i = off - GICD_IPRIORITYR
            if (spi_only and i < 32) or (not spi_only and i >= 32):
                return 0
            return sum(self.prio[i + k] << (8 * k) for k in range(size) if i + k < NIRQ)
        if GICD_ICFGR <= off < GICD_ICFGR + NIRQ // 4:
            first = (off - GICD_ICFGR) // 4 * 16
            if (spi_only and first < 32) or (not spi_only and first >= 32):
                return 0
            return sum((2 if self.edge[first + k] else 0) << (2 * k) for k in range(16) if first + k < NIRQ)
        return 0

    def _irq_regs_write(self, off: int, size: int, v: int, spi_only: bool) -> None:
        def each(base):
            first = self._irq_range(off, base, 32, spi_only)
            if first is None:
                return []
            return [first + b for b in range(32) if (v >> b) & 1 and first + b < NIRQ]

        if GICD_IGROUPR <= off < GICD_IGROUPR + 0x80:
            first = self._irq_range(off, GICD_IGROUPR, 32, spi_only)
            if first is not None:
                for b in range(32):
                    if first + b < NIRQ:
                        self.group1[first + b] = bool((v >> b) & 1)
        elif GICD_ISENABLER <= off < GICD_ISENABLER + 0x80:
            for i in each(GICD_ISENABLER):
                self.enabled[i] = True
        elif GICD_ICENABLER <= off < GICD_ICENABLER + 0x80:
            for i in each(GICD_ICENABLER):
                self.enabled[i] = False
        elif GICD_ISPENDR <= off < GICD_ISPENDR + 0x80:
            for i in each(GICD_ISPENDR):
                self.soft_pend[i] = True
        elif GICD_ICPENDR <= off < GICD_ICPENDR + 0x80:
            for i in each(GICD_ICPENDR):
                self.soft_pend[i] = False
        elif GICD_ISACTIVER <= off < GICD_ISACTIVER + 0x80:
            for i in each(GICD_ISACTIVER):
                self.active[i] = True
        elif GICD_ICACTIVER <= off < GICD_ICACTIVER + 0x80:
            for i in each(GICD_ICACTIVER):
                self.active[i] = False
        elif GICD_IPRIORITYR <= off < GICD_IPRIORITYR + NIRQ:
            i = off - GICD_IPRIORITYR
            if (spi_only and i < 32) or (not spi_only and i >= 32):
                return
            for k in range(size):
                if i + k < NIRQ:
                    self.prio[i + k] = (v >> (8 * k)) & 0xFF
        elif GICD_ICFGR <= off < GICD_ICFGR + NIRQ // 4:
            first = (off - GICD_ICFGR) // 4 * 16
            if first < 16 or (spi_only and first < 32) or (not spi_only and first >= 32):
                return                     # SGI configuration is read-only (edge)
            for k in range(16):
                if first + k < NIRQ:
                    self.edge[first + k] = bool((v >> (2 * k + 1)) & 1)
        else:
            return
        self.changed()
