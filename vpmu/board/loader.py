"""Loading guest images the way QEMU's ``-M virt -kernel`` does.

- ELF (pyelftools): PT_LOAD segments at their physical addresses; entry = e_entry.
- Linux arm64 ``Image``: the 64-byte header (magic "ARM\\x64" at 56, text_offset at 8,
  image_size at 16); loaded at RAM base + text_offset (2 MiB-aligned base plus
  text_offset); entered with the Linux boot protocol (x0 = device tree).
- anything else: a raw flat binary, loaded and entered like an Image at the kernel load
  address (docs/research/qemu-boot.md).

Every problem is an :class:`~vpmu.errors.ImageError` with a one-line reason.
"""
from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass, field

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from ..errors import ImageError
from .memmap import RAM_BASE

EM_AARCH64 = 183
IMAGE_MAGIC = 0x644D5241            # "ARM\x64" little-endian at offset 56
KERNEL_LOAD_OFFSET = 0x80000         # QEMU KERNEL64_LOAD_ADDR for Images with text_offset 0 ... see load()


@dataclass
class Image:
    path: str
    data: bytes
    kind: str                        # "elf" | "image" | "flat"
    name: str = ""
    segments: list = field(default_factory=list)     # (paddr, bytes, memsz)
    entry: int = 0
    end: int = 0                     # first free address after the loaded image
    dtb_addr: int | None = None      # where the device tree goes (None: not loaded)
    linux_boot: bool = False         # x0 = device tree address at entry

    def load(self, machine) -> int:
        ram_lo, ram_hi = machine.ram_base, machine.ram_base + machine.ram_size
        for paddr, blob, memsz in self.segments:
            if paddr < ram_lo or paddr + memsz > ram_hi:
                raise ImageError(f"{self.name}: segment [{paddr:#x}, {paddr + memsz:#x}) is outside RAM "
                                 f"[{ram_lo:#x}, {ram_hi:#x})")
        if not (ram_lo <= self.entry < ram_hi):
            raise ImageError(f"{self.name}: entry point {self.entry:#x} is outside RAM [{ram_lo:#x}, {ram_hi:#x})")
        for paddr, blob, memsz in self.segments:
            machine.uc.mem_write(paddr, blob)
            if memsz > len(blob):
                machine.uc.mem_write(paddr + len(blob), bytes(memsz - len(blob)))
        self.end = max((p + m for p, _, m in self.segments), default=ram_lo)
        return self.entry


def open_image(path: str) -> Image:
    name = os.path.basename(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ImageError(f"{path}: cannot read ({e.strerror})") from None
    if not data:
        raise ImageError(f"{path}: empty file")
    if data[:4] == b"\x7fELF":
        return _elf(path, name, data)
    if len(data) >= 64 and struct.unpack_from("<I", data, 56)[0] == IMAGE_MAGIC:
        return _linux_image(path, name, data)
    return _flat(path, name, data)


def _elf(path: str, name: str, data: bytes) -> Image:
    try:
        elf = ELFFile(io.BytesIO(data))
        if elf.elfclass != 64 or not elf.little_endian:
            raise ImageError(f"{path}: not a 64-bit little-endian ELF (class {elf.elfclass})")
        if elf["e_machine"] not in ("EM_AARCH64", EM_AARCH64):
            raise ImageError(f"{path}: not an AArch64 ELF (machine {elf['e_machine']})")
        segs = []
        for s in elf.iter_segments():
            if s["p_type"] != "PT_LOAD" or s["p_memsz"] == 0:
                continue
            blob = s.data()
            if len(blob) != s["p_filesz"]:
                raise ImageError(f"{path}: truncated segment at offset {s['p_offset']:#x}")
            segs.append((s["p_paddr"], blob, s["p_memsz"]))
        if not segs:
            raise ImageError(f"{path}: no loadable segments")
        return Image(path, data, "elf", name, segs, elf["e_entry"])
    except ImageError:
        raise
    except (ELFError, struct.error, ValueError, KeyError, IndexError) as e:
        raise ImageError(f"{path}: malformed ELF ({e})") from None


def _linux_image(path: str, name: str, data: bytes) -> Image:
    text_offset, image_size, flags = struct.unpack_from("<QQQ", data, 8)
    # Images with image_size == 0 are pre-3.17 kernels: text_offset is 0x80000 (QEMU assumes so).
    if image_size == 0:
        text_offset = 0x80000
    load = RAM_BASE + text_offset
    memsz = max(image_size, len(data))
    img = Image(path, data, "image", name, [(load, data, memsz)], load, linux_boot=True)
    return img


def _flat(path: str, name: str, data: bytes) -> Image:
    load = RAM_BASE + KERNEL_LOAD_OFFSET
    return Image(path, data, "flat", name, [(load, data, len(data))], load, linux_boot=True)
