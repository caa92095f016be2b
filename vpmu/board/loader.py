"""Loading guest images the way QEMU's ``-M virt -kernel`` does (docs/research/qemu-boot.md).

- ELF (pyelftools): PT_LOAD segments at their physical addresses, entry = e_entry (rebased
  to the physical address inside an executable segment whose VMA != LMA).  No register
  points at the device tree; it is placed at the start of RAM iff the image leaves room
  for its whole in-memory size there (1 MiB for the generated tree, as QEMU's buffer).
- Linux arm64 ``Image`` (magic "ARM\\x64" at 56): loaded at RAM + text_offset (+2 MiB when
  text_offset < 4 KiB) if image_size != 0, else at RAM + 0x80000; ``flags`` ignored.
- anything else: a raw flat binary at RAM + 0x80000.
Images and flat binaries are entered through QEMU's 6-instruction boot stub at the start of
RAM (x0 = device tree, x1..x3 = 0, x4 = entry).  An initial RAM disk (``--initrd``, QEMU's
``-initrd``, only for these Linux boots: QEMU loads none with an ELF kernel) goes byte for
byte to initrd_start = page_align(max(RAM + min(RAM/2, 128 MiB), kernel end)), the tree to
align_up(initrd_start + initrd size, 2 MiB) (hw/arm/boot.c ``arm_setup_direct_kernel_boot``).

The file (and the initrd) must be a regular file (``vpmu.hostfile``).  An ELF is parsed from the file (its
headers, then each segment's bytes: a large file of debug information costs nothing), a
segment's bytes must fit the RAM, and PT_LOAD segments must not overlap (QEMU refuses
overlapping ROM regions: hw/core/loader.c ``rom_check_and_register_reset``).  An Image or a
flat binary is read whole and must not be larger than the RAM.  RAM starts zero-filled, so
the zero-filled tail of a segment (p_memsz beyond p_filesz) costs no writes.

Every problem is an :class:`~vpmu.errors.ImageError` with a one-line reason.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from ..config import MEMORY_MAX
from ..errors import ImageError, UsageError
from ..hostfile import open_regular, read_regular
from ..sizes import format_size
from .memmap import RAM_BASE

EM_AARCH64 = 183
IMAGE_MAGIC = 0x644D5241            # "ARM\x64" little-endian at offset 56
KERNEL_LOAD_OFFSET = 0x80000         # QEMU KERNEL64_LOAD_ADDR
BOOTLOADER_MAX_SIZE = 0x1000
MIB2 = 2 << 20
PAGE = 0x1000
INITRD_MAX_OFFSET = 128 << 20        # QEMU: the initrd at most 128 MiB into RAM (stays in lowmem)
UIMAGE_MAGIC = b"\x27\x05\x19\x56"  # U-Boot legacy image header (big-endian ih_magic)
# QEMU hw/arm/boot.c bootloader_aarch64[]: ldr x0, arg; mov x1..x3, xzr; ldr x4, entry; br x4
BOOT_STUB = (0x580000C0, 0xAA1F03E1, 0xAA1F03E2, 0xAA1F03E3, 0x58000084, 0xD61F0080)


@dataclass
class Image:
    path: str
    kind: str                        # "elf" | "image" | "flat"
    name: str = ""
    segments: list = field(default_factory=list)     # (paddr, bytes, memsz)
    entry: int = 0
    end: int = 0                     # first free address after the loaded image
    dtb_addr: int | None = None      # where the device tree went (None: not loaded)
    linux_boot: bool = False         # entered through the boot stub, x0 = device tree
    kernel_size: int = 0
    initrd: tuple[int, int] | None = None    # (start, end) of the loaded initrd

    def load(self, machine) -> int:
        ram_lo, ram_hi = machine.ram_base, machine.ram_base + machine.ram_size
        for paddr, blob, memsz in self.segments:
            end = paddr + max(memsz, len(blob))
            if paddr < ram_lo or end > ram_hi:
                raise ImageError(f"{self.name}: segment [{paddr:#x}, {end:#x}) is outside RAM "
                                 f"[{ram_lo:#x}, {ram_hi:#x})")
        if not (ram_lo <= self.entry < ram_hi):
            raise ImageError(f"{self.name}: entry point {self.entry:#x} is outside RAM [{ram_lo:#x}, {ram_hi:#x})")
        for paddr, blob, _memsz in self.segments:     # the rest of memsz: RAM is zero already
            if blob:
                machine.uc.mem_write(paddr, blob)
        self.end = max((p + m for p, _, m in self.segments), default=ram_lo)
        self.initrd = self.dtb_addr = None      # this load's (an Image may be run again)
        return self.entry

    def initrd_start(self, ram_lo: int, ram_size: int) -> int:
        """QEMU's initrd_start: far enough into RAM for the kernel to unpack below it, at most
        128 MiB in, never over the kernel (image_high_addr), page aligned.  The device tree
        follows it even without an initrd."""
        start = ram_lo + min(ram_size // 2, INITRD_MAX_OFFSET)
        start = max(start, self.segments[0][0] + self.kernel_size)
        return (start + PAGE - 1) & ~(PAGE - 1)

    def load_initrd(self, machine, path: str) -> tuple[int, int]:
        """Load the file at ``path`` as the initial RAM disk; returns its (start, end)."""
        if not self.linux_boot:
            raise UsageError(f"--initrd needs a Linux Image or a flat binary: {self.name} is an ELF, "
                             f"and QEMU loads no initrd with an ELF kernel")
        data = read_initrd(path, machine.ram_size)
        ram_lo, ram_hi = machine.ram_base, machine.ram_base + machine.ram_size
        start = self.initrd_start(ram_lo, machine.ram_size)
        if start >= ram_hi:
            raise ImageError(f"{path}: not enough RAM after the kernel to load the initrd")
        if start + len(data) > ram_hi:
            raise ImageError(f"{path}: the initrd ({len(data)} bytes at {start:#x}) does not fit into RAM "
                             f"after the kernel (RAM ends at {ram_hi:#x}; try a larger --memory)")
        machine.uc.mem_write(start, data)
        self.initrd = (start, start + len(data))
        return self.initrd

    def place_dtb(self, machine, blob: bytes, mem_size: int) -> int:
        """Put the device tree where QEMU would; returns the PC to start at."""
        ram_lo, ram_hi = machine.ram_base, machine.ram_base + machine.ram_size
        if not self.linux_boot:
            low = min(p for p, _, _ in self.segments)
            high = max(p + m for p, _, m in self.segments)
            if low > ram_lo or high < ram_lo:
                limit = low if low >= ram_lo else ram_hi
                if mem_size <= limit - ram_lo:
                    machine.uc.mem_write(ram_lo, blob)
                    self.dtb_addr = ram_lo
            return self.entry
        start = self.initrd[1] if self.initrd else self.initrd_start(ram_lo, machine.ram_size)
        dtb = (start + MIB2 - 1) & ~(MIB2 - 1)
        if dtb + len(blob) > ram_hi:
            what = "kernel and initrd" if self.initrd else "kernel"
            raise ImageError(f"{self.name}: not enough RAM for the device tree after the {what} "
                             f"(needs {dtb + len(blob) - ram_lo:#x} bytes, have {machine.ram_size:#x})")
        machine.uc.mem_write(dtb, blob)
        self.dtb_addr = dtb
        stub = b"".join(struct.pack("<I", w) for w in BOOT_STUB) + struct.pack("<QQ", dtb, self.entry)
        machine.uc.mem_write(ram_lo, stub)
        return ram_lo


def open_image(path: str, ram_size: int = MEMORY_MAX) -> Image:
    """The image at ``path`` for a board with ``ram_size`` bytes of RAM (see the module
    docstring); raises ImageError."""
    name = os.path.basename(path)
    f, size = open_regular(path, "the guest image", 1 << 63, "", ImageError)
    with f:
        try:
            head = f.read(64)
            if head[:4] == b"\x7fELF":
                return _elf(path, name, f, ram_size)
            if size > ram_size:
                raise ImageError(f"{path}: the guest image is {format_size(size)}, more than the "
                                 f"{format_size(ram_size)} of RAM (--memory) it must fit in")
            f.seek(0)
            data = f.read(size + 1)
        except OSError as e:
            raise ImageError(f"{path}: cannot read the guest image ({e.strerror})") from None
    if not data:
        raise ImageError(f"{path}: empty file")
    if len(data) > ram_size:                          # it grew after the size check
        raise ImageError(f"{path}: the guest image is larger than the {format_size(ram_size)} of RAM")
    if len(data) >= 64 and struct.unpack_from("<I", data, 56)[0] == IMAGE_MAGIC:
        return _linux_image(path, name, data)
    return _flat(path, name, data)


def read_initrd(path: str, ram_size: int = MEMORY_MAX) -> bytes:
    """The initrd file's bytes (loaded as they are: the kernel unpacks a gzip'd cpio itself):
    a regular file no larger than the RAM (``vpmu.hostfile``).  QEMU would also take a U-Boot
    legacy ramdisk image and strip its header; vpmu refuses one rather than load the header
    into the initrd."""
    data = read_regular(path, "the initrd", ram_size, "of RAM (--memory) it must fit in", ImageError)
    if not data:
        raise ImageError(f"{path}: the initrd is an empty file")
    if data[:4] == UIMAGE_MAGIC:
        raise ImageError(f"{path}: a U-Boot legacy image; pass the ramdisk itself (e.g. the gzip'd cpio)")
    return data


def _elf(path: str, name: str, f, ram_size: int) -> Image:
    try:
        elf = ELFFile(f)
        if elf.elfclass != 64 or not elf.little_endian:
            raise ImageError(f"{path}: not a 64-bit little-endian ELF (class {elf.elfclass})")
        if elf["e_machine"] not in ("EM_AARCH64", EM_AARCH64):
            raise ImageError(f"{path}: not an AArch64 ELF (machine {elf['e_machine']})")
        segs = []
        entry = elf["e_entry"]
        total = 0
        for s in elf.iter_segments():
            if s["p_type"] != "PT_LOAD" or s["p_memsz"] == 0:
                continue
            filesz = s["p_filesz"]
            total += filesz
            if total > ram_size:                  # before reading it: the bytes must fit the RAM
                raise ImageError(f"{path}: the loadable segments hold more than the {format_size(ram_size)} "
                                 f"of RAM (--memory) (segment at offset {s['p_offset']:#x}: {filesz:#x} bytes)")
            blob = s.data()
            if len(blob) != filesz:
                raise ImageError(f"{path}: truncated segment at offset {s['p_offset']:#x}")
            segs.append((s["p_paddr"], blob, s["p_memsz"]))
            if (s["p_flags"] & 1) and s["p_vaddr"] != s["p_paddr"] and \
                    s["p_vaddr"] <= elf["e_entry"] < s["p_vaddr"] + s["p_memsz"]:
                entry = elf["e_entry"] - s["p_vaddr"] + s["p_paddr"]   # QEMU rebases to the LMA
        if not segs:
            raise ImageError(f"{path}: no loadable segments")
        _check_overlap(path, segs)
        return Image(path, "elf", name, segs, entry)
    except ImageError:
        raise
    except OSError as e:
        raise ImageError(f"{path}: cannot read the guest image ({e.strerror})") from None
    except (ELFError, struct.error, ValueError, KeyError, IndexError, OverflowError, MemoryError) as e:
        raise ImageError(f"{path}: malformed ELF ({e})") from None


def _check_overlap(path: str, segs: list) -> None:
    """PT_LOAD segments [p_paddr, p_paddr + p_memsz) must be disjoint (QEMU: "rom: requested
    regions overlap")."""
    spans = sorted((p, p + max(m, len(b))) for p, b, m in segs)
    for (lo0, hi0), (lo1, _hi1) in zip(spans, spans[1:]):
        if lo1 < hi0:
            raise ImageError(f"{path}: loadable segments overlap ([{lo0:#x}, {hi0:#x}) and one at {lo1:#x}); "
                             f"QEMU refuses overlapping segments too")


def _linux_image(path: str, name: str, data: bytes) -> Image:
    text_offset, image_size, _flags = struct.unpack_from("<QQQ", data, 8)
    # text_offset is honoured only with a non-zero image_size (pre-3.17 kernels left it
    # unreliable); below 4 KiB it is raised by 2 MiB, QEMU's stub being at the RAM base.
    if image_size == 0:
        offset = KERNEL_LOAD_OFFSET
    else:
        offset = text_offset + (MIB2 if text_offset < BOOTLOADER_MAX_SIZE else 0)
    load = RAM_BASE + offset
    memsz = max(image_size, len(data))
    return Image(path, "image", name, [(load, data, memsz)], load, linux_boot=True,
                 kernel_size=image_size or len(data))


def _flat(path: str, name: str, data: bytes) -> Image:
    load = RAM_BASE + KERNEL_LOAD_OFFSET
    return Image(path, "flat", name, [(load, data, len(data))], load, linux_boot=True,
                 kernel_size=len(data))
