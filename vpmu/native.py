"""The one place that touches Unicorn's private C entry points and links them into numba.

Unicorn's Python binding always wraps Python callables; to register a numba ``@cfunc``
as a hook we call the C ``uc_hook_add`` ourselves (ecosystem.md 1.6).  The names used
(``unicorn_py3.unicorn.uclib``, ``Uc._uch``, ``uc_hook_h``, ``unicorn_py3.arch.arm64.UcAArch64``)
are private to unicorn 2.1.4, which ``pyproject.toml`` pins; ``tests/test_native.py`` checks them.

Native code (numba) needs these C symbols at run time:
- ``uc_reg_read`` / ``uc_reg_write`` / ``uc_emu_stop`` / ``uc_vmem_read`` / ``uc_mem_read``
  from libunicorn, made visible to LLVM with ``load_library_permanently`` so cached cfuncs
  link them by name (the code cache reads block words through the guest's translation);
- ``vpmu_pycall``: a ctypes callback into Python for the rare events (a trapped register
  that Python owns, an interrupt to deliver).  It is registered
  with ``llvmlite.binding.add_symbol`` *before* any kernel is compiled or loaded from the
  cache, which is why cached code can call it (numba cannot cache a cfunc that calls a
  ctypes pointer global, numba#9752).
"""
from __future__ import annotations

import ctypes
import os
import struct
import weakref
from dataclasses import dataclass
from typing import Optional, Protocol

from . import _jitcache  # noqa: F401  (before any kernel is compiled or loaded)

import llvmlite.binding as llvm
import unicorn
from numba import types
from llvmlite import ir
from numba.core import cgutils
from numba.extending import intrinsic
from unicorn import arm64_const as _R
from unicorn import unicorn_const as _UC
from unicorn.unicorn_py3.arch.arm64 import UcAArch64      # what Uc(UC_ARCH_ARM64, ...) returns

_U = unicorn.unicorn_py3.unicorn      # private module of the binding (pinned version)
uclib = _U.uclib
uc_hook_h = _U.uc_hook_h


def new_arm64() -> UcAArch64:
    """A new AArch64 engine, typed as the class Unicorn returns for it (``Uc.__new__`` picks
    the architecture's subclass, which has the coprocessor-register accessors)."""
    uc = unicorn.Uc(_UC.UC_ARCH_ARM64, _UC.UC_MODE_ARM)
    assert isinstance(uc, UcAArch64)
    return uc

llvm.load_library_permanently(uclib._name)

# --- the Python side of vpmu_pycall ------------------------------------------------------
# Native code calls vpmu_pycall(kind, arena_address); the arena address identifies the
# machine (several machines may exist in one process, e.g. in tests).
PYCALL = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64, ctypes.c_uint64)


class PycallTarget(Protocol):
    """What answers vpmu_pycall: the board's machine."""

    def _pycall(self, kind: int) -> int: ...


_machines: "weakref.WeakValueDictionary[int, PycallTarget]" = weakref.WeakValueDictionary()


def _dispatch(kind: int, arena_addr: int) -> int:
    m = _machines.get(arena_addr)
    if m is None:          # machine gone: nothing sensible to do but say "handled"
        return 0
    return m._pycall(kind)


_pycall_cb = PYCALL(_dispatch)
llvm.add_symbol("vpmu_pycall", ctypes.cast(_pycall_cb, ctypes.c_void_p).value)


def link_cfunc(name: str, fn) -> None:
    """Link a numba ``@cfunc`` by name, for other native code to call as a C function (not
    through numba's calling convention); like vpmu_pycall, before its callers are compiled or
    loaded from the cache."""
    llvm.add_symbol(name, fn.address)


def register_machine(arena_addr: int, machine: PycallTarget) -> None:
    _machines[arena_addr] = machine


def unregister_machine(arena_addr: int) -> None:
    _machines.pop(arena_addr, None)


# --- numba declarations of the C symbols ---------------------------------------------------
uc_reg_read = types.ExternalFunction("uc_reg_read", types.int32(types.voidptr, types.int32, types.voidptr))
uc_reg_write = types.ExternalFunction("uc_reg_write", types.int32(types.voidptr, types.int32, types.voidptr))
uc_emu_stop = types.ExternalFunction("uc_emu_stop", types.int32(types.voidptr))
uc_vmem_read = types.ExternalFunction(
    "uc_vmem_read", types.int32(types.voidptr, types.uint64, types.int32, types.voidptr, types.uint64))
uc_mem_read = types.ExternalFunction(
    "uc_mem_read", types.int32(types.voidptr, types.uint64, types.voidptr, types.uint64))
# QEMU's own functions (exported by libunicorn, suffixed with the target): raise an exception
# from inside a helper (longjmps out of the translated block, PC already synchronised), and
# take an exception architecturally (the vector entry QEMU performs for a real CPU).
exception_with_syndrome = types.ExternalFunction(
    "helper_exception_with_syndrome_aarch64", types.void(types.voidptr, types.uint32, types.uint32, types.uint32))
do_interrupt = types.ExternalFunction("arm_cpu_do_interrupt_aarch64", types.void(types.voidptr))


pycall = types.ExternalFunction("vpmu_pycall", types.int64(types.int64, types.voidptr))

# --- hook registration -----------------------------------------------------------------------
HOOK_BLOCK_SIG = types.void(types.voidptr, types.uint64, types.uint32, types.voidptr)
HOOK_CODE_SIG = HOOK_BLOCK_SIG
HOOK_INTR_SIG = types.void(types.voidptr, types.uint32, types.voidptr)
HOOK_INSN_SYS_SIG = types.uint32(types.voidptr, types.int32, types.voidptr, types.voidptr)
# UC_HOOK_EDGE_GENERATED: (uc, uc_tb *cur, uc_tb *prev, user); uc_tb = {u64 pc; u16 icount; u16 size}
HOOK_EDGE_SIG = types.void(types.voidptr, types.voidptr, types.voidptr, types.voidptr)
UC_TB_SIZE_OFFSET = 10
HOOK_MEM_SIG = types.boolean(types.voidptr, types.int32, types.uint64, types.int32, types.int64, types.voidptr)
ENTRY_SIG = types.uint64(types.voidptr, types.int64)


def hook_add(uc, htype: int, cfunc_address: Optional[int], user_address: int,
             begin: int = 1, end: int = 0, insn: int | None = None) -> int:
    """Register a native callback (a compiled cfunc's ``address``); returns the hook handle
    (for :func:`hook_del`).

    begin > end means "all addresses", as in Unicorn.
    """
    if cfunc_address is None:
        raise ValueError("hook_add: the callback has no compiled address")
    h = uc_hook_h()
    args = [uc._uch, ctypes.byref(h), ctypes.c_int(htype), ctypes.c_void_p(cfunc_address),
            ctypes.c_void_p(user_address), ctypes.c_uint64(begin), ctypes.c_uint64(end)]
    if insn is not None:
        args.append(ctypes.c_int(insn))
    err = uclib.uc_hook_add(*args)
    if err != 0:
        raise unicorn.UcError(err)
    return h.value


def hook_del(uc, handle: int) -> None:
    err = uclib.uc_hook_del(uc._uch, uc_hook_h(handle))
    if err != 0:
        raise unicorn.UcError(err)


def remove_tb_cache(uc, begin: int, end: int) -> None:
    """Drop translated blocks covering [begin, end) so hook changes take effect."""
    uc.ctl_remove_cache(begin, end)


def vmem_read(uc, va: int, size: int, prot: int) -> bytes | None:
    """Read through the guest's stage-1 translation without faulting (None if untranslatable)."""
    buf = ctypes.create_string_buffer(size)
    err = uclib.uc_vmem_read(uc._uch, ctypes.c_uint64(va), ctypes.c_int(prot), buf, ctypes.c_size_t(size))
    return None if err != 0 else buf.raw


def vmem_write(uc, va: int, data: bytes, prot: int) -> bool:
    """Write through the guest's stage-1 translation without faulting (False if untranslatable)."""
    buf = ctypes.create_string_buffer(bytes(data), len(data))
    err = uclib.uc_vmem_write(uc._uch, ctypes.c_uint64(va), ctypes.c_int(prot), buf, ctypes.c_size_t(len(data)))
    return err == 0


def vmem_translate(uc, va: int, prot: int) -> int | None:
    """The physical address QEMU uses for an access to va with permission prot at the current
    exception level (its TLB first, else a walk of the guest's tables; None: it would fault)."""
    pa = ctypes.c_uint64()
    err = uclib.uc_vmem_translate(uc._uch, ctypes.c_uint64(va), ctypes.c_int(prot), ctypes.byref(pa))
    return None if err != 0 else pa.value


def rebuild_hflags(env: int) -> None:
    """Recompute QEMU's cached translation flags (hflags) from the CPU state at env.  Unicorn
    2.1.4's MSR DAIFSet/DAIFClr do not, though PSTATE.D decides whether software step is
    active (QEMU 7.2 rebuilds them there)."""
    uclib.arm_rebuild_hflags_aarch64(ctypes.c_void_p(env))


uclib.uc_vmem_translate.restype = ctypes.c_int
uclib.uc_vmem_translate.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int, ctypes.POINTER(ctypes.c_uint64)]
uclib.arm_rebuild_hflags_aarch64.restype = None
uclib.arm_rebuild_hflags_aarch64.argtypes = [ctypes.c_void_p]
uclib.uc_vmem_write.restype = ctypes.c_int
uclib.uc_vmem_write.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]
uclib.uc_vmem_read.restype = ctypes.c_int
uclib.uc_vmem_read.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]


# --- raw memory access from native code ------------------------------------------------------
@intrinsic
def as_ptr(typingctx, addr):
    """An integer address as a void pointer (for the C functions above)."""
    def codegen(context, builder, sig, args):
        return builder.inttoptr(args[0], cgutils.voidptr_t)
    return types.voidptr(types.uint64), codegen


@intrinsic
def peek64(typingctx, addr):
    """The uint64 at an integer address."""
    def codegen(context, builder, sig, args):
        ptr = builder.inttoptr(args[0], ir.IntType(64).as_pointer())
        return builder.load(ptr)
    return types.uint64(types.uint64), codegen


@intrinsic
def poke64(typingctx, addr, value):
    """Store a uint64 at an integer address."""
    def codegen(context, builder, sig, args):
        ptr = builder.inttoptr(args[0], ir.IntType(64).as_pointer())
        builder.store(args[1], ptr)
        return context.get_dummy_value()
    return types.void(types.uint64, types.uint64), codegen


@intrinsic
def peek32(typingctx, addr):
    """The uint32 at an integer address."""
    def codegen(context, builder, sig, args):
        ptr = builder.inttoptr(args[0], cgutils.int32_t.as_pointer())
        return builder.zext(builder.load(ptr), ir.IntType(64))
    return types.uint64(types.uint64), codegen


# --- where Unicorn keeps the CPU ---------------------------------------------------------------
@dataclass(frozen=True)
class CpuLayout:
    """Offsets into Unicorn 2.1.4's private CPU state, found by probing (not from headers):
    ``env`` (CPUARMState) inside the CPU object that ``qemu_get_cpu`` returns, and
    ``exception.syndrome`` / ``exception.vaddress`` inside env.  xregs[0] is at env + 64
    (``uint32_t regs[16]`` comes first, target/arm/cpu.h)."""
    cpu_env: int
    syndrome: int
    vaddress: int
    XREGS = 64


_LAYOUT: CpuLayout | None = None
uclib.qemu_get_cpu_aarch64.restype = ctypes.c_void_p
uclib.qemu_get_cpu_aarch64.argtypes = [ctypes.c_void_p, ctypes.c_int]


def _read_mem(fd: int, addr: int, n: int) -> bytes | None:
    try:
        return os.pread(fd, n, addr)
    except OSError:
        return None


def _cpu(uc) -> int:
    """Unicorn's one CPU (``uc->cpu``; qemu_get_cpu matches its cpu_index, which Unicorn 2.1.4
    leaves at -1)."""
    uc.reg_read(_R.UC_ARM64_REG_PC)        # Unicorn creates the CPU on first use
    for index in (-1, 0):
        cpu = uclib.qemu_get_cpu_aarch64(uc._uch, index)
        if cpu:
            return cpu
    raise RuntimeError("cannot find Unicorn's CPU")


def cpu_layout() -> CpuLayout:
    """Find (once per process) where Unicorn keeps the CPU state, in a scratch engine: X0..X3
    set to known values are searched for in the CPU object, and a BRK with a known immediate
    gives the syndrome (the fault address follows it: struct { u32 syndrome; u32 fsr;
    u64 vaddress; } exception)."""
    global _LAYOUT
    if _LAYOUT is not None:
        return _LAYOUT
    uc = unicorn.Uc(_UC.UC_ARCH_ARM64, _UC.UC_MODE_ARM)
    uc.ctl_set_cpu_model(_R.UC_CPU_ARM64_A57)
    magic = [0x5650_4D55_0000_0000 | (i * 0x1111_1111) for i in range(4)]
    for i, m in enumerate(magic):
        uc.reg_write(_R.UC_ARM64_REG_X0 + i, m)
    cpu = _cpu(uc)
    fd = os.open("/proc/self/mem", os.O_RDONLY)
    try:
        blob = _read_mem(fd, cpu, 1 << 17) or b""
        k = blob.find(b"".join(struct.pack("<Q", m) for m in magic))
        if k < CpuLayout.XREGS:
            raise RuntimeError("cannot locate Unicorn's CPU registers")
        cpu_env = k - CpuLayout.XREGS
        env = cpu + cpu_env
        uc.mem_map(0x1000, 0x1000)
        uc.mem_write(0x1000, struct.pack("<I", 0xD4200000 | (0x1A5 << 5)))     # brk #0x1a5
        seen: list[bytes] = []

        def intr(u, intno, _ud):
            seen.append(_read_mem(fd, env, 1 << 16) or b"")
            u.emu_stop()

        uc.hook_add(_UC.UC_HOOK_INTR, intr)
        uc.emu_start(0x1000, 0x1004, count=1)
        syndrome = seen[0].find(struct.pack("<I", (0x3C << 26) | (1 << 25) | 0x1A5)) if seen else -1
        if syndrome < 0:
            raise RuntimeError("cannot locate the exception syndrome in Unicorn's CPU state")
    finally:
        os.close(fd)
    _LAYOUT = CpuLayout(cpu_env, syndrome, syndrome + 8)
    return _LAYOUT


_UNIMPLEMENTED: dict[tuple[int, bool], bool] = {}


def unimplemented(keys, is_read: bool) -> set[int]:
    """The system registers (regs.key packing) among keys whose access the engine's CPU model
    translates as "unallocated" at EL1 (cortex-a57 in Unicorn 2.1.4: the GICv3 CPU interface,
    PMEVCNTR/PMEVTYPER<n> for n >= 4, PMMIR_EL1, ...).  A UC_HOOK_INSN that handles such an
    access skips to after the exception QEMU would raise, which ends the block without
    advancing the PC: the hook must advance it.  Probed once per process: the access is run
    with a hook that claims it, and it is unimplemented if the hook is reached again at once."""
    todo = [k for k in keys if (k, is_read) not in _UNIMPLEMENTED]
    if todo:
        uc = new_arm64()
        uc.ctl_set_cpu_model(_R.UC_CPU_ARM64_A57)
        uc.cpr_write(3, 6, 1, 1, 0, 1 << 10)          # SCR_EL3.RW: EL1 is AArch64 (as the board)
        uc.mem_map(0x1000, 0x1000)
        calls = [0]

        def hook(u, reg, cp, _ud):
            calls[0] += 1
            if calls[0] > 1:
                u.emu_stop()
            return 1

        uc.hook_add(_UC.UC_HOOK_INSN, hook, None, 1, 0, _R.UC_ARM64_INS_MRS if is_read else _R.UC_ARM64_INS_MSR)
        for k in todo:
            op0, op1, crn, crm, op2 = (k >> 14) & 3, (k >> 11) & 7, (k >> 7) & 15, (k >> 3) & 15, k & 7
            word = 0xD5000000 | (int(is_read) << 21) | (op0 << 19) | (op1 << 16) | (crn << 12) | (crm << 8) \
                | (op2 << 5)
            uc.mem_write(0x1000, struct.pack("<III", word, 0xD503201F, 0xD503201F))   # access; nop; nop
            uc.ctl_remove_cache(0x1000, 0x2000)
            calls[0] = 0
            uc.emu_start(0x1000, 0x1008, count=4)
            _UNIMPLEMENTED[(k, is_read)] = calls[0] > 1
    return {k for k in keys if _UNIMPLEMENTED[(k, is_read)]}


def cpu_and_env(uc) -> tuple[int, int]:
    """Addresses of the CPU object and its CPUARMState in this engine."""
    cpu = _cpu(uc)
    return cpu, cpu + cpu_layout().cpu_env
