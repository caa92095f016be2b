"""Guest memory as the board's devices and frontends see it.

Physical accesses reach RAM only (an intermediate physical address outside every RAM
region is a :class:`~vpmu.board.env.GuestFault`, as Xen's copy_{from,to}_guest and
semihosting treat it); virtual accesses go through the guest's own stage 1 translation for
the current exception level (``native.vmem_read`` / ``vmem_write``: QEMU's page-table walk,
with the permission asked for) and never raise a guest exception: a device or hypercall that
cannot reach guest memory reports the fault its ABI defines.
"""
from __future__ import annotations

import struct
from typing import Optional

from unicorn import unicorn_const as UC

from .. import native
from .. import arch as X
from .env import GuestFault

PAGE = 0x1000


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

    def read_virt(self, va: int, size: int, prot: int = UC.UC_PROT_READ) -> bytes:
        """Read guest memory at a virtual address (current EL's stage 1), no guest fault."""
        if size == 0:
            return b""
        if not self.mmu_on():
            return self.read_phys(va, size)
        out = bytearray()
        while size:
            n = min(size, PAGE - (va & (PAGE - 1)))
            b = native.vmem_read(self.uc, va, n, prot)
            if b is None:
                raise GuestFault(f"VA {va:#x} is not mapped")
            out += b
            va += n
            size -= n
        return bytes(out)

    def write_virt(self, va: int, data: bytes) -> None:
        """Write guest memory at a virtual address (current EL's stage 1), no guest fault."""
        data = bytes(data)
        if not self.mmu_on():
            self.write_phys(va, data)
            return
        while data:
            n = min(len(data), PAGE - (va & (PAGE - 1)))
            # a RAM page has a host address: probing it as a read first keeps hypercall results
            # out of devices (Xen copies to guest RAM only); the write checks write permission
            if native.vmem_read(self.uc, va, n, UC.UC_PROT_READ) is None or \
                    not native.vmem_write(self.uc, va, data[:n], UC.UC_PROT_WRITE):
                raise GuestFault(f"VA {va:#x} is not mapped writable RAM")
            va += n
            data = data[n:]

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
        """The instruction word at virtual address pc, None if nothing is readable there."""
        if not self.readable(pc):
            return None
        return struct.unpack("<I", bytes(self.read_virt(pc, X.INSN_SIZE, UC.UC_PROT_EXEC)))[0]

    def readable(self, va: int) -> bool:
        """Can a word be read at virtual address va (stage 1 of the current EL)?"""
        try:
            self.read_virt(va, X.INSN_SIZE)
            return True
        except Exception:
            return False
