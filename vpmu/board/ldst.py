"""The data footprint of an A64 instruction: the bytes a watchpoint is compared with.

Given an instruction word and the register values before it executes, which virtual
addresses it accesses, whether it reads or writes them, and whether it is an unprivileged
(LDTR/STTR) access.  Every data-access class of the Armv8.0 A64 instruction set with Advanced
SIMD (what cortex-a57 implements, Arm ARM C4.1.4 "Loads and Stores") is decoded: exclusive and
load-acquire/store-release, load-literal, register pairs (all index forms), single registers
(unscaled, post-/pre-index, unprivileged, unsigned offset, register offset), SIMD multiple and
single structures, and DC ZVA.  Each accesses one contiguous range.  Prefetches and everything
else decode to None (no data access); so do the Armv8.1+ encodings (CAS, LSE atomics,
LDAPR, ...), which are UNDEFINED on this CPU and never reach memory.

The base register is read as it is *before* the instruction: every memory hook and the SYS
hook run before the instruction writes back its base or its destination (QEMU computes the
address, accesses memory, then writes registers), which is when the board asks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

M64 = (1 << 64) - 1
SP = 31                     # register 31 as a base is SP, as an index XZR


@dataclass(frozen=True)
class Footprint:
    va: int                 # lowest byte accessed (the address as the instruction computes it)
    size: int               # bytes, contiguous from va
    write: bool
    unpriv: bool = False    # LDTR/STTR class: checked as an EL0 access (Arm ARM D2.10.3)


def _sext(v: int, bits: int) -> int:
    return v - (1 << bits) if v >> (bits - 1) else v


def footprint(word: int, xreg: Callable[[int], int], sp: int, pc: int, zva_block: int) -> Optional[Footprint]:
    """The access of instruction ``word`` at ``pc``; ``xreg(n)`` is Xn (n < 31), ``sp`` the
    current stack pointer, ``zva_block`` the DC ZVA block size in bytes."""
    rn = (word >> 5) & 31

    def base() -> int:
        return sp if rn == SP else xreg(rn)

    def fp(va: int, size: int, write: bool, unpriv: bool = False) -> Footprint:
        return Footprint(va & M64, size, write, unpriv)

    load = bool((word >> 22) & 1)
    if (word & 0x3F000000) == 0x08000000:                   # exclusive / ordered
        size, o2, o1 = word >> 30, (word >> 23) & 1, (word >> 21) & 1
        if o2 == 0:                                         # LD(A)X(P) / ST(L)X(P)
            if o1 and size < 2:
                return None                                 # CASP (Armv8.1)
            return fp(base(), (1 << size) * (2 if o1 else 1), not load)
        if o1:
            return None                                     # CAS (Armv8.1)
        return fp(base(), 1 << size, not load)              # LDAR / STLR
    if (word & 0x3B000000) == 0x18000000:                   # load register (literal)
        opc, v = word >> 30, (word >> 26) & 1
        if opc == 3:
            return None                                     # PRFM (literal) / unallocated
        size = (16 if opc == 2 else 4 << opc) if v else (8 if opc == 1 else 4)
        return fp(pc + 4 * _sext((word >> 5) & 0x7FFFF, 19), size, False)
    if (word & 0x3A000000) == 0x28000000:                   # load/store pair
        opc, v, idx = word >> 30, (word >> 26) & 1, (word >> 23) & 3
        if v:
            if opc == 3:
                return None
            scale = 2 + opc
        elif opc == 0 or (opc == 1 and load):
            scale = 2                                       # W pair, LDPSW
        elif opc == 2:
            scale = 3
        else:
            return None                                     # STGP (Armv8.5) / unallocated
        off = 0 if idx == 1 else _sext((word >> 15) & 0x7F, 7) << scale
        return fp(base() + off, 2 << scale, not load)
    if (word & 0x3A000000) == 0x38000000:                   # load/store register
        size, v, opc = word >> 30, (word >> 26) & 1, (word >> 22) & 3
        if v:
            if opc < 2:
                nbytes, write = 1 << size, opc == 0
            elif size == 0:
                nbytes, write = 16, opc == 2                # Q register
            else:
                return None
        elif opc < 2:
            nbytes, write = 1 << size, opc == 0
        elif (opc == 2 and size == 3) or (opc == 3 and size >= 2):
            return None                                     # PRFM, PRFUM / unallocated
        else:
            nbytes, write = 1 << size, False                # LDRS*
        scale = nbytes.bit_length() - 1
        if word & (1 << 24):                                # unsigned offset
            return fp(base() + (((word >> 10) & 0xFFF) << scale), nbytes, write)
        kind = (word >> 10) & 3
        if not word & (1 << 21):                            # imm9: unscaled, post, unprivileged, pre
            if kind == 2 and v:
                return None
            off = 0 if kind == 1 else _sext((word >> 12) & 0x1FF, 9)
            return fp(base() + off, nbytes, write, kind == 2)
        if kind != 2:
            return None                                     # LSE atomics, LDRAA/LDRAB
        option, rm = (word >> 13) & 7, (word >> 16) & 31
        if not option & 2:
            return None
        m = 0 if rm == SP else xreg(rm)
        if option == 2:
            m &= 0xFFFFFFFF                                 # UXTW
        elif option == 6:
            m = _sext(m & 0xFFFFFFFF, 32)                   # SXTW
        shift = scale if (word >> 12) & 1 else 0
        return fp(base() + (m << shift), nbytes, write)
    if (word & 0xBFBF0000) == 0x0C000000 or (word & 0xBFA00000) == 0x0C800000:   # SIMD multiple
        q, opcode, size = (word >> 30) & 1, (word >> 12) & 0xF, (word >> 10) & 3
        shape = {0b0000: (1, 4), 0b0010: (4, 1), 0b0100: (1, 3), 0b0110: (3, 1), 0b0111: (1, 1),
                 0b1000: (1, 2), 0b1010: (2, 1)}.get(opcode)
        if shape is None or (size == 3 and not q and shape[1] > 1):
            return None
        return fp(base(), (16 if q else 8) * shape[0] * shape[1], not load)
    if (word & 0xBF9F0000) == 0x0D000000 or (word & 0xBF800000) == 0x0D800000:   # SIMD single
        r, opcode, s, size = (word >> 21) & 1, (word >> 13) & 7, (word >> 12) & 1, (word >> 10) & 3
        selem = ((opcode & 1) << 1 | r) + 1
        scale = opcode >> 1
        if scale == 3:                                      # LDnR: replicate
            if not load or s:
                return None
            scale = size
        elif scale == 1 and size & 1:
            return None
        elif scale == 2:
            if size & 2 or (size & 1 and s):
                return None
            scale = 3 if size & 1 else 2
        return fp(base(), selem << scale, not load)
    if (word & 0xFFFFFFE0) == 0xD50B7420:                   # DC ZVA, Xt
        rt = word & 31
        return fp((0 if rt == 31 else xreg(rt)) & ~(zva_block - 1), zva_block, True)
    return None
