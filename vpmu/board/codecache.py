"""The Python side of the code cache (``vpmu.pmu.codecache`` classifies blocks natively):
the code hooks native code cannot install itself.

- the instruction after a store-exclusive whose status register is overwritten in its own
  block gets a code hook that judges the store's outcome (the native classification lists
  them in NEW_VA and stops with SR_HOOKS before the block runs);
- a block that must be counted instruction by instruction ("precise") gets a code hook over
  its whole range while it needs one;
- the data-side memory hook is added or removed as the model asks, and kept after the debug
  unit's watchpoint hooks.
Every hook change drops Unicorn's translations of the range, so it takes effect at once; the
code cache then checks the block's words again (a new translation), which costs no Python.
"""
from __future__ import annotations

from typing import Optional

from unicorn import unicorn_const as UC

from .. import errors, native
from ..pmu import layout as L

PAGE = 0x1000


class CodeCache:
    def __init__(self, cfg, uc, A, N, mem, H, arena_addr: int):
        self.cfg, self.uc, self.A, self.N, self.mem = cfg, uc, A, N, mem
        self._H = H                                 # vpmu.pmu.hooks (the native cfuncs)
        self._arena_addr = arena_addr
        self._check_hooks: dict[int, int] = {}      # VA -> code hook judging a store-exclusive
        self._precise_hooks: dict[tuple[int, int], int] = {}   # (start, size) of a precise block -> hook
        self._mem_hook: Optional[int] = None

    def install_sites(self) -> None:
        """Code hooks where the native classification asked for one, before the block runs."""
        A = self.A
        for i in range(int(A[L.NEW_N])):
            addr = int(A[L.NEW_VA + i])
            if addr not in self._check_hooks:
                self._check_hooks[addr] = native.hook_add(self.uc, UC.UC_HOOK_CODE, self._H.code_hook.address,
                                                          self._arena_addr, addr, addr)
                if not self.N.hooked(addr):
                    raise errors.VpmuError(f"too many store-exclusive checks in the guest (at {addr:#x})")
                native.remove_tb_cache(self.uc, addr & ~(PAGE - 1), (addr & ~(PAGE - 1)) + PAGE)
        A[L.NEW_N] = 0

    def precise(self, e: int, on: bool) -> None:
        """Block slot e needs (or no longer needs) a sync point before every instruction."""
        A = self.A
        start = int(A[L.BLK_KEY + e * L.BW]) - 1
        size = 4 * int(A[L.BLK_N + e * L.BW])
        if on:
            if (start, size) not in self._precise_hooks:
                self._precise_hooks[start, size] = native.hook_add(
                    self.uc, UC.UC_HOOK_CODE, self._H.code_hook.address, self._arena_addr, start, start + size - 1)
        else:
            h = self._precise_hooks.pop((start, size), None)
            if h is not None:
                native.hook_del(self.uc, h)
        if not self.N.precise(start, size, on):
            raise errors.VpmuError("too many precise-mode block ranges in the guest")
        native.remove_tb_cache(self.uc, start, start + size)

    def memhook_last(self) -> None:
        """Register the data-side memory hook again, after hooks added since (the debug unit's
        watchpoint hooks): Unicorn calls memory hooks in the order they were added, and an
        access a Watchpoint exception stops must not reach the cache model first."""
        if self._mem_hook is not None:
            native.hook_del(self.uc, self._mem_hook)
            self._mem_hook = native.hook_add(self.uc, UC.UC_HOOK_MEM_READ | UC.UC_HOOK_MEM_WRITE,
                                             self._H.mem_hook.address, self._arena_addr)

    def update_memhook(self) -> None:
        A = self.A
        want = bool(A[L.MEMHOOK_WANT])
        if want and self._mem_hook is None:
            self._mem_hook = native.hook_add(self.uc, UC.UC_HOOK_MEM_READ | UC.UC_HOOK_MEM_WRITE,
                                             self._H.mem_hook.address, self._arena_addr)
        elif not want and self._mem_hook is not None:
            native.hook_del(self.uc, self._mem_hook)
            self._mem_hook = None
        A[L.MEMHOOK_ON] = 1 if want else 0
        self.uc.ctl_flush_tb()
