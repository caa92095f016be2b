"""Guest memory as the board's devices and frontends see it.

Physical accesses reach RAM only (an intermediate physical address outside every RAM
region is a :class:`~vpmu.board.env.GuestFault`, as Xen's copy_{from,to}_guest and
semihosting treat it).  Virtual accesses go through the guest's own stage 1 translation
for the current exception level (QEMU's page-table walk, ``uc_vmem_translate``, with the
permission asked for: read, write, or execute at that EL), page by page, and then reach
RAM only: a VA that maps a device is a fault too, so no board read of guest memory ever
has a device's side effects.  None of them raises a guest exception: a device or
hypercall that cannot reach guest memory reports the fault its ABI defines, and the
board's own reads of instruction words (WFI, the trapped instruction of an exception)
answer "unknown" (None) when the word cannot be read.
"""
from __future__ import annotations

import ctypes
import struct
from typing import Optional

from unicorn import unicorn_const as UC

from .. import native
from .. import arch as X
from .env import GuestFault

PAGE = 0x1000
VA_LIMIT = 1 << 64

# uc_vmem_translate (Unicorn's public C API, 2.1): VA -> PA through the current stage 1 regime
# with a permission check, no fault raised.  Bound here with ctypes (no native code calls it).
_translate = native.uclib.uc_vmem_translate
_translate.restype = ctypes.c_int
_translate.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int, ctypes.POINTER(ctypes.c_uint64)]


class GuestMemory:
    def __init__(self, uc, ram_base: int, ram_size: int):
        self.uc = uc
        self.ram_base, self.ram_size = ram_base, ram_size
        self.extra_ram: list[tuple[int, int]] = []     # further RAM regions: (base, size)

    def map_ram(self, base: int, size: int) -> None:
        """Map a further RAM region (e.g. the Xen grant-table region of the device tree)."""
        self.uc.mem_map(base, size)
        self.extra_ram.append((base, size))

    def is_ram(self, pa: int, size: int = 1) -> bool:
        if self.ram_base <= pa and pa + size <= self.ram_base + self.ram_size:
            return True
        return any(b <= pa and pa + size <= b + n for b, n in self.extra_ram)

    def read_phys(self, pa: int, size: int) -> bytes:
        if not self.is_ram(pa, size):
            raise GuestFault(f"IPA {pa:#x} is not RAM")
        return bytes(self.uc.mem_read(pa, size))

    def write_phys(self, pa: int, data: bytes) -> None:
        if not self.is_ram(pa, len(data)):
            raise GuestFault(f"IPA {pa:#x} is not RAM")
        self.uc.mem_write(pa, bytes(data))

    def mmu_on(self) -> bool:
        return bool(self.uc.cpr_read(*X.SCTLR_EL1) & X.SCTLR_M)

    def translate(self, va: int, prot: int = UC.UC_PROT_READ) -> Optional[int]:
        """The physical address of ``va`` for an access with permission ``prot`` (read, write or
        execute) at the current EL; the VA itself with the MMU off; None if the walk fails
        or the permission is missing."""
        if not 0 <= va < VA_LIMIT:
            return None
        if not self.mmu_on():
            return va
        pa = ctypes.c_uint64()
        if _translate(self.uc._uch, va, prot, ctypes.byref(pa)) != 0:
            return None
        return pa.value

    def _ram_pages(self, va: int, size: int, prot: int, what: str):
        """(PA, length) of each page piece of [va, va + size), all RAM, or GuestFault."""
        if size < 0 or va < 0 or va + size > VA_LIMIT:
            raise GuestFault(f"VA range {va:#x}+{size:#x} is outside the address space")
        while size:
            n = min(size, PAGE - (va & (PAGE - 1)))
            pa = self.translate(va, prot)
            if pa is None or not self.is_ram(pa, n):
                raise GuestFault(f"VA {va:#x} is not mapped {what}")
            yield pa, n
            va += n
            size -= n

    def read_virt(self, va: int, size: int, prot: int = UC.UC_PROT_READ) -> bytes:
        """Read guest RAM at a virtual address (current EL's stage 1, permission ``prot``),
        no guest fault; GuestFault if a byte is untranslatable or not RAM."""
        what = "executable RAM" if prot == UC.UC_PROT_EXEC else "readable RAM"
        return b"".join(bytes(self.uc.mem_read(pa, n)) for pa, n in list(self._ram_pages(va, size, prot, what)))

    def write_virt(self, va: int, data: bytes) -> None:
        """Write guest RAM at a virtual address (current EL's stage 1, write permission), no
        guest fault; GuestFault (and nothing written) if a byte is untranslatable or not RAM."""
        data = bytes(data)
        pieces = list(self._ram_pages(va, len(data), UC.UC_PROT_WRITE, "writable RAM"))
        off = 0
        for pa, n in pieces:
            self.uc.mem_write(pa, data[off:off + n])
            off += n

    def read_cstr(self, va: int, limit: int = 1 << 16) -> bytes:
        """A NUL-terminated string at a virtual address (at most ``limit`` bytes, no NUL)."""
        out = bytearray()
        while len(out) < limit:
            chunk = self.read_virt(va, min(64, PAGE - (va & (PAGE - 1))))
            z = chunk.find(b"\0")
            if z >= 0:
                out += chunk[:z]
                return bytes(out)
            out += chunk
            va += len(chunk)
        return bytes(out)

    def insn_word(self, pc: int) -> Optional[int]:
        """The instruction word at virtual address pc as the CPU would fetch it at the current
        EL (execute permission), None if unknown (nothing executable there, or not RAM)."""
        try:
            return struct.unpack("<I", self.read_virt(pc, X.INSN_SIZE, UC.UC_PROT_EXEC))[0]
        except GuestFault:
            return None

    def readable(self, va: int) -> bool:
        """Can a word be read at virtual address va (stage 1 of the current EL)?"""
        try:
            self.read_virt(va, X.INSN_SIZE)
            return True
        except GuestFault:
            return False
