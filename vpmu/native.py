"""The one place that touches Unicorn's private C entry points and links them into numba.

Unicorn's Python binding always wraps Python callables; to register a numba ``@cfunc``
as a hook we call the C ``uc_hook_add`` ourselves (ecosystem.md 1.6).  The names used
(``unicorn_py3.unicorn.uclib``, ``Uc._uch``, ``uc_hook_h``) are private to unicorn 2.1.4,
which ``pyproject.toml`` pins; ``tests/test_native.py`` checks them.

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
import weakref

from . import _jitcache  # noqa: F401  (before any kernel is compiled or loaded)

import llvmlite.binding as llvm
import unicorn
from numba import types

_U = unicorn.unicorn_py3.unicorn      # private module of the binding (pinned version)
uclib = _U.uclib
uc_hook_h = _U.uc_hook_h

llvm.load_library_permanently(uclib._name)

# --- the Python side of vpmu_pycall ------------------------------------------------------
# Native code calls vpmu_pycall(kind, arena_address); the arena address identifies the
# machine (several machines may exist in one process, e.g. in tests).
PYCALL = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64, ctypes.c_uint64)
_machines: "weakref.WeakValueDictionary[int, object]" = weakref.WeakValueDictionary()


def _dispatch(kind: int, arena_addr: int) -> int:
    m = _machines.get(arena_addr)
    if m is None:          # machine gone: nothing sensible to do but say "handled"
        return 0
    return m._pycall(kind)


_pycall_cb = PYCALL(_dispatch)
llvm.add_symbol("vpmu_pycall", ctypes.cast(_pycall_cb, ctypes.c_void_p).value)


def register_machine(arena_addr: int, machine) -> None:
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
pycall = types.ExternalFunction("vpmu_pycall", types.int64(types.int64, types.voidptr))

# --- hook registration -----------------------------------------------------------------------
HOOK_BLOCK_SIG = types.void(types.voidptr, types.uint64, types.uint32, types.voidptr)
HOOK_CODE_SIG = HOOK_BLOCK_SIG
HOOK_INSN_SYS_SIG = types.uint32(types.voidptr, types.int32, types.voidptr, types.voidptr)
# UC_HOOK_EDGE_GENERATED: (uc, uc_tb *cur, uc_tb *prev, user); uc_tb = {u64 pc; u16 icount; u16 size}
HOOK_EDGE_SIG = types.void(types.voidptr, types.voidptr, types.voidptr, types.voidptr)
UC_TB_SIZE_OFFSET = 10
HOOK_MEM_SIG = types.boolean(types.voidptr, types.int32, types.uint64, types.int32, types.int64, types.voidptr)
ENTRY_SIG = types.uint64(types.voidptr, types.int64)


def hook_add(uc, htype: int, cfunc_address: int, user_address: int,
             begin: int = 1, end: int = 0, insn: int | None = None) -> int:
    """Register a native callback; returns the hook handle (for :func:`hook_del`).

    begin > end means "all addresses", as in Unicorn.
    """
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


uclib.uc_vmem_write.restype = ctypes.c_int
uclib.uc_vmem_write.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]
uclib.uc_vmem_read.restype = ctypes.c_int
uclib.uc_vmem_read.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]
