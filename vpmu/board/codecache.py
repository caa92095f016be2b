"""The block cache: classifying a block the first time it executes, and the hooks it needs.

Moved as is from ``machine.py`` (about to be replaced by native classification).  A block's
instructions are classified (``vpmu.pmu.classify``) into interned instruction classes in the
arena's block pool; system-register sites and store-exclusive checks get an entry in the
site table and a native code hook; blocks that must be counted instruction by instruction
("precise") get a per-block code hook; the memory hook is added or removed as the model asks.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
from unicorn import unicorn_const as UC

from .. import errors, native
from ..pmu import channels as C
from ..pmu import classify
from ..pmu import layout as L


class CodeCache:
    def __init__(self, cfg, uc, A, N, mem, H, arena_addr: int):
        self.cfg, self.uc, self.A, self.N, self.mem = cfg, uc, A, N, mem
        self._H = H                                 # vpmu.pmu.hooks (the native cfuncs)
        self._arena_addr = arena_addr
        self._pending_sites: list[tuple[int, tuple]] = []
        self._site_hooks: dict[int, int] = {}
        self._precise_hooks: dict[tuple[int, int], int] = {}   # (start, end) of a precise block -> hook
        self._mem_hook: Optional[int] = None
        self._classes: dict[tuple, int] = {}

    def classify(self, addr: int, size: int) -> int:
        """A block executes for the first time: classify its instructions into the block
        cache; return 1 if it has system-register sites that still need their hooks."""
        A = self.A
        code = native.vmem_read(self.uc, addr, size, UC.UC_PROT_EXEC) if self.mem.mmu_on() else \
            bytes(self.uc.mem_read(addr, size))
        if code is None:
            code = bytes(self.uc.mem_read(addr, size))
        blk = classify.classify_block(addr, code, self.cfg.cycles)
        n = len(blk.insns)
        if int(A[L.POOL_TOP]) + n > L.NPOOL or int(A[L.BLK_USED]) >= L.NBLK * 3 // 4:
            self.N.flush_blocks()
        e = self.N.blk_lookup(addr, size)
        if e <= -2:
            e = -2 - e
        elif e == -1:
            e = self._free_slot(addr)
            A[L.BLK_USED] += 1
        off = int(A[L.POOL_TOP])
        A[L.POOL_TOP] = off + n
        tot = np.zeros(C.NS, dtype=np.uint64)
        nmem = 0
        maint = False
        new_sites = False
        excl_last = 0
        for i, ins in enumerate(blk.insns):
            cid = self._class_id(ins)
            A[L.POOL + off + i] = cid
            tot += np.array(ins.inc, dtype=np.uint64)
            nmem += ins.nmem
            maint |= ins.maint
            if ins.site is not None:
                key, is_read, rt = ins.site
                self._site_put(ins.addr, key | (int(is_read) << 16) | (rt << 17), 0xFFFF_FFFF)
                new_sites |= self._want_site_hook(ins.addr)
            if ins.excl_rs >= 0:
                fail = self._class_id_for(classify.failed_exclusive(ins))
                check = (1 << 32) | (ins.excl_rs << 33) | (fail << 40)
                if i == n - 1:
                    excl_last = check         # judged by the block hook of the successor
                else:
                    self._site_put(ins.addr + 4, check, ~0xFFFF_FFFF)
                    new_sites |= self._want_site_hook(ins.addr + 4)
        last = blk.insns[-1] if blk.insns else None
        A[L.BLK_KEY + e] = addr + 1
        A[L.BLK_SIZE + e] = size
        A[L.BLK_N + e] = n
        A[L.BLK_IOFF + e] = off
        A[L.BLK_BK + e] = last.bk if last else 0
        A[L.BLK_TGT + e] = last.target if last else 0
        A[L.BLK_NMEM + e] = nmem
        A[L.BLK_WORD + e] = last.word if last else 0
        A[L.BLK_EXCL + e] = excl_last
        flags = L.BF_MAINT if maint else 0
        if (addr, addr + size) in self._precise_hooks:
            flags |= L.BF_PRECISE
        A[L.BLK_FLAGS + e] = flags
        A[L.BLK_TOT + e * C.NS:L.BLK_TOT + (e + 1) * C.NS] = tot
        bound = min(max(n, int(tot.max()) if n else 0), L.FAST_BOUND)
        odd = (excl_last or maint or (last is not None and (last.bk == L.BK_ERET or (
            last.bk == L.BK_COND and last.target == addr + size))))
        A[L.BLK_FAST + e] = bound | (L.FAST_PRECISE if flags & L.BF_PRECISE else 0) | (L.FAST_ODD_END if odd else 0)
        return 1 if new_sites else 0

    def _free_slot(self, addr: int) -> int:
        A = self.A
        i = (((addr >> 2) * 0x9E3779B1) & 0xFFFFFFFFFFFFFFFF) & (L.NBLK - 1)
        while A[L.BLK_KEY + i] != 0:
            i = (i + 1) & (L.NBLK - 1)
        return i

    def _want_site_hook(self, addr: int) -> bool:
        if addr in self._site_hooks or any(a == addr for a, _ in self._pending_sites):
            return False
        self._pending_sites.append((addr, None))
        return True

    def _site_put(self, addr: int, val: int, field_mask: int) -> None:
        """Set the bits of `field_mask` of the site entry of addr (a sysreg site and a
        store-exclusive check can share an address)."""
        A = self.A
        i = (((addr >> 2) * 0x9E3779B1) & 0xFFFFFFFFFFFFFFFF) & (L.NSITE - 1)
        field_mask &= 0xFFFF_FFFF_FFFF_FFFF
        for _ in range(L.NSITE):
            k = int(A[L.SITE_KEY + i])
            if k == 0 or k == addr + 1:
                old = int(A[L.SITE_VAL + i]) if k else 0
                A[L.SITE_KEY + i] = addr + 1
                A[L.SITE_VAL + i] = (old & ~field_mask & 0xFFFF_FFFF_FFFF_FFFF) | (val & field_mask)
                return
            i = (i + 1) & (L.NSITE - 1)
        raise errors.VpmuError("too many system-register sites in the guest (site table full)")

    def _class_id(self, ins: classify.Insn) -> int:
        return self._class_id_for(ins.cls_key)

    def _class_id_for(self, k: tuple) -> int:
        """Intern a class (static increments + branch kind + data accesses)."""
        cid = self._classes.get(k)
        if cid is None:
            cid = len(self._classes)
            if cid >= L.NCLS:
                raise errors.VpmuError("too many distinct instruction classes")
            self._classes[k] = cid
            A = self.A
            A[L.CLS_INC + cid * C.NS:L.CLS_INC + (cid + 1) * C.NS] = np.array(k[:C.NS], dtype=np.uint64)
            A[L.CLS_BK + cid] = k[C.NS]
            A[L.CLS_NMEM + cid] = k[C.NS + 1]
            A[L.CLS_ESIZE + cid] = k[C.NS + 2]
            A[L.CLS_N] = cid + 1
        return cid

    def install_sites(self) -> None:
        for addr, _site in self._pending_sites:
            if addr not in self._site_hooks:
                self._site_hooks[addr] = native.hook_add(self.uc, UC.UC_HOOK_CODE, self._H.code_hook.address,
                                                         self._arena_addr, addr, addr)
                native.remove_tb_cache(self.uc, addr & ~0xFFF, (addr & ~0xFFF) + 0x1000)
        self._pending_sites.clear()

    def precise(self, e: int, on: bool) -> None:
        A = self.A
        start = int(A[L.BLK_KEY + e]) - 1
        end = start + int(A[L.BLK_SIZE + e])
        if on:
            if (start, end) not in self._precise_hooks:
                self._precise_hooks[start, end] = native.hook_add(
                    self.uc, UC.UC_HOOK_CODE, self._H.code_hook.address, self._arena_addr, start, end - 1)
            A[L.BLK_FLAGS + e] |= L.BF_PRECISE
            A[L.BLK_FAST + e] |= np.uint64(L.FAST_PRECISE)
        else:
            h = self._precise_hooks.pop((start, end), None)
            if h is not None:
                native.hook_del(self.uc, h)
            A[L.BLK_FLAGS + e] &= ~np.uint64(L.BF_PRECISE)
            A[L.BLK_FAST + e] &= ~np.uint64(L.FAST_PRECISE)
        native.remove_tb_cache(self.uc, start, end)

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
