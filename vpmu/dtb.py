"""The board's flattened device tree: what a guest learns about the machine it boots on.

The board is a subset of QEMU's ``-M virt,gic-version=3 -cpu cortex-a57`` (platform.md), so
the tree is QEMU virt's tree with only the devices this board has: RAM, one Cortex-A57, the
GICv3 distributor and redistributors, the architected timer, the PMU, one PL011 and its
24 MHz "apb-pclk" clock, the PL031 RTC, PSCI, and (``--xen``) the Xen ``hypervisor`` node. Node names,
property names and values, phandles, ``#address-cells``/``#size-cells``, the root
``interrupt-parent`` and the interrupt flags are virt's, so code that parses virt's tree
(Linux, kvm-unit-tests, bare-metal guests) parses this one. Sources followed, all QEMU
``hw/arm/virt.c`` unless stated: ``create_fdt``, ``fdt_add_cpu_nodes``, ``fdt_add_gic_node``,
``fdt_add_timer_nodes``, ``fdt_add_pmu_nodes``, ``create_uart``, ``create_rtc``,
``create_randomness``; ``hw/arm/boot.c``
``arm_load_dtb`` (memory node, ``/chosen/bootargs``) and ``fdt_add_psci_node``; Xen
``docs/misc/arm/device-tree/guest.txt`` and libxl ``make_hypervisor_node``. The result was
checked property by property against ``qemu-system-aarch64 -M virt,gic-version=3,dumpdtb=``
(tests/test_dtb.py does it again when QEMU is installed).

Where this tree differs from virt's, on purpose:

- devices the board does not have are not described: flash, fw-cfg, PL061 GPIO and
  gpio-keys, PCIe, the platform bus, and the GICv3 ITS (so nothing takes phandle
  0x8003); the 32 virtio-mmio transports are described only when the board has them
  (``--virtio-console``, :data:`VIRTIO_MMIO_BASE`), as virt's ``create_virtio_devices``
  writes them;
- ``/chosen``'s ``kaslr-seed`` (u64) and ``rng-seed`` (32 bytes) are derived from the run's
  ``--seed`` (:func:`boot_seed_bytes`), where virt fills them with fresh randomness on every
  boot: runs stay reproducible, and another seed gives another KASLR offset and early
  entropy;
- ``cpu@0`` has ``enable-method = "psci"`` although virt writes it only when there is more
  than one CPU: it is true (PSCI is the only method) and harmless for a uniprocessor;
- ``/hypervisor`` (Xen) is ours, see :data:`XEN_GNTTAB_BASE`.

Public API: :class:`BoardSpec` (``BoardSpec.from_config(cfg)``), :func:`build_dtb` (optionally
padded to :data:`QEMU_DTB_TOTAL_SIZE`, the size QEMU's tree has in guest memory),
:func:`to_dts`, :func:`gic_interrupt` and :func:`intid_kind`; the ``vpmu dtb``
subcommand is :mod:`vpmu.commands.dtb`. Where the loader puts the blob:
docs/research/qemu-boot.md.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Optional

import fdt as pyfdt

from .config import DEFAULT_PMU_IRQ, XEN_EVTCHN_PPI, MachineConfig
from .sizes import format_size

# --- QEMU virt memory map (hw/arm/virt.c base_memmap[]) ---------------------------------
RAM_BASE = 0x4000_0000
GICD_BASE, GICD_SIZE = 0x0800_0000, 0x0001_0000
# virt's node describes the whole redistributor region (room for 123 CPUs), not one CPU's
# 0x20000 (RD + SGI frames): fdt_add_gic_node writes memmap[VIRT_GIC_REDIST].size. We do
# the same; the board decodes only CPU 0's two frames (platform.md).
GICR_BASE, GICR_SIZE = 0x080A_0000, 0x00F6_0000
UART_BASE, UART_SIZE = 0x0900_0000, 0x0000_1000
UART_SPI = 1                     # a15irqmap[VIRT_UART]: INTID 33
UART_CLOCK_HZ = 24_000_000       # the "apb-pclk" fixed clock
RTC_BASE, RTC_SIZE = 0x0901_0000, 0x0000_1000
RTC_SPI = 2                      # a15irqmap[VIRT_RTC]: INTID 34
RNG_SEED_SIZE = 32               # create_randomness: rng-seed is 32 bytes, kaslr-seed a u64

# virt's virtio-mmio transports (base_memmap[VIRT_MMIO], a15irqmap[VIRT_MMIO]): 32 of 0x200
# bytes from 0x0a000000, transport i on SPI 16 + i (INTID 48 + i), edge-rising in the tree.
# virt plugs the first -device into the highest transport, so a lone console is the last one.
VIRTIO_MMIO_BASE, VIRTIO_MMIO_SIZE = 0x0A00_0000, 0x200
VIRTIO_MMIO_COUNT = 32
VIRTIO_MMIO_FIRST_SPI = 16

# virt allows RAM up to 255 GiB below the high I/O area (LEGACY_RAMLIMIT_GB).
RAM_MAX = 255 << 30
# virt's GIC has NUM_IRQS = 256 SPIs: INTIDs 32..287 (GICD_TYPER.ITLinesNumber = 8).
GIC_NUM_SPIS = 256

# --- Interrupt specifier encoding (include/hw/arm/fdt.h, Linux arm,gic-v3 binding) -------
GIC_FDT_IRQ_TYPE_SPI = 0
GIC_FDT_IRQ_TYPE_PPI = 1
GIC_FDT_IRQ_FLAGS_EDGE_LO_HI = 1
GIC_FDT_IRQ_FLAGS_LEVEL_HI = 4
IRQ_TYPE_LEVEL_LOW = 8

# Architected timer PPIs as INTIDs. Only the secure physical timer is fixed: the others
# come from MachineConfig.timer_ppis (KVM_ARM_VCPU_TIMER_CTRL can move them).
TIMER_SEC_PHYS_INTID = 29        # virt's ARCH_TIMER_S_EL1_IRQ

# Phandles: QEMU's qemu_fdt_alloc_phandle() counts from 0x8000 in creation order (clock in
# create_fdt, then each CPU in fdt_add_cpu_nodes, then the GIC); with one CPU that gives
# these three values, which we keep so a tree dump diffs cleanly against virt's.
PHANDLE_APB_PCLK = 0x8000
PHANDLE_CPU0 = 0x8001
PHANDLE_GIC = 0x8002

# PSCI function ids virt advertises for PSCI 0.1 compatibility (fdt_add_psci_node,
# AArch64 variants): CPU_SUSPEND, CPU_OFF, CPU_ON, MIGRATE.
PSCI_FN_IDS = {"cpu_suspend": 0xC400_0001, "cpu_off": 0x8400_0002,
               "cpu_on": 0xC400_0003, "migrate": 0xC400_0005}

# Xen grant-table region (reg[0] of /hypervisor). Xen's own guest layout
# (public/arch-arm.h GUEST_GNTTAB_BASE) uses 0x3800_0000, which on virt is inside the PCIe
# MMIO window. We keep Xen's size (16 MiB = 4096 frames) and put it in the one hole of
# virt's low map that nothing uses on any virt version: between the secure RAM
# (0x0E00_0000 + 16 MiB) and the PCIe MMIO window (0x1000_0000).
XEN_GNTTAB_BASE, XEN_GNTTAB_SIZE = 0x0F00_0000, 0x0100_0000
# "xen,xen-<major>.<minor>": the version our Xen frontend reports (xen-pmu.md 4.2).
XEN_VERSION = (4, 23)
# libxl make_hypervisor_node: the event-channel upcall is "active-low level-sensitive,
# all CPUs" = (0xf << 8) | IRQ_TYPE_LEVEL_LOW, written the same for GICv2 and GICv3.
XEN_EVTCHN_FLAGS = (0xF << 8) | IRQ_TYPE_LEVEL_LOW

DTB_VERSION = 17
DTB_LAST_COMP_VERSION = 16
# The size QEMU's generated tree has in guest memory: create_device_tree() opens it into a
# FDT_MAX_SIZE (1 MiB) buffer and arm_load_dtb() copies all of it (system/device_tree.c).
# It decides which ELF images get a DTB at all (docs/research/qemu-boot.md).
QEMU_DTB_TOTAL_SIZE = 0x10_0000


def intid_kind(intid: int) -> str:
    """'SGI', 'PPI', 'SPI' or 'invalid' for a GIC INTID on this board's GIC."""
    if 0 <= intid < 16:
        return "SGI"
    if 16 <= intid < 32:
        return "PPI"
    if 32 <= intid < 32 + GIC_NUM_SPIS:
        return "SPI"
    return "invalid"


def gic_interrupt(intid: int, flags: int = GIC_FDT_IRQ_FLAGS_LEVEL_HI) -> list[int]:
    """The three-cell ``interrupts`` specifier of a PPI or SPI INTID.

    arm,gic-v3 binding: cell 0 is 0 for an SPI and 1 for a PPI, cell 1 the number within
    that class (INTID - 32 or INTID - 16), cell 2 the trigger flags. GICv3 has no CPU mask
    in the flags (virt sets one only for GICv2).
    """
    kind = intid_kind(intid)
    if kind == "PPI":
        return [GIC_FDT_IRQ_TYPE_PPI, intid - 16, flags]
    if kind == "SPI":
        return [GIC_FDT_IRQ_TYPE_SPI, intid - 32, flags]
    raise ValueError(f"INTID {intid} is not a PPI or SPI")


@dataclass(frozen=True)
class BoardSpec:
    """Everything the device tree says about the board; validated on construction.

    Interrupts are GIC INTIDs (PPI 16..31, SPI 32..287), as in MachineConfig and KVM's
    device attributes; :func:`gic_interrupt` does the DT encoding.
    """
    ram_size: int = 128 << 20
    pmu_irq: Optional[int] = DEFAULT_PMU_IRQ      # None: no PMU node (vCPU without PMUv3)
    timer_phys: int = 30                          # non-secure EL1 physical timer (ptimer)
    timer_virt: int = 27                          # virtual timer (vtimer)
    timer_hyp_phys: int = 26                      # EL2 physical timer (hptimer)
    bootargs: Optional[str] = None                # /chosen/bootargs; None or "" = absent
    initrd: Optional[tuple[int, int]] = None      # /chosen/linux,initrd-start/end: (start, end)
    seed: int = 0                                 # /chosen/kaslr-seed and rng-seed come from it
    xen: bool = False                             # add the /hypervisor node
    xen_evtchn_irq: int = XEN_EVTCHN_PPI
    xen_version: tuple = XEN_VERSION
    psci_method: str = "hvc"
    cpu_compatible: str = "arm,cortex-a57"
    virtio_mmio: bool = False                     # virt's 32 virtio-mmio transports

    ram_base = RAM_BASE                           # fixed parts of the map (class constants)
    uart_path = f"/pl011@{UART_BASE:x}"
    rtc_path = f"/pl031@{RTC_BASE:x}"

    def __post_init__(self) -> None:
        if self.ram_size <= 0 or self.ram_size % 4096:
            hint = f" (did you mean {self.ram_size}M?)" if 0 < self.ram_size < 1 << 20 else ""
            raise ValueError(f"memory size {self.ram_size} is not a positive multiple of "
                             f"4 KiB{hint}")
        if self.ram_size > RAM_MAX:
            raise ValueError(f"memory size {format_size(self.ram_size)} exceeds the "
                             f"{format_size(RAM_MAX)} virt allows below its high I/O area")
        if self.pmu_irq is not None and intid_kind(self.pmu_irq) not in ("PPI", "SPI"):
            raise ValueError(f"PMU interrupt {self.pmu_irq} is not a PPI (16-31) or SPI "
                             f"(32-{31 + GIC_NUM_SPIS})")
        for name, intid in (("physical timer", self.timer_phys),
                            ("virtual timer", self.timer_virt),
                            ("EL2 physical timer", self.timer_hyp_phys)):
            if intid_kind(intid) != "PPI":
                raise ValueError(f"{name} interrupt {intid} is not a PPI (16-31)")
        if self.psci_method not in ("hvc", "smc"):
            raise ValueError(f"PSCI method {self.psci_method!r} is not 'hvc' or 'smc'")
        if not 0 <= self.seed < 1 << 64:
            raise ValueError(f"seed {self.seed} is not a 64-bit unsigned number")
        if self.initrd is not None:
            start, end = self.initrd
            if not self.ram_base <= start < end <= self.ram_base + self.ram_size:
                raise ValueError(f"initrd [{start:#x}, {end:#x}) is not inside RAM")
        if self.bootargs:
            bad = [c for c in self.bootargs if not " " <= c <= "~"]
            if bad:
                raise ValueError(f"boot arguments contain {bad[0]!r}: only printable ASCII "
                                 f"is supported")
        # No two interrupts the guest drives may be the same line: KVM refuses the same
        # (kvm_vgic_set_owner -> EBUSY at first run, timer PPIs must be distinct) and a
        # guest could not request both. The secure timer (29) is listed in /timer for the
        # binding only; a non-secure guest never uses it, so it is not checked.
        users = [("physical timer", self.timer_phys), ("virtual timer", self.timer_virt),
                 ("EL2 physical timer", self.timer_hyp_phys),
                 ("UART", 32 + UART_SPI), ("RTC", 32 + RTC_SPI)]
        if self.pmu_irq is not None:
            users.append(("PMU", self.pmu_irq))
        if self.virtio_mmio:
            users += [(f"virtio-mmio transport {i}", 32 + VIRTIO_MMIO_FIRST_SPI + i)
                      for i in range(VIRTIO_MMIO_COUNT)]
        if self.xen:
            if intid_kind(self.xen_evtchn_irq) != "PPI":
                raise ValueError(f"Xen event-channel interrupt {self.xen_evtchn_irq} is "
                                 f"not a PPI (16-31)")
            users.append(("Xen event channel", self.xen_evtchn_irq))
        seen: dict[int, str] = {}
        for name, intid in users:
            if intid in seen:
                raise ValueError(f"{name} and {seen[intid]} both use INTID {intid}")
            seen[intid] = name

    @classmethod
    def from_config(cls, cfg: MachineConfig) -> "BoardSpec":
        """The board a run with ``cfg`` presents (raises ValueError on an invalid config)."""
        ppis = cfg.timer_ppis
        try:
            phys, virt, hyp = int(ppis["ptimer"]), int(ppis["vtimer"]), int(ppis["hptimer"])
        except KeyError as e:
            raise ValueError(f"timer_ppis has no {e.args[0]!r} entry") from None
        return cls(ram_size=cfg.memory,
                   pmu_irq=cfg.pmu.irq if cfg.pmu.present else None,
                   bootargs=cfg.append, xen=cfg.xen, seed=cfg.seed,
                   virtio_mmio=cfg.virtio_console is not None,
                   timer_phys=phys, timer_virt=virt, timer_hyp_phys=hyp)


def boot_seed_bytes(seed: int, what: str, size: int) -> bytes:
    """``size`` deterministic bytes for the boot-time randomness ``what`` ("rng-seed",
    "kaslr-seed") of run seed ``seed``: SHA-256 in counter mode over (what, seed, block)."""
    out = bytearray()
    block = 0
    while len(out) < size:
        out += hashlib.sha256(f"vpmu {what} {seed} {block}".encode()).digest()
        block += 1
    return bytes(out[:size])


# --- Tree construction ---------------------------------------------------------------------

class _Strings(pyfdt.PropStrings):
    """A string-list property whose DTS form escapes backslashes as well as quotes
    (pyFDT 0.3.3 escapes only quotes, so ``a\\b`` would not survive dtc)."""

    def to_dts(self, tabsize: int = 4, depth: int = 0) -> str:
        def esc(s: str) -> str:
            return s.replace("\\", "\\\\").replace('"', '\\"')
        return (" " * (tabsize * depth) + self.name + ' = "'
                + '", "'.join(esc(s) for s in self.data) + '";\n')


def _node(name: str, *props) -> pyfdt.Node:
    return pyfdt.Node(name, *props)


def _s(name: str, *values: str) -> pyfdt.PropStrings:
    return _Strings(name, *values)


def _w(name: str, *words: int) -> pyfdt.PropWords:
    return pyfdt.PropWords(name, *words)


def _flag(name: str) -> pyfdt.Property:
    return pyfdt.Property(name)


def _reg(*pairs: tuple[int, int]) -> pyfdt.PropWords:
    """``reg`` with #address-cells = #size-cells = 2 (virt's root), as u64 pairs."""
    cells = []
    for addr, size in pairs:
        cells += [addr >> 32, addr & 0xFFFF_FFFF, size >> 32, size & 0xFFFF_FFFF]
    return _w("reg", *cells)


def _tree(spec: BoardSpec) -> pyfdt.FDT:
    tree = pyfdt.FDT()
    tree.header.version = DTB_VERSION          # the setter also sets last_comp_version
    tree.header.last_comp_version = DTB_LAST_COMP_VERSION
    tree.header.boot_cpuid_phys = 0
    root = tree.root

    # create_fdt + fdt_add_gic_node (root interrupt-parent)
    for prop in (_s("compatible", "linux,dummy-virt"), _w("#address-cells", 2),
                 _w("#size-cells", 2), _s("model", "linux,dummy-virt"),
                 _w("interrupt-parent", PHANDLE_GIC), _flag("dma-coherent")):
        root.append(prop)

    # /chosen in QEMU's property order: libfdt inserts a new property first in its node, and
    # arm_load_dtb adds bootargs (only a non-empty -append), then linux,initrd-start and -end
    # (#address-cells wide, only with -initrd) after create_uart's stdout-path.
    chosen = _node("chosen")
    if spec.initrd is not None:
        chosen.append(_w("linux,initrd-end", spec.initrd[1] >> 32, spec.initrd[1] & 0xFFFF_FFFF))
        chosen.append(_w("linux,initrd-start", spec.initrd[0] >> 32, spec.initrd[0] & 0xFFFF_FFFF))
    if spec.bootargs:
        chosen.append(_s("bootargs", spec.bootargs))
    chosen.append(_s("stdout-path", spec.uart_path))
    # create_randomness (before stdout-path in creation, so after it in the node)
    # (rng-seed's bytes as words: the same blob, and the DTS form dtc and pyFDT read back)
    rng = boot_seed_bytes(spec.seed, "rng-seed", RNG_SEED_SIZE)
    chosen.append(_w("rng-seed", *(int.from_bytes(rng[i:i + 4], "big") for i in range(0, RNG_SEED_SIZE, 4))))
    kaslr = int.from_bytes(boot_seed_bytes(spec.seed, "kaslr-seed", 8), "big")
    chosen.append(_w("kaslr-seed", kaslr >> 32, kaslr & 0xFFFF_FFFF))
    root.append(chosen)
    root.append(_node("aliases", _s("serial0", spec.uart_path)))

    # arm_load_dtb -> fdt_add_memory_node
    root.append(_node(f"memory@{spec.ram_base:x}", _s("device_type", "memory"),
                      _reg((spec.ram_base, spec.ram_size))))

    root.append(_node("apb-pclk", _s("compatible", "fixed-clock"), _w("#clock-cells", 0),
                      _w("clock-frequency", UART_CLOCK_HZ),
                      _s("clock-output-names", "clk24mhz"), _w("phandle", PHANDLE_APB_PCLK)))

    # fdt_add_cpu_nodes: MPIDR of CPU 0 has no Aff3, so #address-cells = 1 and reg = 0.
    cpu_map = _node("cpu-map", _node("socket0", _node("cluster0", _node(
        "core0", _w("cpu", PHANDLE_CPU0)))))
    root.append(_node("cpus", _w("#address-cells", 1), _w("#size-cells", 0),
                      _node("cpu@0", _s("device_type", "cpu"),
                            _s("compatible", spec.cpu_compatible),
                            _s("enable-method", "psci"), _w("reg", 0),
                            _w("phandle", PHANDLE_CPU0)),
                      cpu_map))

    # fdt_add_timer_nodes: secure phys, non-secure phys, virtual, EL2 phys, in that order,
    # level-high. The fifth (EL2 virtual) entry virt adds only for an EL2 CPU with VHE,
    # which a Cortex-A57 is not; kvm-unit-tests asserts exactly four.
    timer_irqs = []
    for intid in (TIMER_SEC_PHYS_INTID, spec.timer_phys, spec.timer_virt,
                  spec.timer_hyp_phys):
        timer_irqs += gic_interrupt(intid)
    root.append(_node("timer", _s("compatible", "arm,armv8-timer", "arm,armv7-timer"),
                      _flag("always-on"), _w("interrupts", *timer_irqs)))

    root.append(_node(f"intc@{GICD_BASE:x}", _s("compatible", "arm,gic-v3"),
                      _w("#interrupt-cells", 3), _flag("interrupt-controller"),
                      _w("#address-cells", 2), _w("#size-cells", 2), _flag("ranges"),
                      _w("#redistributor-regions", 1),
                      _reg((GICD_BASE, GICD_SIZE), (GICR_BASE, GICR_SIZE)),
                      _w("phandle", PHANDLE_GIC)))

    # fdt_add_pmu_nodes: absent when the CPU has no PMU. An SPI (allowed by KVM's
    # KVM_ARM_VCPU_PMU_V3_IRQ) is encoded as an SPI; virt itself always uses PPI 23.
    if spec.pmu_irq is not None:
        root.append(_node("pmu", _s("compatible", "arm,armv8-pmuv3"),
                          _w("interrupts", *gic_interrupt(spec.pmu_irq))))

    root.append(_node(spec.uart_path.lstrip("/"), _s("compatible", "arm,pl011", "arm,primecell"),
                      _reg((UART_BASE, UART_SIZE)),
                      _w("interrupts", *gic_interrupt(32 + UART_SPI)),
                      _w("clocks", PHANDLE_APB_PCLK, PHANDLE_APB_PCLK),
                      _s("clock-names", "uartclk", "apb_pclk")))

    # create_rtc: one clock, the same apb-pclk
    root.append(_node(spec.rtc_path.lstrip("/"), _s("compatible", "arm,pl031", "arm,primecell"),
                      _reg((RTC_BASE, RTC_SIZE)),
                      _w("interrupts", *gic_interrupt(32 + RTC_SPI)),
                      _w("clocks", PHANDLE_APB_PCLK),
                      _s("clock-names", "apb_pclk")))
    # create_virtio_devices: lowest address first (virt adds them in reverse order for that)
    if spec.virtio_mmio:
        for i in range(VIRTIO_MMIO_COUNT):
            base = VIRTIO_MMIO_BASE + i * VIRTIO_MMIO_SIZE
            root.append(_node(f"virtio_mmio@{base:x}", _s("compatible", "virtio,mmio"),
                              _reg((base, VIRTIO_MMIO_SIZE)),
                              _w("interrupts", *gic_interrupt(32 + VIRTIO_MMIO_FIRST_SPI + i,
                                                              GIC_FDT_IRQ_FLAGS_EDGE_LO_HI)),
                              _flag("dma-coherent")))

    # fdt_add_psci_node. virt's conduit: none if secure=on with firmware, SMC with
    # virtualization=on (EL2), otherwise HVC (and always HVC under KVM). Our guests run
    # at EL1 with neither EL2 nor EL3, which is virt's HVC case; the board answers PSCI
    # on both HVC #0 and SMC #0 (platform.md) but advertises what virt advertises.
    psci = _node("psci", _s("compatible", "arm,psci-1.0", "arm,psci-0.2", "arm,psci"),
                 _s("method", spec.psci_method))
    for name, fn in PSCI_FN_IDS.items():
        psci.append(_w(name, fn))
    root.append(psci)

    if spec.xen:
        major, minor = spec.xen_version
        root.append(_node("hypervisor", _s("compatible", f"xen,xen-{major}.{minor}", "xen,xen"),
                          _reg((XEN_GNTTAB_BASE, XEN_GNTTAB_SIZE)),
                          _w("interrupts", *gic_interrupt(spec.xen_evtchn_irq,
                                                          XEN_EVTCHN_FLAGS))))
    return tree


def build_dtb(spec: BoardSpec, *, total_size: Optional[int] = None) -> bytes:
    """The flattened device tree blob (version 17) for ``spec``.

    ``total_size`` pads the blob with free space up to that many bytes (header
    ``totalsize`` included), as libfdt's ``fdt_open_into`` leaves it; pass
    :data:`QEMU_DTB_TOTAL_SIZE` to get a blob exactly as large as QEMU virt's.
    """
    blob = _tree(spec).to_dtb()
    if total_size is None:
        return blob
    if total_size < len(blob):
        raise ValueError(f"total_size {total_size} is smaller than the tree ({len(blob)} bytes)")
    return blob[:4] + total_size.to_bytes(4, "big") + blob[8:] + bytes(total_size - len(blob))


def to_dts(spec: BoardSpec) -> str:
    """The same tree as device tree source (``dtc -I dts`` compiles it back)."""
    return _tree(spec).to_dts(tabsize=4)
