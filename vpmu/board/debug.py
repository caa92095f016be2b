"""Self-hosted debug: hardware watchpoints, software step and the OS lock (Arm ARM D2).

Unicorn 2.1.4 keeps QEMU's breakpoints (DBGBCR/DBGBVR<n>_EL1) and most of its software step,
but compiles watchpoint insertion out (``cpu_watchpoint_insert`` is under ``#if 0``), does
not rebuild its cached translation flags after MSR DAIFSet/DAIFClr (so clearing PSTATE.D never
starts a step), and ignores the OS lock.  This device supplies what is missing:

- *Registers.*  It owns DBGWVR/DBGWCR<n>_EL1, MDSCR_EL1, OSLAR_EL1, OSLSR_EL1 and OSDLR_EL1
  (handler ``H_DEBUG``).  QEMU keeps its own copy of MDSCR_EL1 for its breakpoints and step;
  it is written with MDE, KDE and SS cleared while the OS lock or the OS double lock is set,
  so that every debug exception but BRK stops there (Arm ARM D2.5, AArch64.
  GenerateDebugExceptions).  OSLK is 1 after a cold reset (OSLSR_EL1 = 0b1010, as QEMU).
- *Watchpoints* (Arm ARM D2.10).  Watchpoints match virtual addresses; Unicorn's memory hooks
  see physical ones (``HOOK_BOUND_CHECK(hook, paddr)``, accel/tcg/cputlb.c).  So each armed
  watchpoint's range, extended 63 bytes downwards (the longest single-instruction footprint,
  LD4/ST4 of four Q registers, so the *first* access of an instruction that reaches the range
  is hooked), is translated page by page with QEMU's own translation (its TLB, else a walk) and
  a native hook (``hooks.watch_hook``) covers the physical ranges.  The hook asks Python
  (``PC_WATCH``), which decodes the accessing instruction (``ldst.footprint``: base register,
  offset, size, load or store), compares its whole footprint (virtual, top byte removed as
  TCR_EL1.TBI says) with every watchpoint's range, access kind, privilege and link, and
  answers a syndrome; the hook then raises the exception before the access is performed (the
  instruction does not retire, memory is unchanged).  An access through another virtual alias
  of the same memory does not match.  DC ZVA zeroes memory without a memory hook; the SYS
  hook asks instead.  Store-exclusives reach the hooks as a load and a store (single-threaded
  TCG's cmpxchg); the decode makes them stores.
  The placement is redone whenever a translation may have changed: after a write of TTBR0/1,
  TCR or SCTLR, after a TLBI, after an ERET (a handler may have mapped the page: the native
  hooks stop with ``SR_DEBUG``), and on every debug register write (``place``).
  While a watchpoint is armed a hook exists (an anchor on an address nothing uses), so every
  translated block takes Unicorn's out-of-line memory path, where hooks are checked.
- *Software step* (Arm ARM D2.12) is QEMU's: a step runs as a one-instruction translation
  followed by the step exception, an active-pending step as a translation without
  instructions.  What it lacks is the flags rebuild after MSR DAIFClr: while MDSCR_EL1.SS and
  KDE are set (and the OS lock clear) a Python block hook checks every block that starts at
  EL1 with PSTATE.D and PSTATE.SS clear: QEMU would not have run it with fresh flags, so the
  flags are rebuilt and the block restarts, which takes the step exception there as QEMU 7.2
  does.  An HVC the board answers itself (PSCI, Xen) clears PSTATE.SS when stepping is active,
  as QEMU's translation of HVC does (gen_ss_advance) before PSCI completes it.
"""
from __future__ import annotations

from typing import Optional

from unicorn import arm64_const as R
from unicorn import unicorn_const as UC

from .. import errors, native
from ..pmu import layout as L
from ..pmu import regs
from .. import arch as X
from .ldst import Footprint, footprint

PAGE = 0x1000
M64 = (1 << 64) - 1
FOOTPRINT_MAX = 64            # bytes: LD4/ST4 {4 x Q}, the widest single-instruction access
PLACE_MAX_PAGES = 1 << 14     # beyond this many pages (64 MiB) every address is hooked instead
ANCHOR = M64                  # a physical address no access uses: the hook that keeps blocks slow

OSLSR_OSLM = 0b1000           # OSLSR_EL1.OSLM = 0b10: the OS lock is implemented
OSLSR_OSLK = 1 << 1
# DBGWCR<n>_EL1 fields (Arm ARM D17.3.x): E, PAC, LSC, BAS, HMC, SSC, LBN, WT, MASK
WCR_E, WCR_WT = 1, 1 << 20
WVR_RES0 = 3                  # DBGWVR<n>_EL1[1:0]
LSC_LOAD, LSC_STORE = 1, 2
SSC_SECURE_ONLY = 2
# DBGBCR<n>_EL1: BT = 0b0011, linked context-ID match (the only link a watchpoint can use here)
BCR_BT_SHIFT, BT_LINKED_CONTEXTIDR = 20, 3
DBGBCR_OP2, DBGBVR_OP2 = 5, 4


def watched_range(wcr: int, wvr: int) -> Optional[tuple[int, int]]:
    """The virtual bytes [lo, hi) watchpoint (wcr, wvr) covers, None if it can never match.
    The choices where the Arm ARM leaves one are QEMU 7.2's (hw_watchpoint_update): LSC 0b00,
    MASK 0b00001/0b00010 and BAS 0 disable it; with MASK set BAS is ignored; a BAS that is not
    one run of ones watches its first run; with DBGWVR[2] set BAS[7:4] are ignored."""
    if not wcr & WCR_E or (wcr >> 3) & 3 == 0:
        return None
    mask = (wcr >> 24) & 0x1F
    if mask in (1, 2):
        return None
    if mask:
        lo = wvr & ~((1 << mask) - 1) & M64
        return lo, lo + (1 << mask)
    bas = (wcr >> 5) & 0xFF
    if wvr & 4:
        bas &= 0xF
    if not bas:
        return None
    start = (bas & -bas).bit_length() - 1
    run = bas >> start
    length = (~run & (run + 1)).bit_length() - 1        # count of trailing ones
    return wvr + start, wvr + start + length


class DebugUnit:
    def __init__(self, uc, A, N, mem, guard, code, hooks, arena_addr: int):
        """``code`` is the board's CodeCache (its data-side hook must stay after ours),
        ``hooks`` the native hook module (``vpmu.pmu.hooks``)."""
        self.uc, self.A, self.N, self.mem, self.guard, self.code = uc, A, N, mem, guard, code
        self._H = hooks
        self._arena_addr = arena_addr
        self._env = native.cpu_and_env(uc)[1]
        dfr0 = uc.cpr_read(*X.ID_AA64DFR0_EL1)
        self._brps, self._ctx_cmps = (dfr0 >> 12) & 0xF, (dfr0 >> 28) & 0xF       # "number minus 1"
        if ((dfr0 >> 20) & 0xF) + 1 != regs.WATCHPOINTS:
            raise errors.VpmuError(f"the CPU model has {((dfr0 >> 20) & 0xF) + 1} watchpoints, "
                                   f"the register table {regs.WATCHPOINTS}")
        self.zva_block = 4 << (uc.cpr_read(*X.DCZID_EL0) & 0xF)
        self.wcr = [0] * regs.WATCHPOINTS
        self.wvr = [0] * regs.WATCHPOINTS
        self.mdscr = uc.cpr_read(*X.MDSCR_EL1)
        self.oslk = True                  # cold reset: the OS lock is set
        self.dlk = False                  # OSDLR_EL1.DLK
        self.pending = True               # apply() must run before the guest goes on
        self._ranges: list[tuple[int, int, int]] = []          # armed: (lo, hi, DBGWCR)
        self._hooks: dict[tuple[int, int], int] = {}            # physical [begin, end] -> watch hook
        self._anchor: Optional[int] = None
        self._step_hook: Optional[int] = None
        self._far = 0                      # FAR_EL1 of the last watchpoint hit
        self._push_mdscr()

    # ---- registers ----------------------------------------------------------------------------
    def locked(self) -> bool:
        """OS lock or OS double lock: no debug exception but BRK (DoubleLockStatus() with
        DBGPRCR_EL1.CORENPDRQ = 0, which this board never sets)."""
        return self.oslk or self.dlk

    def read(self, name: str) -> int:
        if name == "MDSCR_EL1":
            return self.mdscr
        if name == "OSLSR_EL1":
            return OSLSR_OSLM | (OSLSR_OSLK if self.oslk else 0)
        if name == "OSDLR_EL1":
            return int(self.dlk)
        n = int(name[6])
        return self.wvr[n] if name.startswith("DBGWVR") else self.wcr[n]

    def write(self, name: str, val: int) -> None:
        if name == "MDSCR_EL1":
            self.mdscr = val
        elif name == "OSLAR_EL1":
            self.oslk = bool(val & 1)
        elif name == "OSDLR_EL1":
            self.dlk = bool(val & 1)
        elif name.startswith("DBGWVR"):
            # bits [63:49] hold what was written and the whole register is compared (both
            # allowed: IMPLEMENTATION DEFINED / CONSTRAINED UNPREDICTABLE), as QEMU 7.2
            self.wvr[int(name[6])] = val & ~WVR_RES0
        else:
            self.wcr[int(name[6])] = val          # RES0 fields keep what was written, as QEMU 7.2
        self._push_mdscr()
        self._request_apply()

    def _push_mdscr(self) -> None:
        """QEMU's MDSCR_EL1 (its breakpoints and step read it): the OS lock hides MDE, KDE and
        SS.  A system-register write through Unicorn also rebuilds QEMU's cached flags."""
        eff = self.mdscr & ~(X.MDSCR_MDE | X.MDSCR_KDE | X.MDSCR_SS) if self.locked() else self.mdscr
        self.uc.cpr_write(*X.MDSCR_EL1, eff)

    def _request_apply(self) -> None:
        """Hooks change only between blocks: the MSR ends its block, the run loop calls apply()."""
        self.pending = True
        if int(self.A[L.STOP_REASON]) == L.SR_NONE:
            self.A[L.STOP_REASON] = L.SR_DEBUG
        self.uc.emu_stop()

    # ---- arming ----------------------------------------------------------------------------------
    def apply(self) -> None:
        """From the run loop: arm or disarm watchpoints and the step check, place the hooks."""
        self.pending = False
        ranges: list[tuple[int, int, int]] = []
        if self.mdscr & X.MDSCR_MDE and not self.locked():
            for wcr, wvr in zip(self.wcr, self.wvr):
                r = watched_range(wcr, wvr)
                if r is not None:
                    ranges.append((r[0], r[1], wcr))
        self._ranges = ranges
        flush = False
        if ranges and self._anchor is None:
            self._anchor = self._add_hook(ANCHOR, ANCHOR)
            flush = True                   # blocks translated so far keep the inline memory path
        elif not ranges and self._anchor is not None:
            native.hook_del(self.uc, self._anchor)
            self._anchor = None
            flush = True
        self.A[L.WATCH_ON] = 1 if ranges else 0
        want_step = bool(self.mdscr & X.MDSCR_SS and self.mdscr & X.MDSCR_KDE) and not self.locked()
        if want_step and self._step_hook is None:
            self._step_hook = self.uc.hook_add(UC.UC_HOOK_BLOCK, self._on_block)
            flush = True                   # a second block hook: translations call them in a loop
        elif not want_step and self._step_hook is not None:
            self.uc.hook_del(self._step_hook)
            self._step_hook = None
            flush = True
        self.place()
        if flush:
            self.uc.ctl_flush_tb()

    def _add_hook(self, begin: int, end: int) -> int:
        return native.hook_add(self.uc, UC.UC_HOOK_MEM_READ | UC.UC_HOOK_MEM_WRITE, self._H.watch_hook.address,
                               self._arena_addr, begin, end)

    def place(self) -> None:
        """Hook the physical ranges behind the armed watchpoints under the current translation.
        Translations change only by EL1 instructions (which stop the run: TTBR/TCR/SCTLR
        writes, TLBI) or by page-table writes that an exception return makes visible (ERET
        stops); at EL1 the placement is made afresh.  At EL0 QEMU's translation refuses EL1-only
        pages, so the ranges found are added to those placed at EL1 (a hook on memory no watched
        address reaches only costs a call: the decode compares virtual addresses)."""
        want: set[tuple[int, int]] = set()
        mmu = self.mem.mmu_on()
        for lo, hi, _wcr in self._ranges:
            want |= self._physical(max(lo - (FOOTPRINT_MAX - 1), 0), hi, mmu)
        if (self.uc.reg_read(R.UC_ARM64_REG_PSTATE) >> X.PSTATE_EL_SHIFT) & 3 == 0 and self._ranges:
            want |= set(self._hooks)
        if want == set(self._hooks):
            return
        for k in set(self._hooks) - want:
            native.hook_del(self.uc, self._hooks.pop(k))
        for k in want - set(self._hooks):
            self._hooks[k] = self._add_hook(*k)
        self.code.memhook_last()

    def _physical(self, lo: int, hi: int, mmu: bool) -> set[tuple[int, int]]:
        """Inclusive physical [begin, end] ranges the virtual bytes [lo, hi) translate to."""
        hi = min(hi, 1 << 64)
        if not mmu:
            return {(lo, hi - 1)}
        first, last = lo & ~(PAGE - 1), (hi - 1) & ~(PAGE - 1)
        if (last - first) // PAGE + 1 > PLACE_MAX_PAGES:
            return {(0, M64)}             # too many pages to translate: every access asks
        out: list[list[int]] = []
        for page in range(first, last + 1, PAGE):
            pa = native.vmem_translate(self.uc, page, UC.UC_PROT_READ)
            if pa is None:
                pa = native.vmem_translate(self.uc, page, UC.UC_PROT_WRITE)
            if pa is None:
                continue                  # no translation: the access faults before any watchpoint
            b = pa + (max(lo, page) - page)
            e = pa + (min(hi, page + PAGE) - page) - 1
            if out and out[-1][1] + 1 == b:
                out[-1][1] = e
            else:
                out.append([b, e])
        return {(b, e) for b, e in out}

    # ---- watchpoint matching -----------------------------------------------------------------------
    def on_access(self) -> None:
        """PC_WATCH: judge the access described in PY_ARG; answer the syndrome (0: none) and
        the fault address."""
        A = self.A
        A[L.PY_ARG + 4] = self._judge(int(A[L.PY_ARG]), int(A[L.PY_ARG + 1]))
        A[L.PY_ARG + 5] = self._far

    def _judge(self, access: int, addr: int) -> int:
        if not self._ranges:
            return 0
        uc = self.uc
        ps = uc.reg_read(R.UC_ARM64_REG_PSTATE)
        el = (ps >> X.PSTATE_EL_SHIFT) & 3
        if el == 1 and (not self.mdscr & X.MDSCR_KDE or ps & X.PSTATE_D):
            return 0                      # debug exceptions disabled at the debug target EL
        fp = self._footprint(access, addr, el)
        if fp is None:
            return 0
        va = self._untagged(fp.va)
        access_el = 0 if fp.unpriv else el
        kind = LSC_STORE if fp.write else LSC_LOAD
        for lo, hi, wcr in self._ranges:          # in register order: the first match is reported
            if va < hi and lo < va + fp.size and (wcr >> 3) & kind and self._privilege_matches(wcr, access_el) \
                    and (not wcr & WCR_WT or self._linked_matches((wcr >> 16) & 0xF)):
                break
        else:
            return 0
        # FAR_EL1: the first byte the access touches in the range of the lowest-numbered
        # watchpoint it matches (an address both accessed and watched, Arm ARM D2.10.5; QEMU 7.2
        # reports the same when the watchpoints were written in register order)
        self._far = max(va, lo)
        ec = X.EC_WATCHPOINT_CUR if el == 1 else X.EC_WATCHPOINT_LOW
        return (ec << X.EC_SHIFT) | X.IL | (X.ISS_WNR if fp.write else 0) | X.FSC_DEBUG

    def _footprint(self, access: int, addr: int, el: int) -> Optional[Footprint]:
        uc = self.uc
        if access == L.WATCH_ZVA:
            if el == 0 and not uc.cpr_read(*X.SCTLR_EL1) & X.SCTLR_DZE:
                return None               # DC ZVA traps at EL0: no access
            return Footprint(addr & ~(self.zva_block - 1) & M64, self.zva_block, True)
        # Every access reaching a memory hook comes from a load/store at the PC (or DC ZVA's slow
        # path).  The word read now may differ from the one translated only if the guest
        # rewrote code without the maintenance the Arm ARM requires (then either may execute):
        # such an access matches nothing.
        pc = uc.reg_read(R.UC_ARM64_REG_PC)
        word = self.mem.insn_word(pc)
        if word is None:
            return None
        return footprint(word, self._xreg, uc.reg_read(R.UC_ARM64_REG_SP), pc, self.zva_block)

    def _xreg(self, n: int) -> int:
        reg = R.UC_ARM64_REG_X0 + n if n <= 28 else (R.UC_ARM64_REG_X29 if n == 29 else R.UC_ARM64_REG_X30)
        return self.uc.reg_read(reg)

    def _untagged(self, va: int) -> int:
        """The address the access uses: TCR_EL1.TBI0/TBI1 make the top byte a copy of bit 55."""
        tcr = self.uc.cpr_read(*X.TCR_EL1)
        upper = (va >> 55) & 1
        if tcr & (X.TCR_TBI1 if upper else X.TCR_TBI0):
            va = (va | (0xFF << 56)) if upper else (va & ((1 << 56) - 1))
        return va

    @staticmethod
    def _privilege_matches(wcr: int, access_el: int) -> bool:
        """PAC/HMC/SSC for a Non-secure PE without EL2 and EL3 (QEMU's virt): SSC 0b10 (Secure
        only) never matches; PAC bit 0 selects EL1 accesses, bit 1 EL0 accesses."""
        if (wcr >> 14) & 3 == SSC_SECURE_ONLY:
            return False
        return bool((wcr >> 1) & (1 if access_el == 1 else 2))

    def _linked_matches(self, lbn: int) -> bool:
        """WT = 1: the linked context-ID breakpoint (QEMU's linked_bp_matches): enabled, of type
        linked CONTEXTIDR match, and CONTEXTIDR_EL1 equal to its DBGBVR[31:0].  A link to a
        breakpoint that is not context-aware never matches."""
        if lbn > self._brps or lbn < self._brps - self._ctx_cmps:
            return False
        bcr = self.uc.cpr_read(2, 0, 0, lbn, DBGBCR_OP2)
        if not bcr & 1 or (bcr >> BCR_BT_SHIFT) & 0xF != BT_LINKED_CONTEXTIDR:
            return False
        bvr = self.uc.cpr_read(2, 0, 0, lbn, DBGBVR_OP2)
        return (self.uc.cpr_read(*X.CONTEXTIDR_EL1) & 0xFFFFFFFF) == (bvr & 0xFFFFFFFF)

    # ---- software step ---------------------------------------------------------------------------------
    def step_active(self, ps: int) -> bool:
        """Software step is active at the current exception level (Arm ARM D2.12.2)."""
        if not self.mdscr & X.MDSCR_SS or self.locked():
            return False
        if (ps >> X.PSTATE_EL_SHIFT) & 3 == 0:
            return True
        return bool(self.mdscr & X.MDSCR_KDE) and not ps & X.PSTATE_D

    def service_call_completed(self) -> None:
        """The board completed an HVC itself: a stepped HVC completes its step (PSTATE.SS = 0),
        so the step exception is taken before the next instruction, as on QEMU."""
        ps = self.uc.reg_read(R.UC_ARM64_REG_PSTATE)
        if ps & X.PSTATE_SS and self.step_active(ps):
            self.uc.reg_write(R.UC_ARM64_REG_PSTATE, ps & ~X.PSTATE_SS)

    def _on_block(self, uc, addr: int, size: int, _ud) -> None:
        """UC_HOOK_BLOCK while stepping can be active at EL1: a block starting in the
        active-pending state was translated with stale flags (after MSR DAIFClr)."""
        try:
            ps = uc.reg_read(R.UC_ARM64_REG_PSTATE)
            if (ps >> X.PSTATE_EL_SHIFT) & 3 != 1 or ps & (X.PSTATE_D | X.PSTATE_SS) or not self.step_active(ps):
                return
            native.rebuild_hflags(self._env)
            self.N.end_block_at(addr, False)          # nothing of it ran
            uc.reg_write(R.UC_ARM64_REG_PC, addr)     # leave it: QEMU translates it again, stepping
        except BaseException as e:
            self.guard.fail(e)
